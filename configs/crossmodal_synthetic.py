r"""Surís et al. 2018 cross-modal embeddings on the synthetic world.

AVE-Net's towers trained on AVC pairs with the cosine embedding loss (margin)
plus the shared-classifier regulariser on the world's 10 classes
(`avself/tasks/crossmodal.py`); scored by AVC accuracy (a pair is called
matched when its cosine clears (1 + margin) / 2) and retrieval:

  python -m avself.main --config=configs/crossmodal_synthetic.py --workdir=/tmp/crossmodal
"""

import ml_collections

from avself import config_lib
from avself.tasks import crossmodal

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ()


def get_config(arg=None):
  """Same world, sizes and budget as configs/avenet_synthetic.py."""
  config_lib.variants(arg, VARIANTS)
  c = config_lib.base_config()
  c.task = "crossmodal"
  c.batch_size = 32
  c.total_steps = 600
  c.log_every_steps = 50
  c.eval_every_steps = 200
  c.checkpoint.every_steps = 200
  c.model.name = "avenet"
  c.model.width = 0.25
  c.model.spectrogram_shape = (64, 98)
  c.optimizer.learning_rate = 1e-3
  c.crossmodal = crossmodal.default_options()
  c.crossmodal.num_classes = 10  # = config.data.synthetic.num_classes

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
