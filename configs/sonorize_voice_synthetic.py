r"""Sonorization on the speaking synthetic world: does the loudness follow? (CPU).

configs/sonorize_synthetic.py on the same world with voices (`voice=0.5`, as
configs/multisensory_voice_synthetic.py): the sounding object's loudness
follows a syllable-like envelope and its look (growth, whitening) follows
it too, as lips follow speech (Ephrat et al. 2017 predict speech features
from silent faces). The measure is `sonorization/*/envelope_correlation`:
the predicted loudness per step against the true one, beside the mean
training sound and a random training clip:

  python -m avself.main --config=configs/sonorize_voice_synthetic.py \
      --workdir=/tmp/sonorize_voice_synthetic

docs/sonorization.md has the numbers.

Variants (`--config=configs/sonorize_voice_synthetic.py:VARIANT`):
  runlocal  a few steps, to check that everything runs.
"""

import os

from avself import config_lib

_BASE = config_lib.load_file(
    os.path.join(os.path.dirname(__file__), "sonorize_synthetic.py")
)

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = _BASE.VARIANTS


def get_config(arg=None):
  """The bouncing world's net and schedule on the speaking world."""
  c = _BASE.get_config(arg)
  c.data.synthetic.voice = 0.5
  return c
