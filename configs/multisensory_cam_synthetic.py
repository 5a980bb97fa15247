r"""The Multisensory CAM net on the built-in synthetic world (CPU).

configs/multisensory_synthetic.py's sync net with a finer last map, for
localisation: 112 px frames, conv4 without stride and (3, 1, 1) fused stages
that mix time, started from the plain sync run (`--config.init_from=DIR`;
default /tmp/multisensory_synthetic) and trained on sync again, 600 steps, on
the bouncing world. It is the action chain's start
(configs/multisensory_motion_synthetic.py, configs/action_synthetic.py):

  python -m avself.main --config=configs/multisensory_synthetic.py \
      --workdir=/tmp/multisensory_synthetic
  python -m avself.main --config=configs/multisensory_cam_synthetic.py \
      --workdir=/tmp/multisensory_synthetic_cam

Variants (`--config=configs/multisensory_cam_synthetic.py:VARIANT`):
  runlocal  a few steps, to check that everything runs.
"""

import os

import ml_collections

from avself import config_lib

_BASE = config_lib.load_file(
    os.path.join(os.path.dirname(__file__), "multisensory_synthetic.py")
)


def cam_net(c: ml_collections.ConfigDict, image_size: int, stored: int) -> None:
  """The CAM net's strides and stages on image_size crops of frames stored at `stored` px."""
  c.data.image_size = image_size
  c.data.resize_shorter = stored
  c.data.synthetic.shorter_side = stored
  c.model.conv4_strides = (1, 1, 1)
  c.model.stage_kernel = (3, 1, 1)


# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ("runlocal",)


def get_config(arg=None):
  """The CAM net: 112 px frames, conv4 without stride, (3, 1, 1) stages; from the sync run.

  At 32 px the last conv map is 2 x 2 x 2 (t x h x w): even a perfect map
  upsampled from it points inside the sounding box in 0.10 of the frames, and
  every cell sees the whole frame. Here the world's 64 px frames are upsampled
  to 128 and centre-cropped to 112, and conv4 has no stride: a 4 x 14 x 14 map
  (a perfect one points right in 0.98 of the frames), whose cells see 51 px of
  the 112 (the video branch's reach); (3, 1, 1) kernels in the fused stages
  keep it so. Sync from scratch on larger frames sat at chance for 1000 steps
  (56 px), so this net starts from the 32 px run (`init_from`: its convs hold
  no frame size or stride; the stages take the centre taps of its 3 x 3 x 3
  kernels) and trains on sync again, 600 steps. Its heat is made of clips
  starting at every frame (the evaluator's `hop=1`, video_cam.video_heatmap),
  averaged with the mirrored video's (`flip`). docs/multisensory.md has the
  numbers.
  """
  variants = config_lib.variants(arg, VARIANTS)
  c = _BASE.get_config()
  c.init_from = "/tmp/multisensory_synthetic"
  # Chosen with the per-clip heat; not re-tuned for the sliding heat
  # (docs/multisensory.md).
  c.total_steps = 600
  c.eval_every_steps = 200
  c.checkpoint.every_steps = 200
  cam_net(c, image_size=112, stored=128)
  # Average in the mirrored video's maps: cancels the map's sideways offset
  # (docs/multisensory.md); twice the passes.
  c.evals.localization.flip = True
  if "runlocal" in variants:
    _BASE.runlocal(c)
  return c
