"""Tiny configs shared by the tests: seconds on CPU, same code paths as paper scale."""

import os

import ml_collections

from avself import config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_CONFIG_FILE = os.path.join(ROOT, "configs", "l3_tiny.py")


def _load_tiny():
  return config_lib.load_file(TINY_CONFIG_FILE).get_config()


def tiny_world() -> ml_collections.ConfigDict:
  """A small synthetic world: 48 clips of 3 s at 64x64 (configs/l3_tiny.py)."""
  return _load_tiny().data.synthetic


def tiny_config(records_dir: str = "") -> ml_collections.ConfigDict:
  """L3-Net at width 1/8 on 32x32 frames and 32x49 log-mel spectrograms."""
  c = _load_tiny()
  c.total_steps = 4
  c.log_every_steps = 2
  c.eval_every_steps = 2
  c.checkpoint.every_steps = 2
  c.checkpoint.async_save = False
  c.data.synthetic = None
  c.data.path = records_dir
  return c
