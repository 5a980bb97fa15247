"""Held-out audio-visual correspondence accuracy.

Pairs are drawn with a fixed seed from the evaluation split, so the number
reproduces exactly for a given checkpoint and device count.
"""

import jax.numpy as jnp

from avself.evaluators import summed


class Evaluator(summed.SummedEvaluator):
  """AVC accuracy and loss on `eval_config.split` (default: config.data.eval_split).

  Attributes:
    num_examples: pairs to score (rounded up to whole global batches).
  """

  default_num_examples = 1024

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
    yield "avc_accuracy", totals["correct"] / count
    yield "loss", totals["loss_sum"] / count
    yield "positive_fraction", totals["positives"] / count
    yield "num_examples", count


def _eval_step(params, model_state, batch, *, task, model):
  """Sums of correct predictions, loss and positives over the global batch."""
  _, (metrics, _) = task.loss_fn(
      model, params, model_state, batch, None, train=False
  )
  n = batch["label"].shape[0]
  return {
      "correct": metrics["accuracy"] * n,
      "loss_sum": metrics["loss"] * n,
      "positives": jnp.sum(batch["label"]).astype(jnp.float32),
      "count": jnp.float32(n),
  }
