r"""Kinetics-Sounds linear probes (audio and vision): fit on train, score validation.

  python -m avself.evaluate --workdir=/ckpt/run --config=configs/eval/kinetics_sounds.py \
      --config.evals.ks_audio.data_dir=/data/tfds --config.evals.ks_vision.data_dir=/data/tfds

The vision probe takes, for every 1 s audio window, the frame at its centre
(`kinetics_sounds/fps1` stores one frame a second, enough for this).
"""

import ml_collections
from ml_collections import config_dict

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ()


def get_config(arg=None):
  """Audio and vision probes on TFDS `kinetics_sounds/fps1`."""
  config_lib.variants(arg, VARIANTS)
  c = ml_collections.ConfigDict()
  c.evals = ml_collections.ConfigDict()
  for modality in ("audio", "vision"):
    c.evals[f"ks_{modality}"] = dict(
        type="linear_probe",
        modality=modality,
        source="tfds",
        dataset="kinetics_sounds/fps1",
        data_dir="~/tensorflow_datasets",
        manual_dir="",
        train_split="train",
        test_split="validation",
        hop_seconds=config_dict.placeholder(float),
        C=0.01,
        Cs=(),  # Cs=(...): choose C by inner CV instead
        random_init=True,
        random_seed=0,
    )
  return c
