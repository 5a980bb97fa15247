r"""L3-Net on Kinetics-Sounds (34 classes; Arandjelovic & Zisserman 2017, Sec. 4).

  python -m avself.data.prepare --videos='/data/kinetics_sounds/videos/**/*.mp4' \
      --labels=/data/kinetics_sounds/labels.csv --output=/data/ks/records \
      --num_shards=256 --sample_rate=48000
  python -m avself.main --config=configs/l3_kinetics_sounds.py \
      --config.data.path=/data/ks/records --workdir=/ckpt/l3_ks
"""

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ("runlocal",)


def get_config(arg=None):
  """Paper-scale L3-Net on Kinetics-Sounds."""
  c = config_lib.base_config()
  c.batch_size = 256
  c.total_steps = 200_000
  c.eval_every_steps = 10_000
  c.checkpoint.every_steps = 5_000
  c.model.spectrogram_shape = (257, 199)
  # bfloat16 compute on TPUs and GPUs (parameters and optimiser state stay
  # float32), float32 on CPUs.
  c.model.dtype = "auto"
  d = c.data
  d.path = ""
  d.sample_rate = 48000
  d.image_size = 224
  d.resize_shorter = 256
  d.spectrogram.kind = "log"
  d.spectrogram.frame_length = 480
  d.spectrogram.frame_step = 240
  d.spectrogram.fft_length = 512
  d.shuffle_buffer = 10_000
  if "runlocal" in config_lib.variants(arg, VARIANTS):
    c.batch_size = 8
    c.total_steps = 20
    c.evals.avc.num_examples = 64
  return c
