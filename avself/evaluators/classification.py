"""Held-out accuracy of a classification task (e.g. `action`).

Any task whose `loss_fn` returns batch means `accuracy` and `loss` works:
examples are drawn with a fixed seed from the evaluation split with centre
crops and no jitter (the task's pipeline mode, `train=False`), so the number
reproduces exactly for a given checkpoint and device count.
"""
import functools

import jax
import jax.numpy as jnp

from avself import sharding


class Evaluator:
  """Top-1 accuracy and loss on `eval_config.split` (default: config.data.eval_split).

  Attributes:
    num_examples: examples to score (rounded up to whole global batches).
    seed: the pipeline seed (fixed clips).
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
    yield "accuracy", float(totals["correct"]) / count
    yield "loss", float(totals["loss_sum"]) / count
    yield "num_examples", count


def _eval_step(params, model_state, batch, *, task, model):
  """Sums of correct predictions and loss over the global batch."""
  _, (metrics, _) = task.loss_fn(model, params, model_state, batch, None, train=False)
  n = jnp.float32(jax.tree.leaves(batch)[0].shape[0])
  return {"correct": metrics["accuracy"] * n, "loss_sum": metrics["loss"] * n, "count": n}
