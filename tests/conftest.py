"""Test setup: 8 fake CPU devices, set before jax is imported anywhere."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# CPU only, also where libtpu is installed (for avself.compile's tests).
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import tensorflow as tf  # noqa: E402

# tf.data must never grab an accelerator or reserve memory that JAX needs.
tf.config.set_visible_devices([], "GPU")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_records(tmp_path_factory):
  """Records of the tiny synthetic world, built once through the real path.

  Generates mp4s (H.264 + AAC) with avself.data.synthetic and prepares them
  with avself.data.prepare, exactly as the demo does.
  """
  import tiny  # pylint: disable=g-import-not-at-top
  from avself.data import synthetic_records  # pylint: disable=g-import-not-at-top

  config = tiny.tiny_config()
  config.data.synthetic = tiny.tiny_world()
  config.data.synthetic.cache_dir = str(tmp_path_factory.mktemp("world"))
  return synthetic_records.ensure_synthetic_records(config.data)
