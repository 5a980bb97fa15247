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
  # The rest is base_config's paper-scale L3-Net: batch 256, Adam lr 1e-4 with
  # L2 weight decay 1e-5, 224 px crops, 1 s at 48 kHz as a 257 x 199 log
  # spectrogram.
  c.total_steps = 60_000_000 // 256  # 60M pairs.
  c.eval_every_steps = 10_000
  c.checkpoint.every_steps = 5_000
  c.data.shuffle_buffer = 20_000
  # bfloat16 compute on TPUs and GPUs (parameters and optimiser state stay
  # float32), float32 on CPUs.
  c.model.dtype = "auto"
  if "runlocal" in config_lib.variants(arg, VARIANTS):
    c.batch_size = 8
    c.total_steps = 20
    c.log_every_steps = 5
    c.eval_every_steps = 20
    c.checkpoint.every_steps = 10
    c.data.shuffle_buffer = 64
    c.evals.avc.num_examples = 64
  return c
