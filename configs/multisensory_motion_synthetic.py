r"""Multisensory sync on unlabelled videos of the motion world (CPU, ~5 min).

configs/action_synthetic.py classifies clips by how fast their object moves
(the world's `class_cue='motion'`: one look for all classes). This run goes on
training the CAM net (configs/multisensory_cam_synthetic.py;
`--config.init_from=DIR`, default /tmp/multisensory_synthetic_cam) on sync, on
400 other videos of that world (seed 1; the labelled world is seed 0), at the
action config's 56 px, labels unused, as a user would pre-train on their own
unlabelled videos before fine-tuning on a few labelled ones. It is the
pre-training of configs/action_synthetic.py:

  python -m avself.main --config=configs/multisensory_synthetic.py \
      --workdir=/tmp/multisensory_synthetic
  python -m avself.main --config=configs/multisensory_cam_synthetic.py \
      --workdir=/tmp/multisensory_synthetic_cam
  python -m avself.main --config=configs/multisensory_motion_synthetic.py \
      --workdir=/tmp/multisensory_synthetic_motion

Variants (`--config=configs/multisensory_motion_synthetic.py:VARIANT`):
  noflash   the world's bounces do not flash (`flash=0`), so a bounce is seen
            only as the turn of the object's path and sync must be told from
            motion. From scratch, 3000 steps (~14 min): the pre-training of
            configs/action_synthetic.py:noflash
            (`--workdir=/tmp/multisensory_synthetic_motion_noflash`).
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
VARIANTS = ("noflash", "runlocal")


def get_config(arg=None):
  """Sync on the motion world with the CAM net's strides and stages at 56 px."""
  variants = config_lib.variants(arg, VARIANTS)
  c = _BASE.get_config()
  c.init_from = "/tmp/multisensory_synthetic_cam"
  c.total_steps = 1000
  c.eval_every_steps = 250
  c.checkpoint.every_steps = 250
  _CAM.cam_net(c, image_size=56, stored=64)
  c.data.synthetic.class_cue = "motion"
  c.data.synthetic.seed = 1
  c.data.synthetic.num_videos = 400
  del c.evals["localization"]  # a 56 px map is not the CAM net's
  if "noflash" in variants:
    c.data.synthetic.flash = 0.0
    c.init_from = ""  # sync from motion alone is learnt from scratch
    c.total_steps = 3000
    c.eval_every_steps = c.checkpoint.every_steps = 500
  if "runlocal" in variants:
    _BASE.runlocal(c)
  return c
