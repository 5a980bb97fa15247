r"""L3-Net on the built-in synthetic world: the default demo (CPU, minutes).

Builds the synthetic world (cached), prepares records through the same
`avself.data.prepare` path users take, trains a small L3-Net and reports
held-out AVC accuracy (chance is 0.5):

  python -m avself.main --config=configs/l3_synthetic.py --workdir=/tmp/l3_synthetic
"""
from avself import config_lib


def get_config(arg=None):
  """Small widths and resolutions so that 2 CPU cores train it in minutes."""
  del arg
  c = config_lib.base_config()
  c.batch_size = 32
  c.total_steps = 600
  c.log_every_steps = 50
  c.eval_every_steps = 200
  c.checkpoint.every_steps = 200
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
  return c
