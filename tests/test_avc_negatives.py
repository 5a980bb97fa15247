"""AVC with every (audio, image) pair of a batch: targets, loss, and the default."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from avself import config_lib
from avself.tasks import avc


def _config(negatives=None):
  c = config_lib.base_config()
  c.model.width = 1 / 16
  if negatives is not None:
    c.avc = ml_collections.ConfigDict(dict(negatives=negatives))
  return c


def test_targets_follow_the_pairing():
  # Pairs (0, 1), (2, 3), (4, 5): 0 own frame, 1 shows 0's, 2 and 3 swapped,
  # 4 and 5 own frames.
  labels = jnp.array([1, 0, 0, 0, 1, 1])
  t = np.asarray(avc.all_pairs_targets(labels))
  expected = np.zeros((6, 6))
  expected[0, 0] = 1  # audio 0, its own frame
  expected[0, 1] = 1  # image 1 is audio 0's frame (label[1] = 0)
  expected[2, 3] = expected[3, 2] = 1  # swapped both ways
  expected[4, 4] = expected[5, 5] = 1
  np.testing.assert_array_equal(t, expected)


def test_all_pairs_loss_scores_every_pair_and_keeps_the_pair_metrics():
  config = _config("all")
  model = avc.build_model(config)
  assert model.negatives == "all"
  rng = np.random.default_rng(0)
  batch = {
      "image": rng.uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32),
      "audio": rng.normal(size=(8, 32, 24, 1)).astype(np.float32),
      "label": np.array([1, 0, 0, 0, 1, 1, 0, 1], np.int32),
  }
  variables = avc.init(model, jax.random.PRNGKey(0), batch)
  params = variables["params"]
  state = {k: v for k, v in variables.items() if k != "params"}

  @jax.jit
  def run(params, batch):
    loss, (metrics, _) = avc.loss_fn(
        model, params, state, batch, None, train=False
    )
    variables = {"params": params, **state}
    outputs = model.apply(
        variables, batch["image"], batch["audio"], train=False
    )
    logits = model.apply(
        {"params": params},
        outputs["vision"]["pooled"],
        outputs["audio"]["pooled"],
        method=model.fuse_all_pairs,
    )
    grads = jax.grad(
        lambda p: avc.loss_fn(model, p, state, batch, None, train=False)[0]
    )(params)
    return loss, metrics, outputs["logits"], logits, grads

  loss, metrics, pair_logits, logits, grads = run(params, batch)
  assert logits.shape == (8, 8, 2)
  # The diagonal is the pair logits the plain forward pass gives.
  np.testing.assert_allclose(
      np.diagonal(logits, axis1=0, axis2=1).T, pair_logits, atol=1e-5
  )
  targets = np.asarray(avc.all_pairs_targets(jnp.asarray(batch["label"])))
  ce = np.asarray(
      optax.softmax_cross_entropy_with_integer_labels(
          logits, targets.astype(np.int32)
      )
  )
  expected = 0.5 * (ce[targets == 1].mean() + ce[targets == 0].mean())
  assert float(loss) == pytest.approx(expected, rel=1e-5)
  pair = optax.softmax_cross_entropy_with_integer_labels(
      pair_logits, batch["label"]
  ).mean()
  assert float(metrics["pair_loss"]) == pytest.approx(float(pair), rel=1e-5)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  assert float(jnp.abs(grads["audio_trunk"]["conv1_1"]["kernel"]).sum()) > 0


def test_default_is_the_pair_loss_and_a_bad_value_is_refused():
  assert avc.build_model(_config()).negatives == "pair"
  assert avc.build_model(_config("pair")).negatives == "pair"
  with pytest.raises(ValueError, match="negatives"):
    avc.build_model(_config("some"))
  avenet = _config("all")
  avenet.model.name = "avenet"
  with pytest.raises(ValueError, match="'l3'"):
    avc.build_model(avenet)
