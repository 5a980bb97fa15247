r"""Ambient sound supervision on the built-in synthetic world (CPU, minutes).

The world and records are the L3-Net demo's (configs/l3_synthetic.py, shared
cache). The first run clusters the texture statistics of the training
clips' audio (3.75 s windows every 0.5 s, 30 k-means clusters, seed 0) into
WORKDIR/ambient, then trains the L3 vision trunk (width 1/4, as the L3 demo)
to predict a frame's sound cluster, never its label:

  python -m avself.main --config=configs/ambient_synthetic.py --workdir=/tmp/ambient_synthetic
  python -m avself.evaluate --workdir=/tmp/ambient_synthetic \
      --config=configs/eval/probe_ambient_synthetic.py

docs/soundnet_ambient.md has the numbers.
"""

import os

import ml_collections

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ()


def get_config(arg=None):
  """Width 1/4 vision trunk, 48x48 frames, 30 sound clusters."""
  config_lib.variants(arg, VARIANTS)
  # The demo's world, records and image sizes.
  l3 = config_lib.load_file(
      os.path.join(os.path.dirname(__file__), "l3_synthetic.py")
  ).get_config()
  c = config_lib.base_config()
  c.task = "ambient"
  c.batch_size = 64
  c.total_steps = 400
  c.log_every_steps = 50
  c.eval_every_steps = 400
  c.checkpoint.every_steps = 200
  c.optimizer.learning_rate = 1.2e-3
  c.optimizer.schedule = "cosine"
  c.optimizer.warmup_steps = 50

  c.model = ml_collections.ConfigDict()
  c.model.name = "ambient"
  c.model.width = 0.25
  c.model.dtype = "float32"
  c.model.spectrogram_shape = None  # the net sees no audio
  c.model.num_clusters = 30  # Owens et al.'s k

  c.data = l3.data
  d = c.data
  # The audio window only places the frame (its centre); the net sees no
  # audio, so the front end is the cheapest one.
  d.spectrogram = ml_collections.ConfigDict(
      dict(l3.data.spectrogram.to_dict(), kind="waveform")
  )
  d.frame_targets.steps = 1
  d.frame_targets.path = ""  # '': cluster into WORKDIR/ambient
  c.ambient = ml_collections.ConfigDict(
      dict(audio_seconds=3.75, hop_seconds=0.5, num_bands=32, seed=0)
  )
  c.evals = ml_collections.ConfigDict()
  return c
