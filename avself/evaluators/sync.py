"""Held-out audio-visual synchronisation accuracy (aligned vs shifted).

Clips are drawn with a fixed seed from the evaluation split with centre crops
and no jitter, so the number reproduces exactly for a given checkpoint and
device count. In paired mode every clip is scored twice (its aligned and its
shifted audio), so chance is 0.5 and `positive_fraction` is exactly 0.5.
"""

import jax.numpy as jnp
import optax

from avself.evaluators import summed


class Evaluator(summed.SummedEvaluator):
  """Sync accuracy, loss, and the accuracy on aligned and on shifted audio.

  Attributes:
    num_examples: clips to score (rounded up to whole global batches); each
      gives 2 examples in paired mode.
    split: default config.data.eval_split.
    seed: the pipeline seed (fixed clips, windows and shifts).
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
    positives = max(totals["positives"], 1.0)
    negatives = max(count - totals["positives"], 1.0)
    yield "sync_accuracy", totals["correct"] / count
    yield "loss", totals["loss_sum"] / count
    yield "aligned_accuracy", totals["correct_positives"] / positives
    yield "shifted_accuracy", totals["correct_negatives"] / negatives
    yield "positive_fraction", totals["positives"] / count
    yield "num_examples", count


def _eval_step(params, model_state, batch, *, task, model):
  """Sums of correct predictions (all, aligned, shifted), loss and counts over the global batch."""
  logits, labels, _ = task.logits_and_labels(
      model, {"params": params, **model_state}, batch, train=False
  )
  correct = ((logits > 0) == (labels > 0.5)).astype(jnp.float32)
  return {
      "correct": correct.sum(),
      "correct_positives": (correct * labels).sum(),
      "correct_negatives": (correct * (1.0 - labels)).sum(),
      "loss_sum": optax.sigmoid_binary_cross_entropy(logits, labels).sum(),
      "positives": labels.sum(),
      "count": jnp.float32(labels.shape[0]),
  }
