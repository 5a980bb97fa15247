r"""Material (class) probes of the sonorization net's frozen RGB features.

Owens et al. (2016) ask whether a net trained to predict sound learns what
an object is made of. On the run's records (the synthetic world: 10
classes, chance 0.1) the RGB stream's L3-style transfer features (conv4_2,
max-pooled to 4x4) of each 1 s window's centre frame, beside a random-init
net of the same config:

  python -m avself.evaluate --workdir=/tmp/sonorize_synthetic \
      --config=configs/eval/probe_sonorize_synthetic.py

  vision_probe      5 labelled clips per class, mean over 10 draws
  vision_probe_all  every labelled training clip
"""

import ml_collections
from ml_collections import config_dict

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ()


def get_config(arg=None):
  """Few-label and all-label vision probes."""
  config_lib.variants(arg, VARIANTS)
  c = ml_collections.ConfigDict()
  c.data = ml_collections.ConfigDict(dict(path=config_dict.placeholder(str)))
  c.evals = ml_collections.ConfigDict()
  probe = dict(
      type="linear_probe",
      modality="vision",
      source="records",
      C=0.01,
      Cs=(),
      random_init=True,
      random_seed=0,
  )
  c.evals.vision_probe = dict(probe, train_clips_per_class=5, episodes=10)
  c.evals.vision_probe_all = dict(probe)
  return c
