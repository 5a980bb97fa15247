r"""Linear probes of the ambient-sound net's vision features, and its clusters' picture.

On the run's records (default: the synthetic world; 10 classes, chance 0.1),
each probe beside a random-init net of the same config; L3's vision
transfer features (conv4_2, max-pooled to 4x4):

  python -m avself.evaluate --workdir=/tmp/ambient_synthetic \
      --config=configs/eval/probe_ambient_synthetic.py

  vision_probe      5 labelled clips per class, mean over 10 draws (as the
                    L3 audio probe's few-label regime)
  vision_probe_all  every labelled training clip
  clusters          the test frames the net assigns most confidently to each
                    of its 6 most used clusters (one row per cluster), to
                    TensorBoard and /tmp/ambient_synthetic/pictures
"""

import ml_collections
from ml_collections import config_dict

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ()


def get_config(arg=None):
  """Few-label and all-label vision probes and the cluster picture."""
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
  c.evals.clusters = dict(
      type="ambient_clusters",
      num_rows=6,
      per_row=8,
      thumbnail=48,
      picture_dir="/tmp/ambient_synthetic/pictures",
  )
  return c
