r"""SoundNet on the built-in synthetic world: vision teaches sound (CPU, minutes).

The world and records are the L3-Net demo's (configs/l3_synthetic.py, shared
cache). A demo teacher, a small VGG classifier, is trained on the labelled
frames of the train split and run over them once (cached beside the
records, `avself.data.teacher`); SoundNet then learns from the raw 16 kHz
waveform to match its posteriors (KL), without labels:

  python -m avself.main --config=configs/soundnet_synthetic.py --workdir=/tmp/soundnet_synthetic
  python -m avself.evaluate --workdir=/tmp/soundnet_synthetic \
      --config=configs/eval/probe_soundnet_synthetic.py

At 2 s per window the paper's pools (8, 8, 4) leave too few steps for
conv8's kernel of 8: pools (4, 4, 2) give conv8 one step, one teacher
distribution (the frame at the window's centre). docs/soundnet_ambient.md.
"""

import os

import ml_collections

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ()


def get_config(arg=None):
  """Width 1/2 SoundNet on 2 s windows at 16 kHz, the demo teacher's 10 classes."""
  config_lib.variants(arg, VARIANTS)
  # The demo's world, records and image sizes.
  l3 = config_lib.load_file(
      os.path.join(os.path.dirname(__file__), "l3_synthetic.py")
  ).get_config()
  c = config_lib.base_config()
  c.task = "soundnet"
  c.batch_size = 64
  c.total_steps = 500
  c.log_every_steps = 50
  c.eval_every_steps = 500
  c.checkpoint.every_steps = 250
  c.optimizer.learning_rate = 1e-3
  c.optimizer.schedule = "cosine"
  c.optimizer.warmup_steps = 50

  c.model = ml_collections.ConfigDict()
  c.model.name = "soundnet"
  c.model.width = 0.5
  c.model.dtype = "float32"
  c.model.spectrogram_shape = None  # raw audio
  c.model.pool_sizes = (4, 4, 2)
  c.model.conv8_kernel = 8
  c.model.transfer_layers = ("conv5", "conv6", "conv7")
  c.model.teacher_classes = (10,)

  c.data = l3.data
  d = c.data
  d.audio_seconds = 2.0
  d.spectrogram = ml_collections.ConfigDict(
      dict(l3.data.spectrogram.to_dict(), kind="waveform")
  )
  d.frame_targets.steps = 1
  d.frame_targets.path = ""  # '': the demo teacher below
  # The demo teacher (trained on labelled train frames; SoundNet sees only
  # its posteriors).
  c.teacher = ml_collections.ConfigDict(
      dict(steps=400, batch_size=64, width=0.25, learning_rate=2e-3, seed=0)
  )
  c.evals = ml_collections.ConfigDict()
  return c
