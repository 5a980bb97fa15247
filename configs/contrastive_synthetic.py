r"""In-batch contrastive AVE-Net towers on the synthetic world (beyond the papers).

The towers of configs/avenet_synthetic.py, trained on positive pairs only
(pipeline mode `pairs`) with symmetric InfoNCE over the global batch and a
learnable temperature; `:sigmoid` uses the SigLIP pairwise sigmoid loss
instead. Same world, sizes, batch and steps as the AVE-Net config, so the two
see the same number of frames and sounds (docs/retrieval.md compares them):

  python -m avself.main --config=configs/contrastive_synthetic.py --workdir=/tmp/contrastive
  python -m avself.main --config=configs/contrastive_synthetic.py:sigmoid --workdir=/tmp/siglip
"""

import ml_collections

from avself import config_lib
from avself.tasks import contrastive

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ("sigmoid",)


def get_config(arg=None):
  """`arg`: '' (InfoNCE) or 'sigmoid'."""
  c = config_lib.base_config()
  c.task = "contrastive"
  c.batch_size = 32
  c.total_steps = 600
  c.log_every_steps = 50
  c.eval_every_steps = 200
  c.checkpoint.every_steps = 200
  c.model.name = "avenet"
  c.model.width = 0.25
  c.model.spectrogram_shape = (64, 98)
  c.optimizer.learning_rate = 1e-3
  c.contrastive = contrastive.default_options()
  if "sigmoid" in config_lib.variants(arg, VARIANTS):
    c.contrastive.loss = "sigmoid"
    c.contrastive.temperature_init = 0.1  # SigLIP: t' = log 10

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
  # No AVC evaluator: the task has no mismatched pairs to classify.
  c.evals = ml_collections.ConfigDict()
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
