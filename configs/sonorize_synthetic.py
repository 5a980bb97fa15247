r"""Sonorization on the built-in synthetic world: the sound of silent clips (CPU).

The world and records are the Multisensory demo's (configs/
multisensory_synthetic.py, shared cache): one visible object per 8 s clip,
no off-screen source, a quiet hum under each bounce's burst, every class
its own timbre and pitch. A bounce is this world's "hit": the net sees
2 s of frames (10 fps, 32 px) and regresses 4 steps of 32 log mel bands per
frame (25 ms steps at 8 kHz); the first run indexes the training sounds
into WORKDIR/sonorize for example-based synthesis:

  python -m avself.main --config=configs/sonorize_synthetic.py \
      --workdir=/tmp/sonorize_synthetic
  python -m avself.sonorize --workdir=/tmp/sonorize_synthetic \
      ~/.cache/avself/synthetic-*/world/videos/clip_00003.mp4 \
      --output=/tmp/sonorize_synthetic/clip_00003.mp4
  python -m avself.evaluate --workdir=/tmp/sonorize_synthetic \
      --config=configs/eval/probe_sonorize_synthetic.py

docs/sonorization.md has the numbers.

Variants (`--config=configs/sonorize_synthetic.py:VARIANT`):
  runlocal  a few steps, to check that everything runs.
"""

import os

import ml_collections

from avself import config_lib

_MULTISENSORY = config_lib.load_file(
    os.path.join(os.path.dirname(__file__), "multisensory_synthetic.py")
)

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ("runlocal",)


def get_config(arg=None):
  """Two width-1/16 VGG streams, two temporal convs of 5 frames, L2 on log mel."""
  variants = config_lib.variants(arg, VARIANTS)
  c = config_lib.base_config()
  c.task = "sonorize"
  c.batch_size = 8
  c.total_steps = 2000
  c.log_every_steps = 50
  c.eval_every_steps = 2000
  c.checkpoint.every_steps = 500
  c.optimizer.learning_rate = 1e-3
  c.optimizer.schedule = "cosine"
  c.optimizer.warmup_steps = 50
  c.optimizer.grad_clip_norm = 5.0

  c.model = ml_collections.ConfigDict()
  c.model.name = "sonorize"
  c.model.width = 0.0625
  c.model.hidden = 128
  c.model.temporal = "conv"
  c.model.temporal_layers = 2
  c.model.temporal_kernel = 5
  c.model.dtype = "float32"
  c.model.spectrogram_shape = None  # the net hears nothing

  _MULTISENSORY.data_config(c)
  d = c.data
  d.clip = dict(num_frames=20, clip_seconds=2.0)  # the records' 10 fps
  # A gain the frames cannot show would only add noise to the targets.
  d.augment = dict(flip=True, brightness=0.1, saturation=0.1, audio_gain=0.0)
  d.samples_per_video = 4

  c.sonorize = ml_collections.ConfigDict(
      dict(
          num_bands=32,
          steps_per_frame=4,
          loss="l2",
          # Example-based synthesis: each 0.5 s of predicted bands takes the
          # nearest 0.5 s of training sound.
          segment_steps=20,
          index="",  # '': index the training sounds into WORKDIR/sonorize
          index_seconds=0,  # index at most this much sound; 0: all
      )
  )
  c.evals = ml_collections.ConfigDict()
  c.evals.sonorization = dict(
      type="sonorization",
      num_clips=192,
      onset_threshold=0.5,
      onset_tolerance=0.1,
      griffin_lim_iterations=32,
      picture_dir="",
  )
  if "runlocal" in variants:
    c.total_steps = 4
    c.eval_every_steps = c.checkpoint.every_steps = 4
    c.evals.sonorization.num_clips = 16
  return c
