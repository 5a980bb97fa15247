r"""Action recognition on the synthetic world, fine-tuned from a sync checkpoint (CPU).

The label is the class of a clip's main object (10 classes, chance 0.1). First
train the sync net (configs/multisensory_synthetic.py, same world and width),
then fine-tune from it and train the same network from scratch for the same
number of steps:

  python -m avself.main --config=configs/multisensory_synthetic.py \
      --workdir=/tmp/multisensory_synthetic
  python -m avself.main --config=configs/action_synthetic.py \
      --config.init_from=/tmp/multisensory_synthetic --workdir=/tmp/action_finetune
  python -m avself.main --config=configs/action_synthetic.py:scratch \
      --workdir=/tmp/action_scratch

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
  """ActionClassifier at the sync config's width, on its world and clips."""
  variants = set((arg or "").split(","))
  sync = _sync_config_module().get_config()
  c = config_lib.base_config()
  c.task = "action"
  c.init_from = "" if "scratch" in variants else "/tmp/multisensory_synthetic"
  c.batch_size = 16
  c.total_steps = 300
  c.log_every_steps = 25
  c.eval_every_steps = 100
  c.checkpoint.every_steps = 100
  c.model = ml_collections.ConfigDict(sync.model.to_dict())
  c.model.num_classes = sync.data.synthetic.num_classes
  c.data = ml_collections.ConfigDict(sync.data.to_dict())
  c.data.sync.paired = False  # one waveform per clip is enough (and it is unused)
  c.optimizer.learning_rate = 1e-3
  c.evals = ml_collections.ConfigDict()
  c.evals.action = dict(type="classification", num_examples=512)
  if "runlocal" in variants:
    c.total_steps = 4
    c.eval_every_steps = c.checkpoint.every_steps = 4
    c.evals.action.num_examples = 32
  return c
