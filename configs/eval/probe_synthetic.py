r"""Held-out AVC accuracy and linear probes (audio, vision) on the synthetic world.

Train the demo, then score its checkpoint; each probe also runs on a
random-init network of the same config (`random_init_accuracy`):

  python -m avself.main --config=configs/l3_synthetic.py --workdir=/tmp/l3_synthetic
  python -m avself.evaluate --workdir=/tmp/l3_synthetic \
      --config=configs/eval/probe_synthetic.py

The probes fit on the records' `train` split and score the `test` split's
clips (10 classes: chance is 0.1). `--config.data.path=DIR` scores other
records (prepared at the same sample rate). See docs/evaluation.md.
"""
import ml_collections
from ml_collections import config_dict


def get_config(arg=None):
  """AVC accuracy + audio and vision probes on the run's own records."""
  del arg
  c = ml_collections.ConfigDict()
  # None: the records the checkpoint was trained on (the config stored with it).
  c.data = ml_collections.ConfigDict(dict(path=config_dict.placeholder(str)))
  c.evals = ml_collections.ConfigDict()
  c.evals.avc = dict(type="avc", num_examples=1024)
  for modality in ("audio", "vision"):
    c.evals[f"{modality}_probe"] = dict(
        type="linear_probe", modality=modality, source="records",
        C=0.01, Cs=(),  # Cs=(0.001, 0.01, 0.1): choose C by inner CV instead
        random_init=True, random_seed=0)
  return c
