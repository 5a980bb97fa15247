r"""AVE-Net on the built-in synthetic world (CPU, minutes), scored by retrieval.

AVE-Net (Arandjelovic & Zisserman 2018, "Objects that Sound") trained with the
AVC task (`avself/tasks/avc.py`, model 'avenet'): two L3 trunks, 128-D
normalised embeddings, their distance -> matched / mismatched. Evaluated by
held-out AVC accuracy and by retrieval in four directions (nDCG@30,
recall@k, beside a random-init network; see docs/retrieval.md):
  python -m avself.main --config=configs/avenet_synthetic.py --workdir=/tmp/avenet_synthetic

Same world, sizes and budget as configs/l3_synthetic.py.
"""

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ()


def get_config(arg=None):
  """Small AVE-Net that 2 CPU cores train in minutes."""
  config_lib.variants(arg, VARIANTS)
  c = config_lib.synthetic_towers_config("avenet")
  c.evals.retrieval = config_lib.retrieval_eval()
  return c
