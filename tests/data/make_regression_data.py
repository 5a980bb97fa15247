r"""Regenerates the embedding regression data in tests/data/regression/.

    python tests/data/make_regression_data.py

Run this ONLY when a change is meant to move embeddings (a new front end, a
model fix), and say so in the change: tests/test_embed.py then compares
against the new numbers. Anything else that moves them is a bug the test
exists to catch (OpenL3 #80: embeddings silently changed between versions).

Writes, from nothing but code (no records, no downloads):
  regression/checkpoints/2/   L3-Net at width 1/16 (tiny config), 2 SGD steps
                              on fixed random batches, so BatchNorm statistics
                              are not the initial ones
  regression/clip.mp4         2 s of synthetic world clip 0 (40x40, 10 fps, 16 kHz)
  regression/tone.wav         1.5 s of 16 kHz int16 chirp + noise
  regression/expected_*.npz   avself.embed outputs with EMBED_ARGS
"""

import os
import sys

# The tests' setting, so shapes per device (and XLA's kernels) are the same.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "regression")
EMBED_ARGS = dict(hop=0.5, fps=2.0, batch_size=16)  # the test passes the same


def regression_config():
  """tests/tiny.py's config at width 1/16 (a checkpoint of ~100 kB)."""
  sys.path.insert(0, os.path.dirname(HERE))
  import tiny  # pylint: disable=g-import-not-at-top

  config = tiny.tiny_config("")
  config.model.width = 0.0625
  config.optimizer.name = "sgd"
  config.optimizer.learning_rate = 0.01
  return config


def make_checkpoint(workdir: str) -> None:
  """Two training steps on fixed random batches, saved as step 2."""
  import functools  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  from avself import checkpoint as ckpt_lib  # pylint: disable=g-import-not-at-top
  from avself import optimizer  # pylint: disable=g-import-not-at-top
  from avself import sharding  # pylint: disable=g-import-not-at-top
  from avself import state as state_lib  # pylint: disable=g-import-not-at-top
  from avself import train  # pylint: disable=g-import-not-at-top
  from avself.tasks import avc  # pylint: disable=g-import-not-at-top

  config = regression_config()
  mesh = sharding.make_mesh()
  model, tx = avc.build_model(config), optimizer.make_optimizer(config)
  state = state_lib.create_train_state(
      avc, model, tx, config, jax.random.key(0), mesh
  )
  step = jax.jit(
      functools.partial(
          train.train_step, task=avc, model=model, tx=tx, skip_nonfinite=False
      ),
      in_shardings=(
          sharding.replicated(mesh),
          sharding.batch_sharding(mesh),
          sharding.replicated(mesh),
      ),
      out_shardings=(sharding.replicated(mesh), sharding.replicated(mesh)),
  )
  rng = np.random.default_rng(0)
  for _ in range(2):
    batch = avc.dummy_batch(config, config.batch_size)
    batch["image"] = rng.uniform(-1, 1, batch["image"].shape).astype(np.float32)
    batch["audio"] = rng.standard_normal(batch["audio"].shape).astype(
        np.float32
    )
    batch["label"] = rng.integers(0, 2, batch["label"].shape).astype(np.int32)
    state, _ = step(state, sharding.to_global(batch, mesh), jax.random.key(1))
  manager = ckpt_lib.make_manager(
      workdir, keep=1, every_steps=1, async_save=False
  )
  ckpt_lib.save(manager, 2, state, config, force=True)
  manager.wait_until_finished()


def make_inputs(root: str) -> list[str]:
  """A synthetic mp4 (video + AAC audio) and a wav; returns their paths."""
  from avself.data import media_encode  # pylint: disable=g-import-not-at-top
  from avself.data.synthetic import clip as synthetic_clip  # pylint: disable=g-import-not-at-top
  from avself.data.synthetic import options as synthetic_options  # pylint: disable=g-import-not-at-top
  from avself.datasets import files  # pylint: disable=g-import-not-at-top

  options = synthetic_options.as_options(
      size=40, fps=10, duration=2.0, sample_rate=16000
  )
  frames, audio, _, _ = synthetic_clip.render_clip(0, 0, options)
  mp4 = os.path.join(root, "clip.mp4")
  media_encode.write_mp4(mp4, frames, audio, 10, 16000)
  t = np.arange(int(1.5 * 16000)) / 16000
  chirp = 0.4 * np.sin(2 * np.pi * (300 + 400 * t) * t)
  noise = 0.02 * np.random.default_rng(0).standard_normal(len(t))
  wav = files.write_int16(
      os.path.join(root, "tone.wav"), 16000, (chirp + noise).astype(np.float32)
  )
  return [mp4, wav]


def main():
  import shutil  # pylint: disable=g-import-not-at-top
  from avself import embed  # pylint: disable=g-import-not-at-top

  shutil.rmtree(ROOT, ignore_errors=True)
  os.makedirs(ROOT)
  make_checkpoint(ROOT)
  loaded = embed.load(ROOT)
  for path in make_inputs(ROOT):
    result = embed.embed_file(loaded, path, **EMBED_ARGS)
    stem = os.path.splitext(os.path.basename(path))[0]
    np.savez(os.path.join(ROOT, f"expected_{stem}.npz"), **result)
    print(path, {k: v.shape for k, v in result.items()})


if __name__ == "__main__":
  main()
