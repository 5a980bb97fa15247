r"""Linear probes of SoundNet's audio features (conv5-conv7, max over time).

On the run's records (default: the synthetic world; 10 classes, chance 0.1),
each beside a random-init SoundNet of the same config:

  python -m avself.evaluate --workdir=/tmp/soundnet_synthetic \
      --config=configs/eval/probe_soundnet_synthetic.py

  audio_probe      5 labelled clips per class, mean over 10 draws (as L3's)
  audio_probe_all  every labelled training clip

Variants `esc50` and `dcase2013` run configs/eval/esc50.py's or
dcase2013.py's probe instead (datasets built as docs/datasets.md; clips
shorter than the net's window are zero-padded to one window).
"""

import ml_collections
from ml_collections import config_dict

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ("esc50", "dcase2013")


def get_config(arg=None):
  """Few-label and all-label audio probes (or ESC-50 / DCASE 2013)."""
  chosen = config_lib.variants(arg, VARIANTS)
  c = ml_collections.ConfigDict()
  c.data = ml_collections.ConfigDict(dict(path=config_dict.placeholder(str)))
  if chosen:
    import os  # pylint: disable=g-import-not-at-top

    (name,) = chosen
    c.evals = (
        config_lib.load_file(
            os.path.join(os.path.dirname(__file__), f"{name}.py")
        )
        .get_config()
        .evals
    )
    return c
  c.evals = ml_collections.ConfigDict()
  probe = dict(
      type="linear_probe",
      modality="audio",
      source="records",
      C=0.01,
      Cs=(),
      random_init=True,
      random_seed=0,
  )
  c.evals.audio_probe = dict(probe, train_clips_per_class=5, episodes=10)
  c.evals.audio_probe_all = dict(probe)
  return c
