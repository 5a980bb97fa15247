r"""Action recognition on UCF-101 fine-tuned from the paper-scale sync net (Owens & Efros 2018, Sec. 5).

The video branch and the fusion stages (fed silence: video only) come from a
`configs/multisensory_audioset.py` run (same width and strides), as the paper
fine-tunes the whole net; the 101-way classifier starts fresh (see
`multisensory.ActionClassifier`; `--config.model.trunk=fresh` keeps only the
video branch). Clips as in pre-training: 4.2 s at 29.97 fps
(125 frames), 224 crops of shorter side 256. The authors' UCF-101 example
(`videocls.py`) uses 8 clips per GPU, momentum SGD and weight decay 1e-5 and
leaves the learning rate and iterations as placeholders; lr 1e-2 with a cosine
decay over 20K steps of 32 clips (~67 epochs of split 1) is our choice.

  python -m avself.data.prepare --videos='/data/ucf101/UCF-101/**/*.avi' \
      --labels=/data/ucf101/split1.csv --output=/data/ucf101/records \
      --fps=29.97 --shorter_side=256 --sample_rate=21000 --channels=2
  python -m avself.main --config=configs/action_ucf101.py \
      --config.data.path=/data/ucf101/records --config.init_from=/ckpt/multisensory \
      --workdir=/ckpt/action_ucf101

(split1.csv: file,label,split with split in {train, test}.) Note: prepare
skips files without an audio track (about half of UCF-101), so those clips
are not used; see docs/multisensory.md.

Variants: `scratch` (init_from = '', the from-scratch baseline), `runlocal`.
"""

import ml_collections

from avself import config_lib

# `--config=FILE.py:NAME[,NAME]`; config_lib.variants refuses any other name.
VARIANTS = ("scratch", "runlocal")


def get_config(arg=None):
  """ActionClassifier (width 1) on UCF-101 clips."""
  variants = config_lib.variants(arg, VARIANTS)
  c = config_lib.base_config()
  c.task = "action"
  c.init_from = "" if "scratch" in variants else "/ckpt/multisensory"
  c.batch_size = 32
  c.total_steps = 20_000
  c.eval_every_steps = 2_000
  c.checkpoint.every_steps = 2_000
  c.model.name = "multisensory"
  # bfloat16 compute on TPUs and GPUs (parameters and optimiser state stay
  # float32), float32 on CPUs.
  c.model.dtype = "auto"
  c.model.num_classes = 101
  # True: each residual block recomputes its activations in the backward
  # pass instead of keeping them (less HBM, one more forward of the blocks).
  c.model.remat = False
  c.model.trunk = (
      "fusion"  # the whole visual pathway of the sync net, fed silence
  )
  c.model.spectrogram_shape = ()
  c.optimizer.name = "sgd"  # momentum 0.9
  c.optimizer.learning_rate = 1e-2
  c.optimizer.schedule = "cosine"

  d = c.data
  d.sample_rate = 21000
  d.channels = 2
  d.sync = dict(
      num_frames=125,
      clip_seconds=4.2,
      min_shift=2.0,
      max_shift=5.8,
      paired=False,
  )
  d.samples_per_video = 2
  d.shuffle_buffer = 256
  c.evals = ml_collections.ConfigDict()
  c.evals.action = dict(
      type="classification", num_examples=3783
  )  # split-1 test videos
  if "runlocal" in variants:
    c.batch_size = 8
    c.total_steps = 4
    c.model.width = 0.125
    c.eval_every_steps = c.checkpoint.every_steps = 4
    c.evals.action.num_examples = 8
  return c
