"""Tiny configs shared by the tests: seconds on CPU, same code paths as paper scale."""
import ml_collections

from avself import config_lib


def tiny_world() -> ml_collections.ConfigDict:
  """A small synthetic world: 48 clips of 3 s at 64x64."""
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
  return s


def tiny_config(records_dir: str = "") -> ml_collections.ConfigDict:
  """L3-Net at width 1/8 on 32x32 frames and 32x49 log-mel spectrograms."""
  c = config_lib.base_config()
  c.batch_size = 16
  c.total_steps = 4
  c.log_every_steps = 2
  c.eval_every_steps = 2
  c.checkpoint.every_steps = 2
  c.checkpoint.async_save = False
  c.model.width = 0.125
  c.model.spectrogram_shape = (32, 49)
  c.optimizer.learning_rate = 2e-3
  d = c.data
  d.path = records_dir
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
