"""The sync task (aligned vs shifted audio), its evaluator, and action fine-tuning's warm start.

Tiny: width 1/8, 8 frames of 32x32, 0.8 s of 16 kHz mono, batch 8 (1 per fake device).
"""
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

import tiny
from avself import checkpoint as ckpt_lib
from avself import sharding
from avself import train
from avself.data import pipeline
from avself.evaluators import sync as sync_eval
from avself.tasks import action
from avself.tasks import sync

B = 8


def tiny_sync_config(records_dir: str = "") -> ml_collections.ConfigDict:
  """The tiny records (3 s clips at 10 fps, 16 kHz) as sync clips of 8 frames."""
  c = tiny.tiny_config(records_dir)
  c.task = "sync"
  c.batch_size = B
  c.model.name = "multisensory"
  c.model.width = 0.125
  c.model.conv5_stride = 1  # a 2 x 2 CAM at 32 px
  c.model.spectrogram_shape = ()
  c.data.channels = 1
  c.data.resize_shorter = 36
  c.data.sync = dict(num_frames=8, clip_seconds=0.8, min_shift=0.8, max_shift=1.0, paired=True)
  c.data.samples_per_video = 2
  c.evals = ml_collections.ConfigDict()
  c.evals.sync = dict(type="sync", num_examples=B)
  return c


def save_random_checkpoint(config, workdir: str, step: int = 1):
  """A checkpoint of a randomly initialised net (no training): what restore-based tools need."""
  task, _, state = train.random_init(config, seed=3)
  manager = ckpt_lib.make_manager(workdir, async_save=False)
  ckpt_lib.save(manager, step, state.replace(step=jnp.asarray(step, jnp.int32)), config,
                force=True)
  manager.wait_until_finished()
  return task, state


def _random_batch(config, seed=0, paired=True):
  batch = sync.dummy_batch(config, B)
  rng = np.random.default_rng(seed)
  batch["video"] = rng.uniform(-1, 1, batch["video"].shape).astype(np.float32)
  batch["waveform"] = 0.3 * rng.standard_normal(batch["waveform"].shape).astype(np.float32)
  if paired:
    batch["shifted_waveform"] = np.roll(batch["waveform"], 3000, axis=1)
  else:
    del batch["shifted_waveform"]
    batch["label"] = (np.arange(B) % 2).astype(np.int32)
  return batch


@functools.cache
def _logits_fn(model, train_mode):
  return jax.jit(lambda v, b: sync.logits_and_labels(model, v, b, train=train_mode))


@functools.cache
def _model_and_variables():
  config = tiny_sync_config()
  model = sync.build_model(config)
  variables = jax.jit(functools.partial(sync.init, model))(
      jax.random.key(0), sync.dummy_batch(config, 2))
  return config, model, variables


def test_paired_batch_gives_aligned_then_shifted_examples_and_sigmoid_loss():
  config, model, variables = _model_and_variables()
  batch = _random_batch(config)
  logits, labels, _ = _logits_fn(model, False)(variables, batch)
  assert logits.shape == (2 * B,) and logits.dtype == jnp.float32
  np.testing.assert_array_equal(labels, [1.0] * B + [0.0] * B)
  model_state = {"batch_stats": variables["batch_stats"]}
  loss, (metrics, state) = jax.jit(functools.partial(sync.loss_fn, model, train=False))(
      variables["params"], model_state, batch, None)
  expected = np.mean(np.logaddexp(0, -np.asarray(logits[:B]))) / 2 + np.mean(
      np.logaddexp(0, np.asarray(logits[B:]))) / 2
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  np.testing.assert_allclose(metrics["accuracy"],
                             np.mean((np.asarray(logits) > 0) == (np.asarray(labels) > 0.5)))
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(model_state)):
    np.testing.assert_array_equal(a, b)  # eval returns the state given
  # The two halves see the same frames with different sounds.
  assert np.abs(np.asarray(logits[:B] - logits[B:])).max() > 0


@pytest.mark.parametrize("train_mode", [False, True])
def test_shared_video_branch_equals_running_the_net_on_2b(train_mode):
  config, model, variables = _model_and_variables()
  batch = _random_batch(config, seed=1)
  logits, _, state = _logits_fn(model, train_mode)(variables, batch)
  video2 = np.concatenate([batch["video"]] * 2)
  audio2 = np.concatenate([batch["waveform"], batch["shifted_waveform"]])
  if train_mode:
    out, full_state = jax.jit(functools.partial(model.apply, train=True, mutable=["batch_stats"]))(
        variables, video2, audio2)
    # Duplicated clips leave the video branch's batch statistics unchanged.
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(full_state)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  else:
    out = jax.jit(functools.partial(model.apply, train=False))(variables, video2, audio2)
  np.testing.assert_allclose(logits, out["logit"], rtol=1e-4, atol=1e-4)


def test_unpaired_batch_uses_the_pipeline_labels():
  config, model, variables = _model_and_variables()
  batch = _random_batch(config, paired=False)
  logits, labels, _ = _logits_fn(model, False)(variables, batch)
  assert logits.shape == (B,)
  np.testing.assert_array_equal(labels, batch["label"])


def test_task_consumes_pipeline_shifts_within_the_configured_range(tiny_records):
  config = tiny_sync_config(tiny_records)
  ds = pipeline.make_dataset(config.data, mode=sync.data_mode(config), split="train",
                             batch_size=B, train=True, seed=0)
  batch = next(ds.as_numpy_iterator())
  shapes = sync.input_shapes(config)
  assert batch["video"].shape == (B, *shapes["video"])
  assert batch["waveform"].shape == batch["shifted_waveform"].shape == (B, *shapes["waveform"])
  # The task samples no shifts itself: it takes the pipeline's, 0.8-1.0 s either way.
  shift = np.abs(batch["shift_seconds"])
  assert ((shift >= 0.8 - 1e-3) & (shift <= 1.0 + 1e-3)).all()
  assert not np.allclose(batch["waveform"], batch["shifted_waveform"])
  assert set(batch) >= set(sync.dummy_batch(config, 2))


def test_sync_evaluator_scores_both_halves(tiny_records):
  config = tiny_sync_config(tiny_records)
  mesh = sharding.make_mesh()
  task, model, state = train.random_init(config, mesh)
  evaluator = sync_eval.Evaluator(config, config.evals.sync, task=task, model=model, mesh=mesh)
  results = dict(evaluator.run(state))
  assert results["num_examples"] == 2 * B  # B clips, each aligned and shifted
  assert results["positive_fraction"] == 0.5
  assert 0.0 <= results["sync_accuracy"] <= 1.0
  np.testing.assert_allclose(
      results["sync_accuracy"],
      (results["aligned_accuracy"] + results["shifted_accuracy"]) / 2, atol=1e-6)
  assert np.isfinite(results["loss"]) and results["loss"] > 0
  # Fixed seed: the same checkpoint scores the same.
  assert dict(evaluator.run(state))["sync_accuracy"] == results["sync_accuracy"]


def test_warm_start_copies_the_video_branch_only(tmp_path):
  sync_config = tiny_sync_config()
  workdir = str(tmp_path / "sync")
  _, sync_state = save_random_checkpoint(sync_config, workdir)
  action_config = tiny_sync_config()
  action_config.task = "action"
  action_config.model.num_classes = 10
  action_config.init_from = workdir
  _, _, fresh = train.random_init(action_config, seed=7)
  params, model_state = action.warm_start(action_config, fresh.params, fresh.model_state)
  mine, theirs = jax.device_get((params, sync_state.params))
  for a, b in zip(jax.tree.leaves(mine["video_branch"]), jax.tree.leaves(theirs["video_branch"])):
    np.testing.assert_array_equal(a, b)
  for a, b in zip(jax.tree.leaves(model_state["batch_stats"]["video_branch"]),
                  jax.tree.leaves(jax.device_get(sync_state.model_state)["batch_stats"]
                                  ["video_branch"])):
    np.testing.assert_array_equal(a, b)
  # Trunk and classifier keep their own (fresh) initialisation.
  for name in ("trunk", "classifier"):
    for a, b in zip(jax.tree.leaves(mine[name]), jax.tree.leaves(jax.device_get(fresh.params)[name])):
      np.testing.assert_array_equal(a, b)
  assert not np.allclose(mine["video_branch"]["conv1"]["kernel"],
                         jax.device_get(fresh.params)["video_branch"]["conv1"]["kernel"])
  # From scratch: nothing changes.
  action_config.init_from = ""
  same, _ = action.warm_start(action_config, fresh.params, fresh.model_state)
  assert same is fresh.params


def test_warm_start_refuses_a_width_mismatch(tmp_path):
  workdir = str(tmp_path / "sync")
  save_random_checkpoint(tiny_sync_config(), workdir)
  config = tiny_sync_config()
  config.task, config.model.num_classes, config.init_from = "action", 10, workdir
  config.model.width = 0.25
  _, _, fresh = train.random_init(config, seed=0)
  with pytest.raises(ValueError, match="width"):
    action.warm_start(config, fresh.params, fresh.model_state)


def _flash_world(rng, count):
  """Clips where sync is easy: the frames brighten at the sound's clicks.

  Each clip has 1-3 click times on a 0.1 s grid; the aligned audio clicks then,
  the shifted audio at another clip's times. Returns a paired batch.
  """
  config = tiny_sync_config()
  n_frames = config.data.sync.num_frames
  n = sync.input_shapes(config)["waveform"][0]
  per_frame = n // n_frames
  video = np.full((count, n_frames, 32, 32, 3), -0.5, np.float32)
  clicks = np.zeros((count, n, 1), np.float32)
  for i in range(count):
    for f in rng.choice(n_frames, rng.integers(1, 4), replace=False):
      video[i, f] = 0.8
      clicks[i, f * per_frame:f * per_frame + 400, 0] = 0.8 * np.exp(-np.arange(400) / 80.0)
  noise = 0.01 * rng.standard_normal(clicks.shape).astype(np.float32)
  return {"video": video, "waveform": clicks + noise,
          "shifted_waveform": np.roll(clicks, 1, axis=0) + noise}


def test_tiny_run_beats_chance_on_held_out_clips():
  """A few Adam steps learn sync where it is easy; held-out accuracy > chance (0.5)."""
  config = tiny_sync_config()
  config.optimizer.learning_rate = 3e-3
  mesh = sharding.make_mesh()
  task, model, state = train.random_init(config, mesh)
  tx = train.make_optimizer(config)
  state = state.replace(opt_state=tx.init(state.params))
  step = jax.jit(functools.partial(train.train_step, task=task, model=model, tx=tx,
                                   skip_nonfinite=False),
                 in_shardings=(sharding.replicated(mesh), sharding.batch_sharding(mesh),
                               sharding.replicated(mesh)),
                 out_shardings=(sharding.replicated(mesh), sharding.replicated(mesh)))
  evaluate = jax.jit(lambda p, s, b: task.loss_fn(model, p, s, b, None, train=False)[1][0],
                     in_shardings=(sharding.replicated(mesh), sharding.replicated(mesh),
                                   sharding.batch_sharding(mesh)))
  rng = np.random.default_rng(0)
  held_out = [sharding.to_global(_flash_world(rng, B), mesh) for _ in range(4)]

  def accuracy(state):
    return np.mean([float(evaluate(state.params, state.model_state, b)["accuracy"])
                    for b in held_out])

  before = accuracy(state)
  losses = []
  for _ in range(40):
    state, metrics = step(state, sharding.to_global(_flash_world(rng, B), mesh),
                          jax.random.key(0))
    losses.append(float(metrics["loss"]))
  after = accuracy(state)
  assert np.mean(losses[-10:]) < np.mean(losses[:10])
  assert after >= 0.75, (before, after)
