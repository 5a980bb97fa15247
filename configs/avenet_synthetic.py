r"""AVE-Net on the built-in synthetic world (CPU, minutes), scored by retrieval.

AVE-Net (Arandjelovic & Zisserman 2018, "Objects that Sound") trained with the
AVC task (`avself/tasks/avc.py`, model 'avenet'): two L3 trunks, 128-D
normalised embeddings, their distance -> matched / mismatched. Evaluated by
held-out AVC accuracy and by retrieval in four directions (nDCG@30,
recall@k, beside a random-init network; see docs/retrieval.md):

  python -m avself.main --config=configs/avenet_synthetic.py --workdir=/tmp/avenet_synthetic

Same world, sizes and budget as configs/l3_synthetic.py.
"""

import ml_collections

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ()


def get_config(arg=None):
  """Small AVE-Net that 2 CPU cores train in minutes."""
  config_lib.variants(arg, VARIANTS)
  c = config_lib.base_config()
  c.batch_size = 32
  c.total_steps = 600
  c.log_every_steps = 50
  c.eval_every_steps = 200
  c.checkpoint.every_steps = 200
  c.model.name = "avenet"
  c.model.width = 0.25
  c.model.spectrogram_shape = (64, 98)
  c.optimizer.learning_rate = 1e-3

  d = c.data
  d.synthetic = config_lib.synthetic_world_config()
  d.sample_rate = 16000
  d.image_size = 64
  d.resize_shorter = 72
  d.spectrogram.kind = "mel"
  d.spectrogram.num_mel_bins = 64
  d.spectrogram.frame_length = 400
  d.spectrogram.frame_step = 160
  d.spectrogram.fft_length = 512
  d.shuffle_buffer = 512
  d.cache = True

  c.evals.avc.num_examples = 1024
  c.evals.retrieval = ml_collections.ConfigDict(
      dict(
          type="retrieval",
          k=30,
          level="video",
          probe=True,
          random_init=True,
          picture_queries=2,
      )
  )
  return c
