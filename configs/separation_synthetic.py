r"""On/off-screen separation on the built-in synthetic world (CPU).

The sync run's world (configs/multisensory_synthetic.py: one sounding object
per video, no off-screen source) mixed in pairs by the pipeline's `mixture`
mode: a clip's sound is on screen, the other video's is off screen. The u-net
takes the warm-started sync net's features (`init_from`; train it first) and
predicts both sources' log-magnitudes; the `separation` evaluator scores SDR
on held-out mixtures beside the mixture baseline:

  python -m avself.main --config=configs/multisensory_synthetic.py \
      --workdir=/tmp/multisensory_synthetic
  python -m avself.main --config=configs/separation_synthetic.py \
      --workdir=/tmp/separation_synthetic
  python -m avself.separate --workdir=/tmp/separation_synthetic \
      ~/.cache/avself/synthetic-*/world/videos/clip_00003.mp4 \
      --offscreen=~/.cache/avself/synthetic-*/world/videos/clip_00007.mp4 \
      --output=/tmp/separated

Variants (`--config=configs/separation_synthetic.py:VARIANT[,VARIANT]`):
  pit       the audio-only baseline: the same u-net without video, trained
            with the permutation-invariant L1 (it cannot know which sound is
            on screen).
  scratch   the AV net with random-init video features (no `init_from`).
  frozen    the sync net's parameters and BatchNorm statistics held; only
            the u-net trains.
  runlocal  a few steps, to check that everything runs.
"""

import os

import ml_collections

from avself import config_lib
from avself.tasks import separation

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ("pit", "scratch", "frozen", "runlocal")


def get_config(arg=None):
  """The sync run's net and clips (1.6 s, 16 frames of 32 px, 8 kHz mono)."""
  variants = config_lib.variants(arg, VARIANTS)
  sync = config_lib.load_file(
      os.path.join(os.path.dirname(__file__), "multisensory_synthetic.py")
  ).get_config()
  c = config_lib.base_config()
  c.task = "separation"
  c.init_from = "/tmp/multisensory_synthetic"
  c.batch_size = 16
  c.total_steps = 800
  c.log_every_steps = 50
  c.eval_every_steps = 400
  c.checkpoint.every_steps = 400
  c.model = ml_collections.ConfigDict(sync.model.to_dict())
  c.model.name = "separation"
  # u-net: 5 levels of stride 2 at width 1/8 (8 .. 64 filters; ~2 GFLOP of
  # a step's ~3 on 128 x 128 spectrograms); the sync features join after
  # levels 2, 3, 4 (time rates 1/8 .. 1/32 of the spectrogram's, the
  # closest to the features' 1/25 .. 1/50).
  c.model.encoder_features = (64, 128, 256, 512, 512)
  c.model.merge_levels = (2, 3, 4)
  c.model.unet_width = 0.125
  # 32 ms Hann windows every 16 ms at 8 kHz: 128 x 102 for 1.6 s (254, not
  # 256: 128 bins fill the u-net's 2^5 multiple without padding).
  c.model.frame_length = 254
  c.model.frame_step = 127
  c.model.log_offset = 1e-3
  c.model.use_video = True
  # The authors' loss alone (fixed-order L1) on the sync features as they
  # come; `pit_weight=1.0, video_norm=True` is the alternative measured in
  # docs/separation.md ("Recipe").
  c.model.pit_weight = 0.0
  c.model.video_norm = False
  c.model.freeze_video = False
  c.model.phase_input = True
  c.data = ml_collections.ConfigDict(sync.data.to_dict())
  c.data.mixture = dict(num_frames=16, clip_seconds=1.6)
  c.optimizer.learning_rate = 2e-3
  c.optimizer.grad_clip_norm = 5.0
  c.evals = ml_collections.ConfigDict()
  c.evals.separation = dict(type="separation", num_examples=256, num_images=4)
  if "pit" in variants:
    c.model.use_video = False
    c.init_from = ""
  if "scratch" in variants:
    c.init_from = ""
  if "runlocal" in variants:
    c.total_steps = 4
    c.eval_every_steps = c.checkpoint.every_steps = 4
    c.evals.separation.num_examples = 32
  if "frozen" in variants:
    separation.freeze_config(c)
  return c
