r"""Multisensory sync + CAM on the built-in synthetic world (CPU, ~20 min).

Builds its own synthetic world (cached; 8 s clips so that a 1.6 s clip and a
shift of 1-3 s always fit), trains a tiny Multisensory net to tell aligned
from shifted audio, and reports held-out sync accuracy (chance 0.5) and CAM
pointing accuracy beside the centre-pixel baseline:

  python -m avself.main --config=configs/multisensory_synthetic.py \
      --workdir=/tmp/multisensory_synthetic

The runs that start from it build on this file, each in its own:
  configs/multisensory_cam_synthetic.py    the CAM net (112 px, finer map).
  configs/multisensory_voice_synthetic.py  the CAM net on the speaking world.
  configs/multisensory_motion_synthetic.py sync on the motion world (the
                                           pre-training of
                                           configs/action_synthetic.py).

Variants (`--config=configs/multisensory_synthetic.py:VARIANT`):
  runlocal  a few steps, to check that everything runs.
"""

import ml_collections

from avself import config_lib


def synthetic_world() -> ml_collections.ConfigDict:
  """The world shared by the sync and action configs (same cache key)."""
  s = config_lib.synthetic_world_config()
  s.num_videos = 240
  s.size = 64
  s.fps = 10.0
  s.duration = 8.0
  s.prepare_fps = 10.0  # = the clip rate below: no bounce flash is skipped
  s.shorter_side = 36
  s.num_shards = 4
  # Sync needs bounces that stand out: one visible object (every flash is the
  # sounding object's), no off-screen source, and a quiet hum under the bursts.
  s.max_objects = 1
  s.offscreen_prob = 0.0
  s.hum_level = 0.05
  return s


def data_config(c: ml_collections.ConfigDict) -> None:
  """Tiny clips: 16 frames (1.6 s) of 32x32 and 8 kHz mono, shifts of 1-3 s."""
  d = c.data
  d.synthetic = synthetic_world()
  d.sample_rate = 8000
  d.channels = 1
  d.image_size = 32
  d.resize_shorter = 36
  d.sync = dict(
      num_frames=16, clip_seconds=1.6, min_shift=1.0, max_shift=3.0, paired=True
  )
  d.augment = dict(flip=True, brightness=0.1, saturation=0.1, audio_gain=0.1)
  d.samples_per_video = 4
  d.shuffle_buffer = 256
  d.cache = True
  d.cycle_length = 4


# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ("runlocal",)


def get_config(arg=None):
  """Width 1/8 with the CAM net's conv5 stride 1 (a 2x2 rather than 1x1 map at 32 px)."""
  c = config_lib.base_config()
  c.task = "sync"
  c.batch_size = 16
  c.total_steps = 3000
  c.log_every_steps = 50
  c.eval_every_steps = 500
  c.checkpoint.every_steps = 500
  c.model.name = "multisensory"
  c.model.width = 0.125
  c.model.conv5_stride = 1
  c.model.conv4_strides = (2, 2, 2)
  c.model.stage_kernel = (3, 3, 3)
  c.init_from = ""
  c.model.spectrogram_shape = ()  # raw waveform: no spectrogram front end
  c.optimizer.learning_rate = 1e-3
  c.optimizer.grad_clip_norm = 5.0  # as the authors' shift_params.py
  data_config(c)
  c.evals = ml_collections.ConfigDict()
  c.evals.sync = dict(type="sync", num_examples=256)
  # Heat of clips starting at every frame (hop=1): docs/multisensory.md.
  c.evals.localization = dict(
      type="localization", num_videos=24, num_images=4, hop=1
  )
  if "runlocal" in config_lib.variants(arg, VARIANTS):
    runlocal(c)
  return c


def runlocal(c: ml_collections.ConfigDict) -> None:
  """A few steps and small evaluations, to check that everything runs."""
  c.total_steps = 4
  c.eval_every_steps = c.checkpoint.every_steps = 4
  c.evals.sync.num_examples = 32
  if "localization" in c.evals:
    c.evals.localization.num_videos = 2
