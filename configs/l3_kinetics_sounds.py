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
  # The rest is base_config's paper-scale L3-Net: batch 256, Adam lr 1e-4 with
  # L2 weight decay 1e-5, 224 px crops, 1 s at 48 kHz as a 257 x 199 log
  # spectrogram.
  c.total_steps = 200_000
  c.eval_every_steps = 10_000
  c.checkpoint.every_steps = 5_000
  c.data.shuffle_buffer = 10_000
  # bfloat16 compute on TPUs and GPUs (parameters and optimiser state stay
  # float32), float32 on CPUs.
  c.model.dtype = "auto"
  if "runlocal" in config_lib.variants(arg, VARIANTS):
    c.batch_size = 8
    c.total_steps = 20
    c.evals.avc.num_examples = 64
  return c
