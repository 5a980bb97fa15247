r"""ESC-50 audio linear probe: 5-fold cross-validation over the dataset's folds.

Build the dataset once (docs/datasets.md), then:

  python -m avself.evaluate --workdir=/ckpt/run --config=configs/eval/esc50.py \
      --config.evals.esc50.data_dir=/data/tfds \
      [--config.evals.esc50.manual_dir=/data/downloads/esc50]

Reports the mean clip accuracy over the 5 folds (chance 0.02) for the trained
and for a random-init network.
"""

import ml_collections
from ml_collections import config_dict

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ()


def get_config(arg=None):
  """The audio probe on ESC-50 (TFDS `esc50`)."""
  config_lib.variants(arg, VARIANTS)
  c = ml_collections.ConfigDict()
  c.evals = ml_collections.ConfigDict()
  c.evals.esc50 = dict(
      type="linear_probe",
      modality="audio",
      source="tfds",
      dataset="esc50",
      data_dir="~/tensorflow_datasets",
      manual_dir="",  # '' = already built
      train_split="train",
      test_split="",  # '' = cross-validate by `fold`
      hop_seconds=config_dict.placeholder(
          float
      ),  # None: 1 s windows, no overlap
      C=0.01,
      Cs=(),  # Cs=(...): choose C by inner CV instead
      random_init=True,
      random_seed=0,
  )
  return c
