r"""Action recognition on the synthetic world, fine-tuned from a sync checkpoint (CPU).

The labelled world is the motion world (`class_cue='motion'`): every object
looks the same, and its class is its speed (10 classes, log-spaced from 0.12
to 0.96 frame sizes per second; chance 0.1). As with actions, only motion
tells the classes apart. 400 videos, half for training (20 per class) and half
held out. The net is the CAM net's visual pathway (video branch and fusion
stages, fed silence) on 56 px clips. Pre-train and fine-tune, then train the
same network from scratch for the same number of steps:

  python -m avself.main --config=configs/multisensory_synthetic.py \
      --workdir=/tmp/multisensory_synthetic
  python -m avself.main --config=configs/multisensory_cam_synthetic.py \
      --workdir=/tmp/multisensory_synthetic_cam
  python -m avself.main --config=configs/multisensory_motion_synthetic.py \
      --workdir=/tmp/multisensory_synthetic_motion
  python -m avself.main --config=configs/action_synthetic.py \
      --config.init_from=/tmp/multisensory_synthetic_motion --workdir=/tmp/action_finetune
  python -m avself.main --config=configs/action_synthetic.py:scratch \
      --workdir=/tmp/action_scratch

The motion sync run goes on training the CAM net on 400 unlabelled videos of
another motion world (seed 1), at 56 px. docs/multisensory.md has the numbers
over three seeds on two machines: level with scratch, a point ahead on average
at step 600, ahead in 3 runs of 6. With two silent look-alikes beside the
sounding object it was behind, and a linear probe first (`optimizer.freeze`)
was further behind (docs/multisensory.md).

`--config.model.trunk=fresh` keeps only the video branch from the sync net
(new conv3..conv5 stages), which measured worse (docs/multisensory.md).

Variants (`--config=configs/action_synthetic.py:VARIANT`, comma-separated):
  scratch   init_from = '': random initialisation (the baseline).
  look      the sync world's classes instead (colour and shape; its 240
            videos, 48 held out), from the CAM net, 300 steps at a constant
            rate: the setting of the earlier table, where scratch wins.
  noflash   a world whose bounces do not flash (`flash=0`): a bounce is seen
            only as a turn, for sync as in real video. Fine-tuned from
            `multisensory_motion_synthetic.py:noflash`
            (/tmp/multisensory_synthetic_motion_noflash).
  runlocal  a few steps, to check that everything runs.
"""

import os

import ml_collections

from avself import config_lib


def _cam_config_module():
  """configs/multisensory_cam_synthetic.py, the net the pre-training trains."""
  return config_lib.load_file(
      os.path.join(
          os.path.dirname(os.path.abspath(__file__)),
          "multisensory_cam_synthetic.py",
      )
  )


# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ("scratch", "look", "noflash", "runlocal")


def get_config(arg=None):
  """ActionClassifier with the CAM net's width, strides and stages, on the motion world."""
  variants = config_lib.variants(arg, VARIANTS)
  sync = _cam_config_module().get_config()
  c = config_lib.base_config()
  c.task = "action"
  c.init_from = "/tmp/multisensory_synthetic_motion"
  c.batch_size = 16
  c.total_steps = 600
  c.log_every_steps = 25
  c.eval_every_steps = 100
  c.checkpoint.every_steps = 100
  c.model = ml_collections.ConfigDict(sync.model.to_dict())
  c.model.num_classes = sync.data.synthetic.num_classes
  c.model.trunk = "fusion"  # the sync net's whole visual pathway
  c.data = ml_collections.ConfigDict(sync.data.to_dict())
  # 56 px clips (the world's 64 px, centre crop), half the CAM net's 112: a
  # quarter of the compute; the convs take any frame size.
  c.data.image_size = 56
  c.data.resize_shorter = 64
  c.data.synthetic.shorter_side = 64
  c.data.synthetic.class_cue = "motion"  # one look; the class is the speed
  c.data.synthetic.num_videos = 400
  c.data.synthetic.test_fraction = (
      0.5  # 200 held-out videos: +-0.03 noise, not +-0.07
  )
  c.data.sync.paired = (
      False  # one waveform per clip is enough (and it is unused)
  )
  c.optimizer.learning_rate = 1e-3
  c.optimizer.schedule = "cosine"
  c.evals = ml_collections.ConfigDict()
  c.evals.action = dict(type="classification", num_examples=512)
  if "look" in variants:
    c.data.synthetic = ml_collections.ConfigDict(sync.data.synthetic.to_dict())
    c.data.synthetic.shorter_side = 64
    c.init_from = "/tmp/multisensory_synthetic_cam"
    c.total_steps = 300
    c.optimizer.schedule = "constant"
  if "noflash" in variants:
    c.data.synthetic.flash = 0.0
    c.init_from = "/tmp/multisensory_synthetic_motion_noflash"
  if "scratch" in variants:
    c.init_from = ""
  if "runlocal" in variants:
    c.total_steps = 4
    c.eval_every_steps = c.checkpoint.every_steps = 4
    c.evals.action.num_examples = 32
  return c
