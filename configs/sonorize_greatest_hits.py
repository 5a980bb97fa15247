r"""Sonorization at paper scale: Greatest-Hits-like records (Owens et al. 2016).

The Greatest Hits videos (a drumstick hitting and scratching things, ~30
fps, with their sound) are videos like any other: prepare them into records
at 30 fps and 48 kHz (labels optional: the material of each clip, for the
probe), then train. The net sees 1 s (30 frames) of 224x224 frames in two
streams of half-width VGG trunks and regresses 4 steps per frame (120 Hz,
the paper's cochleagram rate is 90 Hz) of 64 log mel bands; an LSTM over
time as the paper's:

  python -m avself.data.prepare --videos=/data/greatest_hits/videos \
      --output=/data/greatest_hits/records --fps=30 --sample_rate=48000 \
      --shorter_side=256
  python -m avself.main --config=configs/sonorize_greatest_hits.py \
      --workdir=/ckpt/sonorize_gh --config.data.path=/data/greatest_hits/records

Not run here (no such data or accelerator on the machine that built it).
"""

import ml_collections

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ()


def get_config(arg=None):
  """Half-width VGG streams at 224 px, an LSTM, 64 log mel bands at 120 Hz."""
  config_lib.variants(arg, VARIANTS)
  c = config_lib.base_config()
  c.task = "sonorize"
  c.batch_size = 32
  c.total_steps = 100_000
  c.log_every_steps = 100
  c.eval_every_steps = 10_000
  c.checkpoint.every_steps = 5_000
  c.optimizer.learning_rate = 1e-4
  c.optimizer.schedule = "cosine"
  c.optimizer.warmup_steps = 1_000
  c.optimizer.grad_clip_norm = 5.0

  c.model = ml_collections.ConfigDict()
  c.model.name = "sonorize"
  c.model.width = 0.5
  c.model.hidden = 256
  c.model.temporal = "lstm"
  c.model.temporal_layers = 1
  c.model.temporal_kernel = 5  # unused by the LSTM
  c.model.dtype = "auto"  # bfloat16 on TPUs and GPUs (docs/scaling.md)
  c.model.spectrogram_shape = None

  d = c.data
  d.sample_rate = 48000
  d.image_size = 224
  d.resize_shorter = 256
  d.clip = dict(num_frames=30, clip_seconds=1.0)
  d.augment = dict(flip=True, brightness=0.2, saturation=0.2, audio_gain=0.0)
  d.samples_per_video = 4
  d.shuffle_buffer = 256  # ~30 JPEGs and 1 s of 48 kHz per example

  c.sonorize = ml_collections.ConfigDict(
      dict(
          num_bands=64,
          steps_per_frame=4,
          loss="l2",
          segment_steps=60,  # 0.5 s of sound per example-based segment
          index="",
          index_seconds=3600,  # one hour of training sound in the index
      )
  )
  c.evals = ml_collections.ConfigDict()
  c.evals.sonorization = dict(
      type="sonorization",
      num_clips=1024,
      onset_threshold=0.5,
      onset_tolerance=0.1,
      griffin_lim_iterations=32,
      picture_dir="",
  )
  return c
