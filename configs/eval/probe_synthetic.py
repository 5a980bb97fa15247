r"""Held-out AVC accuracy and linear probes (audio, vision) on the synthetic world.

Train the demo, then score its checkpoint; each probe also runs on a
random-init network of the same config (`random_init_accuracy`):

  python -m avself.main --config=configs/l3_synthetic.py --workdir=/tmp/l3_synthetic
  python -m avself.evaluate --workdir=/tmp/l3_synthetic \
      --config=configs/eval/probe_synthetic.py

The probes fit on the records' `train` split and score every clip of the
`test` split (10 classes: chance is 0.1):

  audio_probe      5 labelled clips per class, the mean over 10 draws of
                   them (`episodes`): few labels beside many unlabelled
                   videos, the regime where learned features matter (ESC-50
                   has 32 labelled clips per class per fold)
  audio_probe_all  every labelled training clip
  vision_probe     every labelled training clip

`--config.data.path=DIR` scores other records (prepared at the same sample
rate). See docs/evaluation.md.
"""

import ml_collections
from ml_collections import config_dict

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ()


def get_config(arg=None):
  """AVC accuracy + audio (few-label and all-label) and vision probes on the run's records."""
  config_lib.variants(arg, VARIANTS)
  c = ml_collections.ConfigDict()
  # None: the records the checkpoint was trained on (the config stored with it).
  c.data = ml_collections.ConfigDict(dict(path=config_dict.placeholder(str)))
  c.evals = ml_collections.ConfigDict()
  c.evals.avc = dict(type="avc", num_examples=1024)
  probe = dict(
      type="linear_probe",
      source="records",
      C=0.01,
      Cs=(),  # Cs=(0.001, 0.01, 0.1): choose C by inner CV instead
      random_init=True,
      random_seed=0,
  )
  c.evals.audio_probe = dict(
      probe, modality="audio", train_clips_per_class=5, episodes=10
  )
  c.evals.audio_probe_all = dict(probe, modality="audio")
  c.evals.vision_probe = dict(probe, modality="vision")
  return c
