"""Held-out audio-visual synchronisation accuracy (aligned vs shifted).

Clips are drawn with a fixed seed from the evaluation split with centre crops
and no jitter, so the number reproduces exactly for a given checkpoint and
device count. In paired mode every clip is scored twice (its aligned and its
shifted audio), so chance is 0.5 and `positive_fraction` is exactly 0.5.
"""
import functools

import jax
import jax.numpy as jnp
import optax

from avself import sharding


class Evaluator:
  """Sync accuracy, loss, and the accuracy on aligned and on shifted audio.

  Attributes:
    num_examples: clips to score (rounded up to whole global batches); each
      gives 2 examples in paired mode.
    split: default config.data.eval_split.
    seed: the pipeline seed (fixed clips, windows and shifts).
  """

  def __init__(self, config, eval_config, *, task, model, mesh):
    self.config, self.task, self.model, self.mesh = config, task, model, mesh
    self.split = eval_config.get("split") or config.data.eval_split
    self.seed = int(eval_config.get("seed", 1234))
    batch = int(eval_config.get("batch_size") or config.batch_size)
    self.local_batch = sharding.local_batch_size(batch)
    self.num_batches = -(-int(eval_config.get("num_examples", 512)) // batch)
    self._step = jax.jit(
        functools.partial(_eval_step, task=task, model=model),
        in_shardings=(sharding.replicated(mesh), sharding.replicated(mesh),
                      sharding.batch_sharding(mesh)),
        out_shardings=sharding.replicated(mesh))

  def _batches(self):
    from avself.data import pipeline  # pylint: disable=g-import-not-at-top
    ds = pipeline.make_dataset(
        self.config.data, mode=self.task.data_mode(self.config), split=self.split,
        batch_size=self.local_batch, train=False, seed=self.seed)
    return ds.repeat().take(self.num_batches).as_numpy_iterator()

  def run(self, state):
    """Yields (metric, value) pairs."""
    totals = None
    for local in self._batches():
      out = self._step(state.params, state.model_state, sharding.to_global(local, self.mesh))
      out = sharding.to_host(out)
      totals = out if totals is None else {k: totals[k] + out[k] for k in out}
    count = max(float(totals["count"]), 1.0)
    positives = max(float(totals["positives"]), 1.0)
    negatives = max(count - float(totals["positives"]), 1.0)
    yield "sync_accuracy", float(totals["correct"]) / count
    yield "loss", float(totals["loss_sum"]) / count
    yield "aligned_accuracy", float(totals["correct_positives"]) / positives
    yield "shifted_accuracy", float(totals["correct_negatives"]) / negatives
    yield "positive_fraction", float(totals["positives"]) / count
    yield "num_examples", count


def _eval_step(params, model_state, batch, *, task, model):
  """Sums of correct predictions (all, aligned, shifted), loss and counts over the global batch."""
  logits, labels, _ = task.logits_and_labels(
      model, {"params": params, **model_state}, batch, train=False)
  correct = ((logits > 0) == (labels > 0.5)).astype(jnp.float32)
  return {"correct": correct.sum(),
          "correct_positives": (correct * labels).sum(),
          "correct_negatives": (correct * (1.0 - labels)).sum(),
          "loss_sum": optax.sigmoid_binary_cross_entropy(logits, labels).sum(),
          "positives": labels.sum(), "count": jnp.float32(labels.shape[0])}
