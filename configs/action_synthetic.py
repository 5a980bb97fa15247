r"""Action recognition on the synthetic world, fine-tuned from a sync checkpoint (CPU).

The label is the class of a clip's main object (10 classes, chance 0.1). First
train the sync net and the CAM net from it (configs/multisensory_synthetic.py
and its `:cam` variant: same world, width, frames and strides as here), then
fine-tune the CAM net's whole visual pathway (video branch and fusion stages,
fed silence) and train the same network from scratch for the same number of
steps:

  python -m avself.main --config=configs/multisensory_synthetic.py \
      --workdir=/tmp/multisensory_synthetic
  python -m avself.main --config=configs/multisensory_synthetic.py:cam \
      --workdir=/tmp/multisensory_synthetic_cam
  python -m avself.main --config=configs/action_synthetic.py \
      --config.init_from=/tmp/multisensory_synthetic_cam --workdir=/tmp/action_finetune
  python -m avself.main --config=configs/action_synthetic.py:scratch \
      --workdir=/tmp/action_scratch

`--config.model.trunk=fresh` keeps only the video branch from the sync net
(new conv3..conv5 stages), which measured worse (docs/multisensory.md).

Variants (`--config=configs/action_synthetic.py:VARIANT`):
  scratch   init_from = '': random initialisation (the baseline).
  runlocal  a few steps, to check that everything runs.
"""
import importlib.util
import os

import ml_collections

from avself import config_lib


def _sync_config_module():
  """configs/multisensory_synthetic.py (configs is a folder of files, not a package)."""
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "multisensory_synthetic.py")
  spec = importlib.util.spec_from_file_location("multisensory_synthetic", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config(arg=None):
  """ActionClassifier with the CAM net's width, strides and stages, on its world."""
  variants = set((arg or "").split(","))
  sync = _sync_config_module().get_config("cam")
  c = config_lib.base_config()
  c.task = "action"
  c.init_from = "" if "scratch" in variants else "/tmp/multisensory_synthetic_cam"
  c.batch_size = 16
  c.total_steps = 300
  c.log_every_steps = 25
  c.eval_every_steps = 100
  c.checkpoint.every_steps = 100
  c.model = ml_collections.ConfigDict(sync.model.to_dict())
  c.model.num_classes = sync.data.synthetic.num_classes
  c.model.trunk = "fusion"  # the sync net's whole visual pathway
  c.data = ml_collections.ConfigDict(sync.data.to_dict())
  # 56 px clips (the world's 64 px, centre crop), half the CAM net's 112: a
  # quarter of the compute; the convs take any frame size.
  c.data.image_size = 56
  c.data.resize_shorter = 64
  c.data.synthetic.shorter_side = 64
  c.data.sync.paired = False  # one waveform per clip is enough (and it is unused)
  c.optimizer.learning_rate = 1e-3
  c.evals = ml_collections.ConfigDict()
  c.evals.action = dict(type="classification", num_examples=512)
  if "runlocal" in variants:
    c.total_steps = 4
    c.eval_every_steps = c.checkpoint.every_steps = 4
    c.evals.action.num_examples = 32
  return c
