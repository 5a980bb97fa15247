"""Held-out accuracy of a classification task (e.g. `action`).

Any task whose `loss_fn` returns batch means `accuracy` and `loss` works:
examples are drawn with a fixed seed from the evaluation split with centre
crops and no jitter (the task's pipeline mode, `train=False`), so the number
reproduces exactly for a given checkpoint and device count.
"""

import jax
import jax.numpy as jnp

from avself.evaluators import summed


class Evaluator(summed.SummedEvaluator):
  """Top-1 accuracy and loss on `eval_config.split` (default: config.data.eval_split).

  Attributes:
    num_examples: examples to score (rounded up to whole global batches).
    seed: the pipeline seed (fixed clips).
  """

  default_num_examples = 512

  def __init__(self, config, eval_config, *, task, model, mesh):
    super().__init__(
        config,
        eval_config,
        task=task,
        model=model,
        mesh=mesh,
        eval_step=_eval_step,
    )

  def run(self, state):
    """Yields (metric, value) pairs."""
    totals = self.totals(state)
    count = max(totals["count"], 1.0)
    yield "accuracy", totals["correct"] / count
    yield "loss", totals["loss_sum"] / count
    yield "num_examples", count


def _eval_step(params, model_state, batch, *, task, model):
  """Sums of correct predictions and loss over the global batch."""
  _, (metrics, _) = task.loss_fn(
      model, params, model_state, batch, None, train=False
  )
  n = jnp.float32(jax.tree.leaves(batch)[0].shape[0])
  return {
      "correct": metrics["accuracy"] * n,
      "loss_sum": metrics["loss"] * n,
      "count": n,
  }
