r"""Held-out AVC and the audio probe at 1, 5 and all labelled clips per class.

How much learned audio features beat a random-init network's depends on how
few labels the probe gets (docs/other_data.md): each probe here also runs on
the random-init network of the same config.

  python -m avself.evaluate --workdir=/tmp/l3_synthetic \
      --config=configs/eval/audio_probe_labels.py [--config.data.path=DIR]

  audio_probe_1    1 labelled clip per class, mean over 10 draws
  audio_probe_5    5 labelled clips per class, mean over 10 draws (as
                   `audio_probe` in configs/eval/probe_synthetic.py)
  audio_probe_all  every labelled training clip
"""

import ml_collections
from ml_collections import config_dict

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ()


def get_config(arg=None):
  """AVC accuracy + audio probes at 1, 5 and all labels per class."""
  config_lib.variants(arg, VARIANTS)
  c = ml_collections.ConfigDict()
  c.data = ml_collections.ConfigDict(dict(path=config_dict.placeholder(str)))
  c.evals = ml_collections.ConfigDict()
  c.evals.avc = dict(type="avc", num_examples=1024)
  probe = dict(
      type="linear_probe",
      source="records",
      modality="audio",
      C=0.01,
      random_init=True,
      random_seed=0,
  )
  c.evals.audio_probe_1 = dict(probe, train_clips_per_class=1, episodes=10)
  c.evals.audio_probe_5 = dict(probe, train_clips_per_class=5, episodes=10)
  c.evals.audio_probe_all = dict(probe)
  return c
