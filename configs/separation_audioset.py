r"""On/off-screen separation at paper scale (Owens & Efros 2018, Sec. 5).

Mixtures of two 4.2 s clips of prepared AudioSet- or VoxCeleb-style records
(the pipeline's `mixture` mode: a clip's sound on screen, another video's
off screen), 63 frames (15 fps) of 224 px crops, 21 kHz stereo. The u-net has
the paper's 7 levels (64 .. 512 filters) on the mono mixture's STFT (1022-
sample Hann windows, hop 256: 512 x 346, padded to 512 x 384), the sync net's
conv3_2, conv4_2 and conv5_2 joining after levels 2, 3 and 4; it starts from
the sync run (configs/multisensory_audioset.py) and fine-tunes all of it.

  python -m avself.main --config=configs/separation_audioset.py \
      --config.data.path=/data/audioset/records \
      --config.init_from=/ckpt/multisensory --workdir=/ckpt/separation
  python -m avself.separate --workdir=/ckpt/separation CLIP.mp4 --output=DIR

Variants (`--config=configs/separation_audioset.py:VARIANT[,VARIANT]`):
  pit       audio-only u-net with the permutation-invariant loss (baseline).
  scratch   random-init video features (no `init_from`).
  frozen    the sync net held (parameters and BatchNorm statistics).
  runlocal  a few tiny steps on whatever --config.data.path holds.
"""

import ml_collections

from avself import config_lib
from avself.tasks import separation

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ("pit", "scratch", "frozen", "runlocal")


def get_config(arg=None):
  """The paper's clips, sync net and u-net."""
  variants = config_lib.variants(arg, VARIANTS)
  c = config_lib.base_config()
  c.task = "separation"
  c.init_from = "/ckpt/multisensory"
  c.batch_size = 16
  c.total_steps = 200_000
  c.log_every_steps = 100
  c.eval_every_steps = 10_000
  c.checkpoint.every_steps = 5_000
  m = c.model
  m.name = "separation"
  m.width = 1.0
  m.conv5_stride = 2
  m.conv4_strides = (2, 2, 2)
  m.stage_kernel = (3, 3, 3)
  m.spectrogram_shape = ()  # the task makes its own STFT
  m.encoder_features = (64, 128, 256, 512, 512, 512, 512)
  m.merge_levels = (2, 3, 4)
  m.unet_width = 1.0
  m.frame_length = 1022
  m.frame_step = 256
  m.log_offset = 1e-3
  m.use_video = True
  m.pit_weight = 0.0  # the fixed-order L1 alone (docs/separation.md)
  m.video_norm = False  # the sync features as they come
  m.freeze_video = False
  m.phase_input = True
  c.optimizer.learning_rate = 1e-4
  c.optimizer.grad_clip_norm = 5.0

  d = c.data
  d.path = ""
  d.sample_rate = 21000
  d.channels = 2
  d.image_size = 224
  d.resize_shorter = 256
  d.mixture = dict(num_frames=63, clip_seconds=4.2)
  d.augment = dict(flip=True, brightness=0.2, saturation=0.2, audio_gain=0.1)
  d.samples_per_video = 2
  d.shuffle_buffer = 256
  c.evals = ml_collections.ConfigDict()
  c.evals.separation = dict(type="separation", num_examples=1024, num_images=4)
  if "pit" in variants:
    m.use_video = False
    c.init_from = ""
  if "scratch" in variants:
    c.init_from = ""
  if "runlocal" in variants:
    c.batch_size = 8
    c.total_steps = 4
    m.width = 0.125
    m.unet_width = 0.125
    c.init_from = ""
    c.eval_every_steps = c.checkpoint.every_steps = 4
    c.evals.separation.num_examples = 8
  if "frozen" in variants:
    separation.freeze_config(c)
  return c
