r"""L3-Net on the built-in synthetic world: the default demo (CPU, minutes).

Builds the synthetic world (cached), prepares records through the same
`avself.data.prepare` path users take, trains a small L3-Net and reports
held-out AVC accuracy (chance is 0.5):

  python -m avself.main --config=configs/l3_synthetic.py --workdir=/tmp/l3_synthetic

The world is set so that a linear probe tells learned features from random
ones (configs/eval/probe_synthetic.py, docs/evaluation.md): in the default
world each class is one pitch, which a random network's features already
read off. Here a source's pitch moves by up to +-0.75 octave, quiet
off-screen noise wanders in level, the main object is the only one heard
(a second visible object is silent) and there is no off-screen source, so
a clip's sound names its class; 1500 videos, because fewer overfit.
"""

import ml_collections

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ()


def get_config(arg=None):
  """Small widths and resolutions so that 2 CPU cores train it in minutes."""
  config_lib.variants(arg, VARIANTS)
  c = config_lib.base_config()
  c.batch_size = 64
  # docs/evaluation.md has the search for steps and learning rate.
  c.total_steps = 1700
  c.log_every_steps = 50
  c.eval_every_steps = 200
  c.checkpoint.every_steps = 200
  c.model.width = 0.25
  c.model.spectrogram_shape = (40, 49)
  c.optimizer.learning_rate = 1.2e-3
  c.optimizer.schedule = "cosine"
  c.optimizer.warmup_steps = 50
  # 'all': every (audio, image) pair of a batch is scored (B - 1 negatives
  # per example) instead of the batch's own pairs ('pair', as in the paper;
  # avself.tasks.avc). On the built-in world, the content world and two
  # harder versions of it, it learned correspondence faster and gave better
  # audio features at no cost per step (docs/other_data.md).
  c.avc = ml_collections.ConfigDict(dict(negatives="all"))

  d = c.data
  d.synthetic = config_lib.synthetic_world_config()
  d.synthetic.num_videos = 1500
  d.synthetic.max_objects = (
      2  # 1-2 visible objects per clip (the world allows 3).
  )
  d.synthetic.silent_prob = 1.0  # only the main object sounds
  d.synthetic.offscreen_prob = 0.0
  d.synthetic.pitch_spread = (
      1.5  # octaves: a class is its timbre and pitch region
  )
  d.synthetic.background_noise = 0.2
  d.synthetic.shorter_side = 56
  d.sample_rate = 16000
  d.image_size = 48
  d.resize_shorter = 56
  d.spectrogram.kind = "mel"
  d.spectrogram.num_mel_bins = 40
  d.spectrogram.frame_length = 400
  d.spectrogram.frame_step = 320
  d.spectrogram.fft_length = 512
  d.shuffle_buffer = 512
  d.cache = True
  c.evals.avc.num_examples = 1024
  return c
