"""The sync task (aligned vs shifted audio), its evaluator, and action fine-tuning's warm start.

Tiny: width 1/8, 8 frames of 32x32, 0.8 s of 16 kHz mono, batch 8 (1 per fake
device). XLA:CPU compiles 3D convs slowly, so the tests share one set of
initial variables and compile as few distinct functions as they can.
"""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import tiny
from avself import checkpoint as ckpt_lib
from avself import optimizer
from avself import sharding
from avself import state as state_lib
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
  c.data.sync = dict(
      num_frames=8, clip_seconds=0.8, min_shift=0.8, max_shift=1.0, paired=True
  )
  c.data.samples_per_video = 2
  c.evals = ml_collections.ConfigDict()
  c.evals.sync = dict(type="sync", num_examples=B)
  return c


@functools.cache
def model_and_state():
  """(config, model, TrainState) of a randomly initialised tiny sync net, built once."""
  config = tiny_sync_config()
  model = sync.build_model(config)
  variables = jax.jit(functools.partial(sync.init, model))(
      jax.random.key(0), sync.dummy_batch(config, 2)
  )
  variables = jax.device_get(variables)
  tx = optimizer.make_optimizer(config)
  state = state_lib.TrainState(
      step=jnp.zeros((), jnp.int32),
      params=variables["params"],
      model_state={"batch_stats": variables["batch_stats"]},
      opt_state=tx.init(variables["params"]),
  )
  return config, model, state


def save_checkpoint(workdir: str, config=None, step: int = 1):
  """Saves the shared random-init state with `config` (the tiny one by default)."""
  default_config, _, state = model_and_state()
  manager = ckpt_lib.make_manager(workdir, async_save=False)
  ckpt_lib.save(
      manager,
      step,
      state.replace(step=jnp.asarray(step, jnp.int32)),
      config or default_config,
      force=True,
  )
  manager.wait_until_finished()
  return state


def _random_batch(config, seed=0, paired=True):
  batch = sync.dummy_batch(config, B)
  rng = np.random.default_rng(seed)
  batch["video"] = rng.uniform(-1, 1, batch["video"].shape).astype(np.float32)
  batch["waveform"] = 0.3 * rng.standard_normal(batch["waveform"].shape).astype(
      np.float32
  )
  batch["shifted_waveform"] = np.roll(batch["waveform"], 3000, axis=1)
  if not paired:
    del batch["shifted_waveform"]
    batch["label"] = (np.arange(B) % 2).astype(np.int32)
  return batch


def test_paired_batch_gives_aligned_then_shifted_examples_and_sigmoid_loss():
  config, model, state = model_and_state()
  variables = {"params": state.params, **state.model_state}

  @jax.jit
  def evaluate(paired, unpaired):
    paired_out = sync.logits_and_labels(model, variables, paired, train=False)
    loss = sync.loss_fn(
        model, state.params, state.model_state, paired, None, train=False
    )
    unpaired_out = sync.logits_and_labels(
        model, variables, unpaired, train=False
    )
    return paired_out, loss, unpaired_out

  paired, unpaired = _random_batch(config), _random_batch(config, paired=False)
  (logits, labels, _), (loss, (metrics, new_state)), unpaired_out = evaluate(
      paired, unpaired
  )
  assert logits.shape == (2 * B,) and logits.dtype == jnp.float32
  np.testing.assert_array_equal(labels, [1.0] * B + [0.0] * B)
  logits = np.asarray(logits, np.float64)
  expected = (
      np.mean(np.logaddexp(0, -logits[:B]))
      + np.mean(np.logaddexp(0, logits[B:]))
  ) / 2
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  np.testing.assert_allclose(
      metrics["accuracy"], np.mean((logits > 0) == (labels > 0.5))
  )
  for a, b in zip(
      jax.tree.leaves(new_state), jax.tree.leaves(state.model_state)
  ):
    np.testing.assert_array_equal(
        a, b
    )  # evaluation hands back the state it was given
  # The two halves see the same frames with different sounds.
  assert np.abs(logits[:B] - logits[B:]).max() > 0
  # Unpaired batches: one example per clip, labelled by the pipeline.
  assert unpaired_out[0].shape == (B,)
  np.testing.assert_array_equal(unpaired_out[1], unpaired["label"])


def test_shared_video_branch_equals_running_the_net_on_2b():
  """Training mode: same logits and BatchNorm statistics as the whole net on 2B examples."""
  config, model, state = model_and_state()
  variables = {"params": state.params, **state.model_state}
  batch = _random_batch(config, seed=1)

  @jax.jit
  def both(batch):
    shared = sync.logits_and_labels(model, variables, batch, train=True)
    full = model.apply(
        variables,
        jnp.concatenate([batch["video"]] * 2),
        jnp.concatenate([batch["waveform"], batch["shifted_waveform"]]),
        train=True,
        mutable=["batch_stats"],
    )
    return shared, full

  (logits, _, new_state), (out, full_state) = both(batch)
  np.testing.assert_allclose(logits, out["logit"], rtol=1e-4, atol=1e-4)
  # Duplicated clips leave the video branch's batch statistics unchanged.
  for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(full_state)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_task_consumes_pipeline_shifts_within_the_configured_range(
    tiny_records,
):
  config = tiny_sync_config(tiny_records)
  ds = pipeline.make_dataset(
      config.data,
      mode=sync.data_mode(config),
      split="train",
      batch_size=B,
      train=True,
      seed=0,
  )
  batch = next(ds.as_numpy_iterator())
  shapes = sync.input_shapes(config)
  assert batch["video"].shape == (B, *shapes["video"])
  assert (
      batch["waveform"].shape
      == batch["shifted_waveform"].shape
      == (B, *shapes["waveform"])
  )
  # The task samples no shifts itself: it takes the pipeline's, 0.8-1.0 s either way.
  shift = np.abs(batch["shift_seconds"])
  assert ((shift >= 0.8 - 1e-3) & (shift <= 1.0 + 1e-3)).all()
  assert not np.allclose(batch["waveform"], batch["shifted_waveform"])
  assert set(batch) >= set(sync.dummy_batch(config, 2))


def test_sync_evaluator_scores_both_halves_reproducibly(tiny_records):
  config = tiny_sync_config(tiny_records)
  _, model, state = model_and_state()
  mesh = sharding.make_mesh()
  state = jax.device_put(state, sharding.replicated(mesh))
  evaluator = sync_eval.Evaluator(
      config, config.evals.sync, task=sync, model=model, mesh=mesh
  )
  results = dict(evaluator.run(state))
  assert results["num_examples"] == 2 * B  # B clips, each aligned and shifted
  assert results["positive_fraction"] == 0.5
  assert 0.0 <= results["sync_accuracy"] <= 1.0
  np.testing.assert_allclose(
      results["sync_accuracy"],
      (results["aligned_accuracy"] + results["shifted_accuracy"]) / 2,
      atol=1e-6,
  )
  assert np.isfinite(results["loss"]) and results["loss"] > 0
  # Fixed seed: the same checkpoint scores the same.
  assert dict(evaluator.run(state)) == results


def _action_config(init_from: str, width: float = 0.125):
  config = tiny_sync_config()
  config.task, config.model.num_classes, config.init_from = (
      "action",
      10,
      init_from,
  )
  config.model.width = width
  return config


def test_warm_start_copies_the_video_branch_only(tmp_path):
  workdir = str(tmp_path / "sync")
  sync_state = save_checkpoint(workdir)
  config = _action_config(workdir)
  model = action.build_model(config)
  # A recognisable "fresh" classifier: every parameter and statistic 0.5.
  shapes = jax.eval_shape(
      functools.partial(action.init, model),
      jax.random.key(0),
      action.dummy_batch(config, 2),
  )
  fresh = jax.tree.map(lambda s: np.full(s.shape, 0.5, s.dtype), shapes)
  params, model_state = action.warm_start(
      config, fresh["params"], {"batch_stats": fresh["batch_stats"]}
  )
  for collection, mine, theirs in (
      ("params", params, sync_state.params),
      (
          "batch_stats",
          model_state["batch_stats"],
          sync_state.model_state["batch_stats"],
      ),
  ):
    assert jax.tree.structure(mine["video_branch"]) == jax.tree.structure(
        theirs["video_branch"]
    )
    for a, b in zip(
        jax.tree.leaves(mine["video_branch"]),
        jax.tree.leaves(theirs["video_branch"]),
    ):
      np.testing.assert_array_equal(a, b, err_msg=collection)
    # Everything else keeps the classifier's own initialisation.
    rest = {k: v for k, v in mine.items() if k != "video_branch"}
    assert rest and all(np.all(x == 0.5) for x in jax.tree.leaves(rest))
  # From scratch (init_from = ''): nothing changes.
  same, _ = action.warm_start(_action_config(""), fresh["params"], {})
  assert same is fresh["params"]


def test_warm_start_refuses_a_width_mismatch(tmp_path):
  workdir = str(tmp_path / "sync")
  save_checkpoint(workdir)
  with pytest.raises(ValueError, match="width"):
    action.warm_start(_action_config(workdir, width=0.25), None, None)


def test_warm_start_with_the_fusion_trunk_copies_the_visual_pathway(tmp_path):
  workdir = str(tmp_path / "sync")
  sync_state = save_checkpoint(workdir)
  config = _action_config(workdir)
  config.model.trunk = "fusion"
  shapes = jax.eval_shape(
      functools.partial(action.init, action.build_model(config)),
      jax.random.key(0),
      action.dummy_batch(config, 2),
  )
  fresh = jax.tree.map(lambda s: np.full(s.shape, 0.5, s.dtype), shapes)
  params, _ = action.warm_start(
      config, fresh["params"], {"batch_stats": fresh["batch_stats"]}
  )
  for name in ("video_branch", "fusion"):
    for a, b in zip(
        jax.tree.leaves(params[name]), jax.tree.leaves(sync_state.params[name])
    ):
      np.testing.assert_array_equal(a, b)
  assert all(np.all(x == 0.5) for x in jax.tree.leaves(params["classifier"]))
  # Strides are not in the shapes: a mismatch is refused by name.
  config.model.conv4_strides = (1, 1, 1)
  with pytest.raises(ValueError, match="conv4_strides"):
    action.warm_start(
        config, fresh["params"], {"batch_stats": fresh["batch_stats"]}
    )


@pytest.mark.parametrize("stage_kernel", [(3, 1, 1), (1, 1, 1)])
def test_sync_warm_start_takes_every_variable_and_centre_taps(
    tmp_path, stage_kernel
):
  """A sync net with larger frames, no conv4 stride and narrower stages starts from a run
  (the CAM nets: configs/multisensory_cam_synthetic.py and
  multisensory_voice_synthetic.py): equal shapes are copied, narrower stage
  kernels take the run's centre taps."""
  workdir = str(tmp_path / "sync")
  source = save_checkpoint(workdir)
  config = tiny_sync_config()
  config.init_from = workdir
  config.data.image_size = 48
  config.model.conv4_strides = (1, 1, 1)
  config.model.stage_kernel = stage_kernel
  model = sync.build_model(config)
  shapes = jax.eval_shape(
      functools.partial(sync.init, model),
      jax.random.key(0),
      sync.dummy_batch(config, 2),
  )
  mine = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
  params, model_state = sync.warm_start(
      config, mine["params"], {"batch_stats": mine["batch_stats"]}
  )
  theirs = source.params
  np.testing.assert_array_equal(
      params["video_branch"]["conv1"]["kernel"],
      theirs["video_branch"]["conv1"]["kernel"],
  )
  np.testing.assert_array_equal(
      params["audio_branch"]["conv5"]["kernel"],
      theirs["audio_branch"]["conv5"]["kernel"],
  )
  stage = params["fusion"]["stages"]["conv4_1"]["conv_1"]["kernel"]
  full = theirs["fusion"]["stages"]["conv4_1"]["conv_1"]["kernel"]
  assert stage.shape[:3] == stage_kernel and full.shape[:3] == (3, 3, 3)
  centre = tuple(slice(1 - k // 2, 2 + k // 2) for k in stage_kernel)
  np.testing.assert_array_equal(stage, full[centre])
  for a, b in zip(
      jax.tree.leaves(model_state["batch_stats"]),
      jax.tree.leaves(source.model_state["batch_stats"]),
  ):
    np.testing.assert_array_equal(a, b)
  # Built as it is trained: the copied variables run.
  out = model.apply(
      {"params": params, **model_state},
      *[sync.dummy_batch(config, 2)[k] for k in ("video", "waveform")],
      train=False,
  )
  assert out["features"].shape[1:4] == (2, 6, 6)
  # A net of another width cannot start from it.
  config.model.width = 0.25
  wide = jax.eval_shape(
      functools.partial(sync.init, sync.build_model(config)),
      jax.random.key(0),
      sync.dummy_batch(config, 2),
  )
  with pytest.raises(ValueError, match="cannot take"):
    sync.warm_start(
        config,
        jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), wide["params"]),
        {
            "batch_stats": jax.tree.map(
                lambda s: np.zeros(s.shape, s.dtype), wide["batch_stats"]
            )
        },
    )


def _flash_world(rng, count, n_frames, n_samples, size=16):
  """Clips where sync is easy: the frames brighten at the sound's clicks.

  Each clip flashes at 1-3 of its frames; the aligned audio clicks then, the
  shifted audio at the next clip's frames. Returns a paired batch.
  """
  per_frame = n_samples // n_frames
  video = np.full((count, n_frames, size, size, 3), -0.5, np.float32)
  clicks = np.zeros((count, n_samples, 1), np.float32)
  for i in range(count):
    for f in rng.choice(n_frames, rng.integers(1, 4), replace=False):
      video[i, f] = 0.8
      clicks[i, f * per_frame : f * per_frame + 400, 0] = 0.8 * np.exp(
          -np.arange(400) / 80.0
      )
  noise = 0.01 * rng.standard_normal(clicks.shape).astype(np.float32)
  return {
      "video": video,
      "waveform": clicks + noise,
      "shifted_waveform": np.roll(clicks, 1, axis=0) + noise,
  }


def test_tiny_run_beats_chance_on_held_out_clips():
  """Adam steps of the train loop's step learn sync where it is easy: held-out accuracy >> 0.5.

  16 x 16 frames (the fully convolutional net takes any size) keep it quick.
  """
  config, model, state = model_and_state()
  config = ml_collections.ConfigDict(config.to_dict())
  config.optimizer.learning_rate = 3e-3
  mesh = sharding.make_mesh()
  tx = optimizer.make_optimizer(config)
  state = jax.device_put(
      state.replace(opt_state=tx.init(state.params)), sharding.replicated(mesh)
  )
  step = jax.jit(
      functools.partial(
          train.train_step, task=sync, model=model, tx=tx, skip_nonfinite=False
      ),
      in_shardings=(
          sharding.replicated(mesh),
          sharding.batch_sharding(mesh),
          sharding.replicated(mesh),
      ),
      out_shardings=(sharding.replicated(mesh), sharding.replicated(mesh)),
  )
  n_frames, n_samples = (
      sync.input_shapes(config)["video"][0],
      sync.input_shapes(config)["waveform"][0],
  )
  rng = np.random.default_rng(0)
  batch_size = 2 * B
  held_out = sharding.to_global(
      _flash_world(rng, batch_size, n_frames, n_samples), mesh
  )
  losses = []
  for _ in range(59):
    batch = sharding.to_global(
        _flash_world(rng, batch_size, n_frames, n_samples), mesh
    )
    state, metrics = step(state, batch, jax.random.key(0))
    losses.append(float(metrics["loss"]))
  # Metrics come from the forward pass before the update: scoring held-out clips
  # (BatchNorm on their batch statistics) and discarding the updated state.
  _, held_out_metrics = step(state, held_out, jax.random.key(0))
  assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.1
  assert float(held_out_metrics["accuracy"]) >= 0.75  # chance is 0.5
