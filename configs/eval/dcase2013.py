r"""DCASE 2013 scenes audio linear probe: 5-fold cross-validation on the dev set.

  python -m avself.evaluate --workdir=/ckpt/run --config=configs/eval/dcase2013.py \
      --config.evals.dcase2013.data_dir=/data/tfds

Reports the mean clip accuracy over the 5 folds (10 classes: chance 0.1).
"""

import ml_collections
from ml_collections import config_dict

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ()


def get_config(arg=None):
  """The audio probe on DCASE 2013 scenes (TFDS `dcase2013_scenes`)."""
  config_lib.variants(arg, VARIANTS)
  c = ml_collections.ConfigDict()
  c.evals = ml_collections.ConfigDict()
  c.evals.dcase2013 = dict(
      type="linear_probe",
      modality="audio",
      source="tfds",
      dataset="dcase2013_scenes",
      data_dir="~/tensorflow_datasets",
      manual_dir="",
      train_split="train",
      test_split="",  # cross-validate by `fold` (1..5)
      hop_seconds=config_dict.placeholder(float),
      C=0.01,
      Cs=(),  # Cs=(...): choose C by inner CV instead
      random_init=True,
      random_seed=0,
  )
  return c
