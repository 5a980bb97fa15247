r"""In-batch contrastive AVE-Net towers on the synthetic world (beyond the papers).

The towers of configs/avenet_synthetic.py, trained on positive pairs only
(pipeline mode `pairs`) with symmetric InfoNCE over the global batch and a
learnable temperature; `:sigmoid` uses the SigLIP pairwise sigmoid loss
instead. Same world, sizes, batch and steps as the AVE-Net config, so the two
see the same number of frames and sounds (docs/retrieval.md compares them):
  python -m avself.main --config=configs/contrastive_synthetic.py --workdir=/tmp/contrastive
  python -m avself.main --config=configs/contrastive_synthetic.py:sigmoid --workdir=/tmp/siglip
"""

import ml_collections

from avself import config_lib
from avself.tasks import contrastive

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ("sigmoid",)


def get_config(arg=None):
  """`arg`: '' (InfoNCE) or 'sigmoid'."""
  c = config_lib.synthetic_towers_config("avenet")
  c.task = "contrastive"
  c.contrastive = contrastive.default_options()
  if "sigmoid" in config_lib.variants(arg, VARIANTS):
    c.contrastive.loss = "sigmoid"
    c.contrastive.temperature_init = 0.1  # SigLIP: t' = log 10
  # No AVC evaluator: the task has no mismatched pairs to classify.
  c.evals = ml_collections.ConfigDict()
  c.evals.retrieval = config_lib.retrieval_eval()
  return c
