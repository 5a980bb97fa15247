r"""AVOL-Net on the synthetic world: correspondence that points at the sound.

`avself/tasks/avol.py` (sigmoid cross-entropy on AVC pairs, one max-pooled
logit per pair); scored by AVC accuracy and by the pointing accuracy of the
localisation map against the world's sounding-object boxes, beside the centre
baseline and a random-init net (`evaluators/av_localization.py`):
  python -m avself.main --config=configs/avol_synthetic.py --workdir=/tmp/avol
"""

import ml_collections

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ()


def get_config(arg=None):
  """Same world, sizes and budget as configs/avenet_synthetic.py."""
  config_lib.variants(arg, VARIANTS)
  c = config_lib.synthetic_towers_config("avol")
  c.task = "avol"
  c.evals.localization = ml_collections.ConfigDict(
      dict(
          type="av_localization",
          num_videos=0,
          windows_per_video=0,
          num_pictures=8,
      )
  )
  return c
