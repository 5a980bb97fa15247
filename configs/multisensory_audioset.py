r"""Multisensory sync net at paper scale on AudioSet (Owens & Efros 2018, Sec. 3).

4.2 s clips at 29.97 fps (125 frames), 224x224 crops of frames with shorter
side 256, 21 kHz stereo raw audio; the shifted audio is 2.0-5.8 s away.
Optimiser as the authors' `shift_params.py`: momentum SGD (0.9), lr 1e-2,
gradient clipping at 5, weight decay 1e-5, 650K iterations (`model_iter`);
their batch was 15 clips per GPU at low frame rate and 5 per GPU at full rate,
here 16 global (a multiple of 8 devices; scale the lr if you change it).

  python -m avself.data.prepare --videos='/data/audioset/videos/**/*.mp4' \
      --output=/data/audioset/records --fps=29.97 --shorter_side=256 \
      --sample_rate=21000 --channels=2 --num_shards=1024
  python -m avself.main --config=configs/multisensory_audioset.py \
      --config.data.path=/data/audioset/records --workdir=/ckpt/multisensory

Variants (`--config=configs/multisensory_audioset.py:VARIANT`):
  cam       conv5 with spatial stride 1 (the authors' `cam_v1`): a 14x14 rather
            than 7x7 class activation map at 224 px, for `avself.localize`.
  runlocal  a few tiny steps on whatever --config.data.path holds.
"""

import ml_collections

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ("cam", "runlocal")


def get_config(arg=None):
  """The paper's sync net and clips."""
  variants = config_lib.variants(arg, VARIANTS)
  c = config_lib.base_config()
  c.task = "sync"
  c.batch_size = 16
  c.total_steps = 650_000
  c.eval_every_steps = 10_000
  c.checkpoint.every_steps = 5_000
  c.model.name = "multisensory"
  # bfloat16 compute on TPUs and GPUs (parameters and optimiser state stay
  # float32), float32 on CPUs.
  c.model.dtype = "auto"
  c.model.conv5_stride = 1 if "cam" in variants else 2
  # True: each residual block recomputes its activations in the backward
  # pass instead of keeping them (less HBM, one more forward of the blocks).
  c.model.remat = False
  c.model.spectrogram_shape = ()  # raw waveform
  c.optimizer.name = "sgd"  # momentum 0.9
  c.optimizer.learning_rate = 1e-2
  c.optimizer.grad_clip_norm = 5.0

  d = c.data
  d.sample_rate = 21000
  d.channels = 2
  d.sync = dict(
      num_frames=125,
      clip_seconds=4.2,
      min_shift=2.0,
      max_shift=5.8,
      paired=True,
  )
  d.augment = dict(flip=True, brightness=0.2, saturation=0.2, audio_gain=0.1)
  # A 4.2 s example holds 125 JPEGs and 2 x 88200 x 2 samples (~3 MB).
  d.samples_per_video = 2
  d.shuffle_buffer = 256
  c.evals = ml_collections.ConfigDict()
  c.evals.sync = dict(type="sync", num_examples=2048)
  if "runlocal" in variants:
    c.batch_size = 8
    c.total_steps = 4
    c.model.width = 0.125
    c.eval_every_steps = c.checkpoint.every_steps = 4
    c.evals.sync.num_examples = 8
  return c
