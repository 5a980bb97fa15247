r"""SoundNet at paper scale: 20 s of raw audio at 22,050 Hz, ImageNet + Places teachers.

Aytar, Vondrick & Torralba (2016) trained on ~2M unlabelled Flickr videos.
Prepare them at the paper's rate, run both teachers over the training frames
and join their tables (docs/soundnet_ambient.md), then train:

  python -m avself.data.prepare --videos=/data/flickr/videos --output=/data/flickr/records \
      --sample_rate=22050 --fps=1
  python -m avself.data.teacher classify --records=/data/flickr/records \
      --classifier=keras:/models/imagenet.keras --output=/data/flickr/records/train.teacher-imagenet.npz
  python -m avself.data.teacher classify --records=/data/flickr/records \
      --classifier=keras:/models/places365.keras --output=/data/flickr/records/train.teacher-places.npz
  python -m avself.data.teacher concatenate \
      --tables=/data/flickr/records/train.teacher-imagenet.npz \
      --tables=/data/flickr/records/train.teacher-places.npz \
      --output=/data/flickr/records/train.teacher-imagenet-places.npz
  python -m avself.main --config=configs/soundnet_flickr.py --workdir=/ckpt/soundnet \
      --config.data.path=/data/flickr/records

The 8-layer net with the paper's pools (8, 8, 4) gives conv8 4 steps for
441,000 samples: one pair of teacher distributions every 5 s. Optimiser as
the paper's public code: Adam, lr 1e-3, beta1 0.9, batch 64. Probe with
configs/eval/probe_soundnet_synthetic.py:esc50 or :dcase2013.
"""

import ml_collections

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ()


def get_config(arg=None):
  """The paper's SoundNet-8 on 20 s windows; teachers 1000 objects + 401 scenes."""
  config_lib.variants(arg, VARIANTS)
  c = config_lib.base_config()
  c.task = "soundnet"
  c.batch_size = 64
  c.total_steps = 100_000
  c.eval_every_steps = 10_000
  c.optimizer.learning_rate = 1e-3
  c.optimizer.weight_decay = 0.0

  c.model = ml_collections.ConfigDict()
  c.model.name = "soundnet"
  c.model.width = 1.0
  c.model.dtype = "float32"
  c.model.spectrogram_shape = None  # raw audio
  c.model.pool_sizes = (8, 8, 4)
  c.model.conv8_kernel = 8
  c.model.transfer_layers = ("conv5", "conv6", "conv7")
  c.model.teacher_classes = (1000, 401)  # ImageNet objects, Places scenes

  d = c.data
  d.sample_rate = 22050
  d.audio_seconds = 20.0
  d.spectrogram.kind = "waveform"
  d.augment.audio_gain = 0.0
  d.frame_targets.steps = 4
  d.frame_targets.path = "train.teacher-imagenet-places.npz"  # under data.path
  d.samples_per_video = 1  # one 20 s window is most of a video
  d.shuffle_buffer = 256  # 441,000 samples each
  c.evals = ml_collections.ConfigDict()
  return c
