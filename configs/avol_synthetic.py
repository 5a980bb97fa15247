r"""AVOL-Net on the synthetic world: correspondence that points at the sound.

`avself/tasks/avol.py` (sigmoid cross-entropy on AVC pairs, one max-pooled
logit per pair); scored by AVC accuracy and by the pointing accuracy of the
localisation map against the world's sounding-object boxes, beside the centre
baseline and a random-init net (`evaluators/av_localization.py`):

  python -m avself.main --config=configs/avol_synthetic.py --workdir=/tmp/avol
"""

import ml_collections

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ()


def get_config(arg=None):
  """Same world, sizes and budget as configs/avenet_synthetic.py."""
  config_lib.variants(arg, VARIANTS)
  c = config_lib.base_config()
  c.task = "avol"
  c.batch_size = 32
  c.total_steps = 600
  c.log_every_steps = 50
  c.eval_every_steps = 200
  c.checkpoint.every_steps = 200
  c.model.name = "avol"
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
  c.evals.localization = ml_collections.ConfigDict(
      dict(
          type="av_localization",
          num_videos=0,
          windows_per_video=0,
          num_pictures=8,
      )
  )
  return c
