"""The shared train loop: sharding, equivalence across device counts, checkpoints, learning."""

import functools
import json
import os

import jax
import numpy as np
import pytest

import tiny
from avself import checkpoint as ckpt_lib
from avself import config_lib
from avself import optimizer
from avself import sharding
from avself import state as state_lib
from avself import train
from avself.tasks import avc


def _random_batch(config, seed=0):
  batch = avc.dummy_batch(config, config.batch_size)
  rng = np.random.default_rng(seed)
  batch["image"] = rng.uniform(-1, 1, batch["image"].shape).astype(np.float32)
  batch["audio"] = rng.standard_normal(batch["audio"].shape).astype(np.float32)
  batch["label"] = rng.integers(0, 2, batch["label"].shape).astype(np.int32)
  return batch


def _run_steps(config, devices, batches):
  """Initialises on `devices` and runs one step per batch; returns (state, losses)."""
  mesh = sharding.make_mesh(devices)
  model = avc.build_model(config)
  tx = optimizer.make_optimizer(config)
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
  losses = []
  for batch in batches:
    global_batch = sharding.to_global(batch, mesh)
    state, metrics = step(state, global_batch, jax.random.key(1))
    losses.append(float(metrics["loss"]))
  return state, losses, global_batch


def test_one_step_on_eight_devices_shards_batch_and_updates_params():
  assert jax.device_count() == 8
  config = tiny.tiny_config()
  mesh = sharding.make_mesh()
  model = avc.build_model(config)
  tx = optimizer.make_optimizer(config)
  before = state_lib.create_train_state(
      avc, model, tx, config, jax.random.key(0), mesh
  )
  before = sharding.to_host(before.params)
  state, losses, batch = _run_steps(
      config, jax.devices(), [_random_batch(config)]
  )
  # Each device holds 1/8 of the batch; the state is replicated.
  shard_shapes = {s.data.shape[0] for s in batch["image"].addressable_shards}
  assert shard_shapes == {config.batch_size // 8}
  assert state.params["fusion"]["fc2"]["kernel"].sharding.is_fully_replicated
  assert int(state.step) == 1
  assert np.isfinite(losses[0]) and 0.1 < losses[0] < 10.0
  moved = jax.tree.map(
      lambda a, b: float(np.abs(np.asarray(a) - b).max()), state.params, before
  )
  assert all(v > 0 for v in jax.tree.leaves(moved))


def test_freeze_holds_the_named_groups_for_freeze_steps_then_trains_them():
  """LP-FT: for the first freeze_steps steps only the other groups move."""
  config = tiny.tiny_config()
  config.optimizer.freeze = ("audio_trunk", "vision_trunk")
  config.optimizer.freeze_steps = 2
  config.optimizer.weight_decay = 1e-2  # held means held: no decay either
  before = sharding.to_host(
      state_lib.create_train_state(
          avc,
          avc.build_model(config),
          optimizer.make_optimizer(config),
          config,
          jax.random.key(0),
          sharding.make_mesh(),
      ).params
  )
  assert {"audio_trunk", "vision_trunk", "fusion"} <= set(before)

  def moved(num_steps):
    state, _, _ = _run_steps(
        config,
        jax.devices(),
        [_random_batch(config, seed=i) for i in range(num_steps)],
    )
    after = sharding.to_host(state.params)
    return {
        k: max(
            float(np.abs(a - b).max())
            for a, b in zip(
                jax.tree.leaves(after[k]), jax.tree.leaves(before[k])
            )
        )
        for k in before
    }

  two, three = moved(2), moved(3)
  assert two["audio_trunk"] == two["vision_trunk"] == 0.0 and two["fusion"] > 0
  assert three["audio_trunk"] > 0 and three["vision_trunk"] > 0


def test_freeze_refuses_a_group_the_model_lacks_or_no_steps():
  config = tiny.tiny_config()
  config.optimizer.freeze = ("video_branch",)
  config.optimizer.freeze_steps = 5
  with pytest.raises(ValueError, match="video_branch.*not among.*audio_trunk"):
    state_lib.create_train_state(
        avc,
        avc.build_model(config),
        optimizer.make_optimizer(config),
        config,
        jax.random.key(0),
        sharding.make_mesh(),
    )
  config.optimizer.freeze_steps = 0
  with pytest.raises(ValueError, match="freeze_steps > 0"):
    optimizer.make_optimizer(config)


def test_one_and_eight_devices_agree_after_two_steps():
  config = tiny.tiny_config()
  # SGD, not Adam: Adam's first steps are ~lr * sign(g), so parameters whose
  # gradient is ~0 flip with float summation order and the comparison would
  # measure rounding noise rather than sharding.
  config.optimizer.name = "sgd"
  config.optimizer.learning_rate = 0.01
  batches = [_random_batch(config, 0), _random_batch(config, 1)]
  state1, losses1, _ = _run_steps(config, jax.devices()[:1], batches)
  state8, losses8, _ = _run_steps(config, jax.devices(), batches)
  # Float32 sums over a batch split 8 ways run in another order than over one
  # device (and XLA's CPU convolutions pick kernels by shape), so agreement is
  # to rounding, amplified slightly by one update: ~1e-4 relative was seen.
  np.testing.assert_allclose(losses1[0], losses8[0], rtol=1e-5)
  np.testing.assert_allclose(losses1, losses8, rtol=1e-3)
  # BatchNorm statistics are global under jit, so they agree too.
  for tree in ("params", "model_state"):
    a = jax.tree.leaves(sharding.to_host(getattr(state1, tree)))
    b = jax.tree.leaves(sharding.to_host(getattr(state8, tree)))
    for x, y in zip(a, b):
      np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-4)


def test_checkpoint_round_trip_restores_state_and_config(tmp_path):
  config = tiny.tiny_config()
  state, _, _ = _run_steps(config, jax.devices(), [_random_batch(config)])
  manager = ckpt_lib.make_manager(str(tmp_path), every_steps=1, async_save=True)
  assert ckpt_lib.save(
      manager, 1, state, config, {"seed": 3, "position": 1}, force=True
  )
  manager.wait_until_finished()
  restored, step = ckpt_lib.restore_state(
      manager, ckpt_lib.abstract_like(state)
  )
  assert step == 1
  for x, y in zip(
      jax.tree.leaves(sharding.to_host(state)),
      jax.tree.leaves(sharding.to_host(restored)),
  ):
    np.testing.assert_array_equal(x, y)
  assert (
      restored.params["fusion"]["fc1"]["kernel"].sharding
      == state.params["fusion"]["fc1"]["kernel"].sharding
  )
  stored, stored_step = ckpt_lib.load_config(str(tmp_path))
  assert stored_step == 1 and stored.model.width == config.model.width
  assert stored.data.spectrogram.num_mel_bins == 32
  assert ckpt_lib.restore_data_state(manager, 1) == {"seed": 3, "position": 1}


def test_config_errors_name_the_key_before_compiling():
  config = tiny.tiny_config("/nonexistent")
  config.batch_size = 12  # Not a multiple of 8 devices.
  with pytest.raises(config_lib.ConfigError, match="config.batch_size=12"):
    config_lib.validate(config)
  config = tiny.tiny_config("/nonexistent")
  config.data.spectrogram.frame_step = 160  # 32 x 98, not the model's 32 x 49.
  with pytest.raises(config_lib.ConfigError, match="spectrogram"):
    config_lib.validate(config)
  config = tiny.tiny_config("/nonexistent")
  with pytest.raises(AttributeError, match="no_such_key"):
    config.lock()
    config.no_such_key = 1


def test_run_resumes_and_continues_step_count(tmp_path, tiny_records):
  config = tiny.tiny_config(tiny_records)
  config.total_steps = 4
  workdir = str(tmp_path)
  first = train.train_and_evaluate(config, workdir)
  assert first["step"] == 4
  assert ckpt_lib.make_manager(workdir, read_only=True).latest_step() == 4
  config.total_steps = 6
  second = train.train_and_evaluate(config, workdir)
  assert second["step"] == 6
  with open(os.path.join(workdir, "results.json")) as f:
    results = json.load(f)
  assert results["step"] == 6 and 0.0 <= results["avc/avc_accuracy"] <= 1.0
  # The resumed run continued from 4: only steps 5..6 were logged by it.
  manager = ckpt_lib.make_manager(workdir, read_only=True)
  assert ckpt_lib.restore_data_state(manager, 6)["position"] == 6


def test_tiny_run_lowers_loss_and_beats_chance(tmp_path, tiny_records):
  config = tiny.tiny_config(tiny_records)
  config.total_steps = 300
  config.log_every_steps = 50
  config.eval_every_steps = 300
  config.checkpoint.every_steps = 300
  config.optimizer.schedule = "cosine"
  config.optimizer.warmup_steps = 30
  config.evals.avc.num_examples = 256
  results = train.train_and_evaluate(config, str(tmp_path))
  losses = _logged(tmp_path, "train/loss")
  assert losses[-1] < losses[0] - 0.1, losses
  # 256 held-out pairs, balanced: chance is 0.5 (std 0.031), so 0.62 is ~4
  # standard deviations above it. Seeds 0-3 gave 0.70, 0.77, 0.66, 0.76 on
  # the 36 training videos of this world (a constant learning rate overfits
  # them: 0.54-0.60).
  assert results["avc/avc_accuracy"] > 0.62, results
  assert 0.4 < results["avc/positive_fraction"] < 0.6


def _logged(workdir, tag):
  """Values of a scalar from the TensorBoard event files, in step order."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  values = []
  for name in sorted(os.listdir(workdir)):
    if not name.startswith("events.out"):
      continue
    for event in tf.compat.v1.train.summary_iterator(
        os.path.join(workdir, name)
    ):
      for v in event.summary.value:
        if v.tag == tag:
          values.append((event.step, float(tf.make_ndarray(v.tensor))))
  return [v for _, v in sorted(values)]
