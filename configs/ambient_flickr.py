r"""Ambient sound supervision at paper scale (Owens et al. 2016).

Owens et al. trained on ~360k unlabelled Flickr videos: 30 k-means clusters
of sound-texture statistics of 3.75 s of audio around a frame. The first run
clusters the training records' audio into WORKDIR/ambient (seeded; rerun it
alone with `python -m avself.data.texture`), then trains the L3 vision trunk
at full width on 224x224 frames:

  python -m avself.main --config=configs/ambient_flickr.py --workdir=/ckpt/ambient \
      --config.data.path=/data/flickr/records

Probe: configs/eval/probe_ambient_synthetic.py on the run's records, or any
vision probe (docs/soundnet_ambient.md).
"""

import ml_collections

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ()


def get_config(arg=None):
  """Full-width VGG trunk, 224x224 frames, 30 clusters."""
  config_lib.variants(arg, VARIANTS)
  c = config_lib.base_config()
  c.task = "ambient"
  c.batch_size = 128
  c.total_steps = 200_000
  c.eval_every_steps = 10_000

  c.model = ml_collections.ConfigDict()
  c.model.name = "ambient"
  c.model.width = 1.0
  c.model.dtype = "float32"
  c.model.spectrogram_shape = None
  c.model.num_clusters = 30

  d = c.data
  d.spectrogram.kind = "waveform"  # the net sees no audio
  d.frame_targets.steps = 1
  d.frame_targets.path = ""
  c.ambient = ml_collections.ConfigDict(
      dict(audio_seconds=3.75, hop_seconds=0.5, num_bands=32, seed=0)
  )
  c.evals = ml_collections.ConfigDict()
  return c
