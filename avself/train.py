"""The one train loop for every avself method.

A task (`avself/tasks/<name>.py`, the `avself.tasks.Task` protocol) supplies
the model, the input pipeline's sampling mode and the loss; the optimiser is
`avself/optimizer.py`, the train state `avself/state.py` and the input
iterator `avself/data/iterator.py`. The loop lives here, top to bottom:
config checks, data, mesh, state, the jitted step, logging, evaluation,
checkpoints (with resume and save-on-SIGTERM) and the final results.json.
"""

import functools
import importlib
import json
import os
import signal
import threading
import time
from typing import Callable, Optional

from absl import logging
from clu import metric_writers
from clu import periodic_actions
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from avself import checkpoint as ckpt_lib
from avself import config_lib
from avself import optimizer
from avself import preflight
from avself import roofline
from avself import sharding
from avself import state as state_lib
from avself import tasks
from avself.data import iterator as data_iterator


class NonFiniteLossError(FloatingPointError):
  """The loss became NaN or Inf; the last good checkpoint is kept."""


################################################################################
# The step.
################################################################################


def train_step(
    state: state_lib.TrainState,
    batch: dict,
    rng: jax.Array,
    *,
    task,
    model,
    tx,
    skip_nonfinite: bool,
) -> tuple[state_lib.TrainState, dict]:
  """One optimiser step on the global batch; returns the new state and metrics."""
  rng = jax.random.fold_in(rng, state.step)

  def loss_fn(params):
    return task.loss_fn(
        model, params, state.model_state, batch, rng, train=True
    )

  (loss, (metrics, model_state)), grads = jax.value_and_grad(
      loss_fn, has_aux=True
  )(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  finite = jnp.isfinite(loss) & jnp.isfinite(optax.tree.norm(grads))
  new_state = state.replace(
      step=state.step + 1,
      params=params,
      model_state=model_state,
      opt_state=opt_state,
  )
  if skip_nonfinite:
    # Keep the old parameters but advance the step so the data moves on.
    new_state = jax.tree.map(
        lambda new, old: jnp.where(finite, new, old),
        new_state,
        state.replace(step=state.step + 1),
    )
  metrics = dict(
      metrics,
      grad_norm=optax.tree.norm(grads),
      nonfinite=1.0 - finite.astype(jnp.float32),
  )
  return new_state, metrics


def jit_train_step(task, model, tx, config, mesh) -> Callable:
  """`train_step` jitted over `mesh`: batch on `data`, state replicated and donated."""
  return jax.jit(
      functools.partial(
          train_step,
          task=task,
          model=model,
          tx=tx,
          skip_nonfinite=config.get("skip_nonfinite", False),
      ),
      in_shardings=(
          sharding.replicated(mesh),
          sharding.batch_sharding(mesh),
          sharding.replicated(mesh),
      ),
      out_shardings=(sharding.replicated(mesh), sharding.replicated(mesh)),
      donate_argnums=(0,),
  )


def model_step(task, tx, config, mesh) -> Callable:
  """The unjitted train step whose FLOPs are the model's.

  That is the step without what other forms of the same computation add:
  the VGG trunks' column pairs (multiply-adds by structural zeros) and
  `remat` (a second forward pass). The MFU figures count these FLOPs.
  """
  plain = config.copy_and_resolve_references()
  with plain.unlocked():
    plain.model.pack_columns = "off"
    plain.model.remat = False
  model = task.build_model(plain)
  return jit_train_step(task, model, tx, plain, mesh).__wrapped__


def model_flops(fn: Callable, *args) -> Optional[float]:
  """XLA's FLOP count of `fn(*args)`, traced afresh with plain conv gradients.

  The count is taken before compilation and without running anything. On CPU
  the VGG convs compute their kernel gradient in a loop over taps
  (`models/layers.py`), and cost analyses count a loop's body once; tracing
  with XLA's own conv gradient gives the full arithmetic of the step.
  """
  from avself.models import layers  # pylint: disable=g-import-not-at-top

  try:
    with layers.plain_conv_gradients():
      # A new jit object: the trace must not come from (or go to) another cache entry.
      lowered = jax.jit(lambda *a: fn(*a)).trace(*args).lower()
      cost = roofline.cost_analysis(lowered)
  except Exception:  # pylint: disable=broad-except  # Some backends do not implement it.
    return None
  flops = float(cost.get("flops", 0.0))
  return flops if flops > 0 else None


################################################################################
# Preemption: SIGTERM asks the loop to save and stop at the next step.
################################################################################


class _StopFlag:
  """Set by SIGTERM/SIGINT; checked once per step."""

  def __init__(self):
    self.signal = None

  def install(self):
    if threading.current_thread() is not threading.main_thread():
      return
    for sig in (signal.SIGTERM,):
      signal.signal(sig, self._handle)

  def _handle(self, signum, frame):
    del frame
    self.signal = signum
    logging.warning(
        "Received signal %d: saving a checkpoint and stopping.", signum
    )


def _stop_requested(flag: _StopFlag) -> bool:
  """Agrees across hosts, so every process stops at the same step."""
  local = np.int32(flag.signal is not None)
  if jax.process_count() == 1:
    return bool(local)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

  return bool(np.max(multihost_utils.process_allgather(local)))


################################################################################
# Train and evaluate.
################################################################################


def build_evaluators(config, *, task, model, mesh) -> dict:
  """Evaluators declared in `config.evals` (type = module in avself/evaluators)."""
  evaluators = {}
  for name, eval_config in (config.get("evals") or {}).items():
    module = importlib.import_module(f"avself.evaluators.{eval_config.type}")
    evaluators[name] = module.Evaluator(
        config, eval_config, task=task, model=model, mesh=mesh
    )
  return evaluators


def run_evaluators(
    evaluators: dict,
    state: state_lib.TrainState,
    step: int,
    writer: metric_writers.MetricWriter,
) -> dict:
  """Runs every evaluator; writes and returns `{name/metric: value}`.

  Scalars go to `write_scalars`; uint8/float images ([H, W, C] or
  [N, H, W, C]) to `write_images`, so CAM overlays and retrieval grids
  show up in TensorBoard next to the numbers.
  """
  results = {}
  for name, evaluator in evaluators.items():
    t0 = time.time()
    mine = {}
    for metric, value in evaluator.run(state):
      mine[metric] = value
    results.update({f"{name}/{k}": v for k, v in mine.items()})
    numbers = ", ".join(
        f"{k} {float(v):.4g}" for k, v in mine.items() if np.ndim(v) == 0
    )
    logging.info(
        "step %d eval %s (%.1f s): %s", step, name, time.time() - t0, numbers
    )
  scalars = {k: v for k, v in results.items() if np.ndim(v) == 0}
  images = {
      k: (v if np.ndim(v) == 4 else np.asarray(v)[None])
      for k, v in results.items()
      if np.ndim(v) in (3, 4)
  }
  if scalars:
    writer.write_scalars(step, scalars)
  if images:
    writer.write_images(step, images)
  return results


def _progress_line(step: int, total: int, summary: dict) -> str:
  """`step 50/1700: loss 0.6931, accuracy 0.5000, 3.21 steps/s, ETA 8m34s`."""
  left = (total - step) / max(summary["steps_per_sec"], 1e-9)
  minutes, seconds = divmod(int(round(left)), 60)
  hours, minutes = divmod(minutes, 60)
  eta = f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"
  metrics = ", ".join(
      f"{k} {summary[k]:.4f}" for k in ("loss", "accuracy") if k in summary
  )
  return f"step {step}/{total}: {metrics}, {summary['steps_per_sec']:.2f} steps/s, ETA {eta}"


def _input_skips(before: dict) -> dict:
  """Corrupt records skipped so far by the input pipelines of all processes.

  `reading.skip_counts()` per process (records read ahead of training
  included), summed over processes; warns when the count grew since `before`.
  """
  from avself.data import reading  # pylint: disable=g-import-not-at-top

  counts = reading.skip_counts()
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

    names = sorted(counts)
    # float32 (JAX's default): exact for counts below 2**24, bytes to ~1e-7.
    every = multihost_utils.process_allgather(
        np.array([counts[k] for k in names], np.float32)
    )
    counts = dict(
        zip(names, np.asarray(every).reshape(-1, len(names)).sum(0).tolist())
    )
  counts = {k: float(v) for k, v in counts.items()}
  grew = counts["skipped_records"] - before.get("skipped_records", 0.0)
  if grew > 0:
    logging.warning(
        "Input: skipped %d more corrupt record(s), %d so far (%d bytes of damaged shards "
        "unread); stderr names the shards. data.on_corrupt='fail' stops instead.",
        grew,
        counts["skipped_records"],
        counts["unread_bytes"],
    )
  return counts


def write_results(workdir: str, results: dict) -> None:
  """WORKDIR/results.json from process 0 only."""
  if jax.process_index() != 0:
    return
  path = os.path.join(workdir, "results.json")
  clean = {
      k: (v.item() if hasattr(v, "item") else v) for k, v in results.items()
  }
  with open(path + ".tmp", "w") as f:
    json.dump(clean, f, indent=2, sort_keys=True)
  os.replace(path + ".tmp", path)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains `config.task` in `workdir` (resuming if it has checkpoints)."""
  config_lib.validate(config)
  os.makedirs(workdir, exist_ok=True)
  task = tasks.get_task(config.task)
  config = config_lib.resolve_data(
      config
  )  # Builds the synthetic world if asked.
  preflight.check(config)
  if hasattr(task, "prepare_data"):
    # Targets made once over the records (SoundNet's teacher, audio clusters).
    config = task.prepare_data(config, workdir)

  mesh = sharding.make_mesh()
  local_batch = sharding.local_batch_size(config.batch_size)
  model = task.build_model(config)
  tx = optimizer.make_optimizer(config)
  rng = jax.random.key(config.seed)
  init_rng, step_rng = jax.random.split(rng)

  #### State: fresh or restored.
  state = state_lib.create_train_state(task, model, tx, config, init_rng, mesh)
  manager = ckpt_lib.make_manager(
      workdir,
      keep=config.checkpoint.keep,
      every_steps=config.checkpoint.every_steps,
      async_save=config.checkpoint.get("async_save", True),
  )
  start_step = 0
  data_state = None
  if manager.latest_step() is not None:
    state, start_step = ckpt_lib.restore_state(
        manager, ckpt_lib.abstract_like(state)
    )
    ckpt_lib.move_damaged(manager, ckpt_lib.damaged_steps(manager))
    data_state = ckpt_lib.restore_data_state(manager, start_step)
    logging.info("Resumed from step %d in %s", start_step, workdir)
  elif hasattr(task, "warm_start"):
    # E.g. action recognition starting from a sync checkpoint's video branch.
    params, model_state = task.warm_start(
        config, state.params, state.model_state
    )
    state = jax.device_put(
        state.replace(
            params=params, model_state=model_state, opt_state=tx.init(params)
        ),
        sharding.replicated(mesh),
    )
  num_params = sum(x.size for x in jax.tree.leaves(state.params))
  logging.info("Model %s: %s parameters", config.model.name, f"{num_params:,}")

  #### Data: this host's slice of every global batch.
  train_iter = data_iterator.task_data_iterator(
      task, config, local_batch, data_state, start_step
  )

  #### The jitted step: batch on `data`, state replicated and donated.
  step_fn = jit_train_step(task, model, tx, config, mesh)

  # Checked before anything is written: SIGTERM is handled once the loop's
  # stop flag is installed, just below the writer.
  evaluators = build_evaluators(config, task=task, model=model, mesh=mesh)
  preflight.check_evaluators(evaluators)
  writer = metric_writers.create_default_writer(
      workdir, just_logging=jax.process_index() > 0, asynchronous=True
  )
  if start_step == 0:
    writer.write_hparams(
        {
            k: v
            for k, v in config_lib.flatten(config).items()
            if isinstance(v, (int, float, str, bool))
        }
    )
  progress = periodic_actions.ReportProgress(
      num_train_steps=config.total_steps,
      writer=writer,
      every_steps=config.log_every_steps,
  )
  stop = _StopFlag()
  stop.install()

  #### Loop.
  compiled_step, flops_per_step = None, None
  pending, t_log, step = [], time.time(), start_step
  skips: dict = {}
  results: dict = {}
  last_good_step = start_step
  while step < config.total_steps:
    ckpt_lib.check_saves(manager)  # A failed background save stops the run.
    batch = sharding.to_global(train_iter.next(), mesh)
    if compiled_step is None:
      # Compiled once, ahead of time: the cost analysis (FLOPs) and the
      # executable every step runs are the same (jit's own cache would
      # compile a second time).
      compiled_step = step_fn.lower(state, batch, step_rng).compile()
      flops_per_step = (
          model_flops(
              model_step(task, tx, config, mesh), state, batch, step_rng
          )
          or 0.0
      )
    state, metrics = compiled_step(state, batch, step_rng)
    step += 1
    pending.append(metrics)
    progress(step)

    is_last = step == config.total_steps
    if step % config.log_every_steps == 0 or is_last:
      host = sharding.to_host(pending)
      summary = {k: float(np.mean([m[k] for m in host])) for k in host[0]}
      bad = [
          start + i
          for i, m in enumerate(host, 1)
          for start in [step - len(host)]
          if m["nonfinite"] > 0
      ]
      if bad and not config.get("skip_nonfinite", False):
        manager.wait_until_finished()
        raise NonFiniteLossError(
            f"Non-finite loss or gradient at step {bad[0]}; the last good checkpoint "
            f"(step {last_good_step}) is kept in {manager.directory}. Set "
            "--config.skip_nonfinite=True to skip such steps instead."
        )
      dt = time.time() - t_log
      summary["steps_per_sec"] = len(host) / dt
      summary["examples_per_sec"] = len(host) * config.batch_size / dt
      if flops_per_step:
        summary["gflops_per_sec"] = flops_per_step * len(host) / dt / 1e9
      summary["nonfinite_steps"] = float(sum(m["nonfinite"] > 0 for m in host))
      del summary["nonfinite"]
      skips = _input_skips(skips)
      writer.write_scalars(
          step,
          {
              **{f"train/{k}": v for k, v in summary.items()},
              **{f"data/{k}": v for k, v in skips.items()},
          },
      )
      logging.info("%s", _progress_line(step, config.total_steps, summary))
      pending, t_log = [], time.time()

    # Saved before evaluating: an evaluation that fails never costs the step.
    stopping = _stop_requested(stop)
    if step % config.checkpoint.every_steps == 0 or is_last or stopping:
      ckpt_lib.save(
          manager, step, state, config, train_iter.state(), force=True
      )
      last_good_step = step

    if evaluators and (step % config.eval_every_steps == 0 or is_last):
      results = run_evaluators(evaluators, state, step, writer)
      t_log = time.time()
    if stopping:
      logging.warning("Stopped by signal at step %d; checkpoint saved.", step)
      break

  manager.wait_until_finished()
  writer.flush()
  final = {
      "step": int(step),
      **{k: v for k, v in results.items() if np.ndim(v) == 0},
  }
  if step == config.total_steps:
    write_results(workdir, final)
  return final
