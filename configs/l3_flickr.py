r"""L3-Net at paper scale on Flickr-SoundNet (Arandjelovic & Zisserman, ICCV 2017).

400k videos, batch 256, Adam 1e-4 with weight decay 1e-5, 60M pairs
(~234k steps). Prepare the videos once (48 kHz mono, shorter side 256):

  python -m avself.data.prepare --videos='/data/flickr/videos/*' \
      --output=/data/flickr/records --num_shards=1024 --sample_rate=48000
  python -m avself.main --config=configs/l3_flickr.py \
      --config.data.path=/data/flickr/records --workdir=/ckpt/l3_flickr

`--config=configs/l3_flickr.py:runlocal` shrinks everything for a smoke test.
"""

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ("runlocal",)


def get_config(arg=None):
  """Paper-scale L3-Net; `runlocal` for a laptop-size smoke run."""
  c = config_lib.base_config()
  c.batch_size = 256
  c.total_steps = 60_000_000 // 256  # 60M pairs.
  c.log_every_steps = 100
  c.eval_every_steps = 10_000
  c.checkpoint.every_steps = 5_000
  c.model.width = 1.0
  # bfloat16 compute on TPUs and GPUs (parameters and optimiser state stay
  # float32), float32 on CPUs.
  c.model.dtype = "auto"
  c.model.spectrogram_shape = (257, 199)
  c.optimizer.learning_rate = 1e-4
  c.optimizer.weight_decay = 1e-5
  d = c.data
  d.path = (
      ""  # Set with --config.data.path=DIR (output of avself.data.prepare).
  )
  d.sample_rate = 48000
  d.image_size = 224
  d.resize_shorter = 256
  d.spectrogram.kind = "log"
  d.spectrogram.frame_length = 480
  d.spectrogram.frame_step = 240
  d.spectrogram.fft_length = 512
  d.shuffle_buffer = 20_000
  if "runlocal" in config_lib.variants(arg, VARIANTS):
    c.batch_size = 8
    c.total_steps = 20
    c.log_every_steps = 5
    c.eval_every_steps = 20
    c.checkpoint.every_steps = 10
    c.data.shuffle_buffer = 64
    c.evals.avc.num_examples = 64
  return c
