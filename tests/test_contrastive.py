"""Contrastive (InfoNCE / sigmoid), Surís cross-modal and AVOL losses: references, sharding, learning."""

import functools
import math

import jax
import ml_collections
import numpy as np

import tiny
from avself import optimizer
from avself import sharding
from avself import state as state_lib
from avself import train
from avself.tasks import avol
from avself.tasks import contrastive
from avself.tasks import crossmodal


def _unit_rows(rng, n, d):
  x = rng.standard_normal((n, d))
  return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _log_softmax(x, axis):
  x = x - x.max(axis=axis, keepdims=True)
  return x - np.log(np.exp(x).sum(axis=axis, keepdims=True))


def _infonce_numpy(v, a, t):
  logits = v.astype(np.float64) @ a.astype(np.float64).T / t
  rows = -np.mean(np.diag(_log_softmax(logits, 1)))
  cols = -np.mean(np.diag(_log_softmax(logits, 0)))
  return 0.5 * (rows + cols)


def _config(task, model_name):
  config = tiny.tiny_config()
  config.task = task
  config.model.name = model_name
  return config


def _random_batch(config, task_module, seed=0):
  batch = task_module.dummy_batch(config, config.batch_size)
  rng = np.random.default_rng(seed)
  batch["image"] = rng.uniform(-1, 1, batch["image"].shape).astype(np.float32)
  batch["audio"] = rng.standard_normal(batch["audio"].shape).astype(np.float32)
  batch["label"] = rng.integers(0, 2, batch["label"].shape).astype(np.int32)
  batch["class_label"] = rng.integers(0, 10, batch["label"].shape).astype(
      np.int32
  )
  return batch


def _variables(task_module, model, config, seed: int = 0) -> dict:
  """LeCun-normal variables of `model` made in numpy from `jax.eval_shape` of its init.

  Compiling the Flax init of two VGG trunks takes ~40 s on the busy 2-core test
  machine, and these tests need a valid network, not Flax's exact initialiser.
  Scalars take the module's own initial values.
  """
  shapes = jax.eval_shape(
      lambda: task_module.init(
          model, jax.random.key(0), task_module.dummy_batch(config, 2)
      )
  )
  rng = np.random.default_rng(seed)
  scalars = {
      "log_temperature": math.log(getattr(model, "temperature_init", 1.0)),
      "bias": getattr(model, "bias_init", 0.0),
      "calibration_scale": getattr(model, "calibration_scale_init", 1.0),
      "calibration_bias": getattr(model, "calibration_bias_init", 0.0),
  }

  def fill(path, x):
    name = path[-1].key
    if x.shape == ():
      return np.float32(scalars[name])
    if name == "kernel":
      return rng.normal(
          0, 1 / math.sqrt(np.prod(x.shape[:-1])), x.shape
      ).astype(np.float32)
    return (np.ones if name in ("scale", "var") else np.zeros)(
        x.shape, np.float32
    )

  return jax.tree_util.tree_map_with_path(fill, shapes)


def _loss_and_outputs(task_module, model, variables, batch):
  """(loss, metrics, model outputs) in eval mode, from one jitted call."""
  state = {k: v for k, v in variables.items() if k != "params"}

  def fn(variables, batch):
    loss, (metrics, _) = task_module.loss_fn(
        model, variables["params"], state, batch, None, train=False
    )
    return (
        loss,
        metrics,
        model.apply(variables, batch["image"], batch["audio"], train=False),
    )

  return jax.tree.map(np.asarray, jax.jit(fn)(variables, batch))


# ### InfoNCE and sigmoid #######################################################


def test_infonce_matches_numpy_and_is_symmetric():
  rng = np.random.default_rng(0)
  v, a = _unit_rows(rng, 8, 16), _unit_rows(rng, 8, 16)
  got = float(contrastive.infonce_loss(v, a, 0.07))
  np.testing.assert_allclose(got, _infonce_numpy(v, a, 0.07), rtol=1e-5)
  # Swapping the modalities transposes the matrix: the symmetric loss is unchanged.
  np.testing.assert_allclose(
      float(contrastive.infonce_loss(a, v, 0.07)), got, rtol=1e-6
  )
  # Aligned pairs (a = v) cost less than random ones, and far less than log(B) at low t.
  aligned = float(contrastive.infonce_loss(v, v, 0.07))
  assert aligned < got and aligned < 0.5 * math.log(8)


def test_sigmoid_loss_matches_numpy():
  rng = np.random.default_rng(1)
  v, a = _unit_rows(rng, 6, 16), _unit_rows(rng, 6, 16)
  t, b = 0.1, -3.0
  logits = v.astype(np.float64) @ a.astype(np.float64).T / t + b
  z = 2 * np.eye(6) - 1
  expected = (
      np.sum(np.log1p(np.exp(-z * logits))) / 6
  )  # -log sigmoid(z * logit)
  np.testing.assert_allclose(
      float(contrastive.sigmoid_loss(v, a, t, b)), expected, rtol=1e-5
  )


def test_temperature_is_learnable_and_clipped():
  config = _config("contrastive", "avenet")
  model = contrastive.build_model(config)
  assert model.temperature_init == 0.07 and model.loss == "infonce"
  variables = _variables(contrastive, model, config)
  batch = _random_batch(config, contrastive)
  state = {k: v for k, v in variables.items() if k != "params"}

  def loss(
      log_temperature,
  ):  # the full task loss as a function of the parameter
    params = dict(variables["params"], log_temperature=log_temperature)
    return contrastive.loss_fn(model, params, state, batch, None, train=True)[0]

  assert abs(float(jax.jit(jax.grad(loss))(np.float32(math.log(0.07))))) > 1e-4
  # Below the clip the temperature sits at its floor and stops receiving gradient.
  assert float(
      contrastive.temperature(math.log(1e-3), 0.01, 1.0)
  ) == np.float32(0.01)
  assert (
      float(
          jax.grad(lambda x: contrastive.temperature(x, 0.01, 1.0))(
              math.log(1e-3)
          )
      )
      == 0.0
  )
  # The sigmoid loss moves both its temperature and its bias.
  rng = np.random.default_rng(2)
  v, a = _unit_rows(rng, 8, 16), _unit_rows(rng, 8, 16)
  g_t, g_b = jax.grad(
      lambda t, b: contrastive.sigmoid_loss(v, a, t, b), (0, 1)
  )(0.1, -10.0)
  assert abs(float(g_t)) > 1e-4 and abs(float(g_b)) > 1e-4
  config.contrastive = ml_collections.ConfigDict(
      dict(loss="sigmoid", temperature_init=0.1)
  )
  sigmoid = contrastive.build_model(config)
  assert (sigmoid.loss, sigmoid.temperature_init, sigmoid.bias_init) == (
      "sigmoid",
      0.1,
      -10.0,
  )


def _loss_on(mesh, model, variables):
  """The jitted contrastive loss with the batch sharded over `mesh`."""
  state = {k: v for k, v in variables.items() if k != "params"}
  fn = jax.jit(
      lambda p, b: contrastive.loss_fn(model, p, state, b, None, train=True)[0],
      in_shardings=(sharding.replicated(mesh), sharding.batch_sharding(mesh)),
  )
  return lambda batch: float(
      fn(variables["params"], sharding.to_global(batch, mesh))
  )


def test_contrastive_loss_spans_global_batch_on_one_and_eight_devices():
  config = _config("contrastive", "avenet")
  model = contrastive.build_model(config)
  variables = _variables(contrastive, model, config)
  batch = _random_batch(config, contrastive)
  on_one = _loss_on(sharding.make_mesh(jax.devices()[:1]), model, variables)
  one = on_one(batch)
  eight = _loss_on(sharding.make_mesh(), model, variables)(batch)
  np.testing.assert_allclose(one, eight, rtol=1e-5)
  # Not a vacuous check: per-device losses (2 examples, 1 negative each) are far smaller.
  per_device = np.mean(
      [
          on_one({k: v[i : i + 2] for k, v in batch.items()})
          for i in range(0, 16, 2)
      ]
  )
  assert one > per_device + 1.0, (one, per_device)


# ### Surís et al. cross-modal ####################################################


def test_crossmodal_loss_matches_numpy_and_skips_unlabelled():
  config = _config("crossmodal", "avenet")
  config.crossmodal = ml_collections.ConfigDict(
      dict(num_classes=10, margin=0.2, classification_weight=0.5)
  )
  model = crossmodal.build_model(config)
  variables = _variables(crossmodal, model, config)
  batch = _random_batch(config, crossmodal, seed=3)
  batch["class_label"][:4] = -1
  loss, metrics, out = _loss_and_outputs(crossmodal, model, variables, batch)
  v, a = out["vision_embedding"].astype(np.float64), out[
      "audio_embedding"
  ].astype(np.float64)
  cos = np.sum(v * a, 1) / (
      np.linalg.norm(v, axis=1) * np.linalg.norm(a, axis=1)
  )
  matched = batch["label"] == 1
  cosine = np.mean(np.where(matched, 1 - cos, np.maximum(0, cos - 0.2)))

  def ce(logits, labels):
    keep = labels >= 0
    logp = _log_softmax(logits.astype(np.float64), 1)
    return -np.mean(logp[keep][np.arange(keep.sum()), labels[keep]])

  audio_labels = np.where(
      matched, batch["class_label"], -1
  )  # audio's class known iff matched
  expected = cosine + 0.5 * (
      ce(out["vision_class_logits"], batch["class_label"])
      + ce(out["audio_class_logits"], audio_labels)
  )
  np.testing.assert_allclose(float(metrics["cosine_loss"]), cosine, rtol=1e-5)
  np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
  # The -1 rows drop out: the masked mean equals the plain mean over the labelled rows.
  np.testing.assert_allclose(
      float(
          crossmodal.masked_cross_entropy(
              out["vision_class_logits"], batch["class_label"]
          )
      ),
      -np.mean(
          _log_softmax(out["vision_class_logits"][4:].astype(np.float64), 1)[
              np.arange(12), batch["class_label"][4:]
          ]
      ),
      rtol=1e-5,
  )
  assert (
      float(
          crossmodal.masked_cross_entropy(
              out["vision_class_logits"], -np.ones(16, np.int32)
          )
      )
      == 0.0
  )
  # With `audio_class_label` (pairs mode) mismatched pairs' sounds are classified too.
  both = dict(batch, audio_class_label=np.full(16, 3, np.int32))
  np.testing.assert_array_equal(
      np.asarray(crossmodal.audio_class_labels(both)), 3
  )


# ### AVOL ######################################################################


def test_avol_loss_is_sigmoid_cross_entropy_of_the_max_pooled_map():
  config = _config("avol", "avol")
  model = avol.build_model(config)
  variables = _variables(avol, model, config)
  batch = _random_batch(config, avol, seed=4)
  state = {k: v for k, v in variables.items() if k != "params"}
  loss, metrics, out = _loss_and_outputs(avol, model, variables, batch)
  logit = np.asarray(out["logit"], np.float64)
  np.testing.assert_allclose(
      logit, np.asarray(out["localization_map"]).max(axis=(1, 2)), rtol=1e-6
  )
  y = batch["label"]
  expected = np.mean(
      np.maximum(logit, 0) - logit * y + np.log1p(np.exp(-np.abs(logit)))
  )
  np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
  np.testing.assert_allclose(
      float(metrics["accuracy"]), np.mean((logit > 0) == (y == 1))
  )

  def calibrated(scale, bias):
    params = dict(
        variables["params"], calibration_scale=scale, calibration_bias=bias
    )
    return avol.loss_fn(model, params, state, batch, None, train=False)[0]

  grads = jax.jit(jax.grad(calibrated, (0, 1)))(
      np.float32(10.0), np.float32(-1.5)
  )
  assert abs(float(grads[0])) > 0 and abs(float(grads[1])) > 0


# ### Learning ##################################################################


def test_tiny_contrastive_run_lowers_loss(tiny_records):
  """The task through the loop's own train_step on real `pairs` batches of the tiny world."""
  from avself.data import pipeline  # pylint: disable=g-import-not-at-top

  config = tiny.tiny_config(tiny_records)
  config.task, config.model.name = "contrastive", "avenet"
  model = contrastive.build_model(config)
  tx = optimizer.make_optimizer(config)
  mesh = sharding.make_mesh()
  variables = _variables(contrastive, model, config)
  state = state_lib.TrainState(
      step=np.int32(0),
      params=variables["params"],
      model_state={"batch_stats": variables["batch_stats"]},
      opt_state=tx.init(variables["params"]),
  )
  step = jax.jit(
      functools.partial(
          train.train_step,
          task=contrastive,
          model=model,
          tx=tx,
          skip_nonfinite=False,
      ),
      in_shardings=(
          sharding.replicated(mesh),
          sharding.batch_sharding(mesh),
          sharding.replicated(mesh),
      ),
  )
  batches = pipeline.make_dataset(
      config.data,
      mode=contrastive.data_mode(config),
      split="train",
      batch_size=16,
      train=True,
      seed=0,
  )
  losses, accuracies = [], []
  for _, batch in zip(range(40), batches.as_numpy_iterator()):
    state, metrics = step(
        state, sharding.to_global(batch, mesh), jax.random.key(0)
    )
    losses.append(float(metrics["loss"]))
    accuracies.append(float(metrics["accuracy"]))
  first, last = np.mean(losses[:10]), np.mean(losses[-10:])
  # InfoNCE over 16 candidates starts near log(16) = 2.77.
  assert first > 2.0 and last < first - 0.3, losses
  assert (
      np.mean(accuracies[-10:]) > 2 / 16
  ), accuracies  # in-batch top-1, chance 1/16
  assert float(state.params["log_temperature"]) != np.float32(math.log(0.07))
