"""Evaluators that sum per-batch statistics over a fixed, seeded eval split.

Shared by `avc`, `sync` and `classification`: each supplies a jittable
`eval_step(params, model_state, batch, *, task, model) -> {name: sum}` and
turns the summed totals into metrics. Batches come from the task's pipeline
mode with `train=False` and a fixed seed, so a number reproduces exactly for
a given checkpoint and device count. (No `Evaluator` here: not an evaluator
type of its own.)
"""

import functools

import jax

from avself import config_lib
from avself import sharding


class SummedEvaluator:
  """Runs `eval_step` over `num_examples` (rounded up to whole global batches).

  Attributes (from eval_config): num_examples, split (default
  config.data.eval_split), seed (default 1234), batch_size (default
  config.batch_size).
  """

  default_num_examples = 512

  def __init__(self, config, eval_config, *, task, model, mesh, eval_step):
    self.config, self.task, self.model, self.mesh = config, task, model, mesh
    self.split = eval_config.get("split") or config.data.eval_split
    self.seed = int(eval_config.get("seed", 1234))
    batch = int(eval_config.get("batch_size") or config.batch_size)
    self.local_batch = sharding.local_batch_size(batch)
    num_examples = int(
        eval_config.get("num_examples", self.default_num_examples)
    )
    self.num_batches = -(-num_examples // batch)
    self._step = jax.jit(
        functools.partial(eval_step, task=task, model=model),
        in_shardings=(
            sharding.replicated(mesh),
            sharding.replicated(mesh),
            sharding.batch_sharding(mesh),
        ),
        out_shardings=sharding.replicated(mesh),
    )

  def _batches(self):
    from avself.data import pipeline  # pylint: disable=g-import-not-at-top

    ds = pipeline.make_dataset(
        self.config.data,
        mode=self.task.data_mode(self.config),
        split=self.split,
        batch_size=self.local_batch,
        train=False,
        seed=self.seed,
    )
    return ds.repeat().take(self.num_batches).as_numpy_iterator()

  def check(self) -> None:
    """Raises ConfigError unless the split gives at least one full batch."""
    if next(self._batches(), None) is None:
      raise config_lib.ConfigError(self._too_small())

  def _too_small(self) -> str:
    return (
        f"split {self.split!r} of {self.config.data.path} gives no full "
        f"batch of {self.local_batch} per process (config.batch_size or the "
        "evaluation's batch_size): use a smaller batch or hold out more "
        "videos (prepare --test_fraction)"
    )

  def totals(self, state) -> dict:
    """{name: float} summed over all evaluation batches."""
    totals = None
    for local in self._batches():
      out = self._step(
          state.params, state.model_state, sharding.to_global(local, self.mesh)
      )
      out = sharding.to_host(out)
      totals = out if totals is None else {k: totals[k] + out[k] for k in out}
    if totals is None:
      raise config_lib.ConfigError(self._too_small())
    return {k: float(v) for k, v in totals.items()}
