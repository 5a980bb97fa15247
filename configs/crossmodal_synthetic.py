r"""Surís et al. 2018 cross-modal embeddings on the synthetic world.

AVE-Net's towers trained on AVC pairs with the cosine embedding loss (margin)
plus the shared-classifier regulariser on the world's 10 classes
(`avself/tasks/crossmodal.py`); scored by AVC accuracy (a pair is called
matched when its cosine clears (1 + margin) / 2) and retrieval:
  python -m avself.main --config=configs/crossmodal_synthetic.py --workdir=/tmp/crossmodal
"""

from avself import config_lib
from avself.tasks import crossmodal

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ()


def get_config(arg=None):
  """Same world, sizes and budget as configs/avenet_synthetic.py."""
  config_lib.variants(arg, VARIANTS)
  c = config_lib.synthetic_towers_config("avenet")
  c.task = "crossmodal"
  c.crossmodal = crossmodal.default_options()
  c.crossmodal.num_classes = 10  # = config.data.synthetic.num_classes
  c.evals.retrieval = config_lib.retrieval_eval()
  return c
