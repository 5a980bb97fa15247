r"""A seconds-long L3-Net smoke run (tests, multi-process emulation, CI).

python -m avself.main --config=configs/l3_tiny.py --workdir=/tmp/l3_tiny
launch/local_multiprocess.sh 2 2 --config=configs/l3_tiny.py --workdir=/tmp/l3_mp
"""

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ()


def get_config(arg=None):
  """Width 1/8, 32x32 frames, 32x49 log-mel, a 48-clip synthetic world."""
  config_lib.variants(arg, VARIANTS)
  c = config_lib.base_config()
  c.batch_size = 16
  c.total_steps = 20
  c.log_every_steps = 5
  c.eval_every_steps = 20
  c.checkpoint.every_steps = 10
  c.model.width = 0.125
  c.model.spectrogram_shape = (32, 49)
  c.optimizer.learning_rate = 2e-3

  s = config_lib.synthetic_world_config()
  s.num_videos = 48
  s.size = 64
  s.fps = 10.0
  s.duration = 3.0
  s.test_fraction = 0.25
  s.prepare_fps = 10.0
  s.shorter_side = 40
  s.num_shards = 4
  s.workers = 2
  d = c.data
  d.synthetic = s
  d.sample_rate = 16000
  d.image_size = 32
  d.resize_shorter = 40
  d.spectrogram.kind = "mel"
  d.spectrogram.num_mel_bins = 32
  d.spectrogram.frame_length = 400
  d.spectrogram.frame_step = 320
  d.spectrogram.fft_length = 512
  d.shuffle_buffer = 128
  d.samples_per_video = 4
  d.cache = True
  d.cycle_length = 4
  c.evals.avc.num_examples = 64
  return c
