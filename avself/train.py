"""The one train loop for every avself method.

A task (`avself/tasks/<name>.py`) supplies the model, the input pipeline's
sampling mode and the loss; everything else lives here, top to bottom:
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
from typing import Any, Callable, Optional

from absl import logging
from clu import metric_writers
from clu import periodic_actions
import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from avself import checkpoint as ckpt_lib
from avself import config_lib
from avself import sharding


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  model_state: Any  # BatchNorm statistics and other non-trained collections.
  opt_state: Any


class NonFiniteLossError(FloatingPointError):
  """The loss became NaN or Inf; the last good checkpoint is kept."""


def get_task(name: str):
  """The task module `avself.tasks.<name>` (import, not a registry dict)."""
  try:
    return importlib.import_module(f"avself.tasks.{name}")
  except ModuleNotFoundError as e:
    if e.name == f"avself.tasks.{name}":
      raise ValueError(
          f"config.task={name!r}: no module avself/tasks/{name}.py"
      ) from e
    raise


################################################################################
# Optimiser and state.
################################################################################


def make_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
  """Learning-rate schedule: constant or cosine, with optional linear warm-up."""
  opt = config.optimizer
  warmup = int(opt.get("warmup_steps", 0))
  if opt.schedule == "constant":
    main = optax.constant_schedule(opt.learning_rate)
  elif opt.schedule == "cosine":
    main = optax.cosine_decay_schedule(
        opt.learning_rate, max(1, config.total_steps - warmup)
    )
  else:
    raise ValueError(
        f"config.optimizer.schedule={opt.schedule!r}: use 'constant' or 'cosine'"
    )
  if not warmup:
    return main
  return optax.join_schedules(
      [optax.linear_schedule(0.0, opt.learning_rate, warmup), main], [warmup]
  )


def make_optimizer(
    config: ml_collections.ConfigDict,
) -> optax.GradientTransformation:
  """Adam with L2 weight decay as in L3-Net (lr 1e-4, wd 1e-5), or AdamW."""
  opt = config.optimizer
  schedule = make_schedule(config)
  if opt.name == "adam":
    # The paper's weight decay is an L2 term, i.e. added to the gradient
    # before Adam's normalisation (not decoupled).
    tx = optax.chain(
        optax.add_decayed_weights(opt.weight_decay), optax.adam(schedule)
    )
  elif opt.name == "adamw":
    tx = optax.adamw(schedule, weight_decay=opt.weight_decay)
  elif opt.name == "sgd":
    tx = optax.chain(
        optax.add_decayed_weights(opt.weight_decay),
        optax.sgd(schedule, momentum=0.9),
    )
  else:
    raise ValueError(
        f"config.optimizer.name={opt.name!r}: use 'adam', 'adamw' or 'sgd'"
    )
  if opt.get("grad_clip_norm"):
    tx = optax.chain(optax.clip_by_global_norm(opt.grad_clip_norm), tx)
  frozen = tuple(opt.get("freeze", ()) or ())
  if frozen:
    steps = int(opt.get("freeze_steps", 0))
    if steps <= 0:
      raise ValueError(
          f"config.optimizer.freeze={frozen} needs freeze_steps > 0 "
          f"(got {steps}): the steps for which they are held"
      )
    logging.info(
        "Holding %s still for the first %d steps (optimizer.freeze)",
        frozen,
        steps,
    )
    tx = optax.chain(tx, hold_at_first(frozen, steps))
  return tx


def hold_at_first(
    names: tuple[str, ...], steps: int
) -> optax.GradientTransformation:
  """Zeroes the updates of the top-level parameter groups `names` for `steps` steps.

  Linear-probe-then-fine-tune (LP-FT, Kumar et al. 2022): with the pre-trained
  groups held, a new head first learns on features that its random start
  cannot yet pull apart; then everything trains. Applied after the optimiser,
  so held parameters do not move at all (weight decay included), while the
  optimiser's moments for them still see every gradient.
  """
  names = tuple(names)

  def init(params):
    missing = [n for n in names if n not in params]
    if missing:
      raise ValueError(
          f"config.optimizer.freeze names {missing}, not among the "
          f"model's parameter groups {sorted(params)}"
      )
    return optax.ScaleByScheduleState(count=jnp.zeros((), jnp.int32))

  def update(updates, state, params=None):
    del params
    keep = (state.count >= steps).astype(jnp.float32)
    held = {
        k: (
            jax.tree.map(lambda u: u * keep.astype(u.dtype), v)
            if k in names
            else v
        )
        for k, v in updates.items()
    }
    return held, optax.ScaleByScheduleState(
        count=optax.safe_increment(state.count)
    )

  return optax.GradientTransformation(init, update)


def create_train_state(task, model, tx, config, rng, mesh) -> TrainState:
  """Initialises parameters directly into their (replicated) shardings."""
  batch = task.dummy_batch(config, 2)

  def init(rng):
    variables = task.init(model, rng, batch)
    params = variables["params"]
    model_state = {k: v for k, v in variables.items() if k != "params"}
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        model_state=model_state,
        opt_state=tx.init(params),
    )

  return jax.jit(init, out_shardings=sharding.replicated(mesh))(rng)


################################################################################
# The step.
################################################################################


def train_step(
    state: TrainState,
    batch: dict,
    rng: jax.Array,
    *,
    task,
    model,
    tx,
    skip_nonfinite: bool,
) -> tuple[TrainState, dict]:
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
      cost = jax.jit(lambda *a: fn(*a)).trace(*args).lower().cost_analysis()
  except Exception:  # pylint: disable=broad-except  # Some backends do not implement it.
    return None
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float((cost or {}).get("flops", 0.0))
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
    state: TrainState,
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
    for metric, value in evaluator.run(state):
      results[f"{name}/{metric}"] = value
    logging.info("Evaluator %s took %.1fs", name, time.time() - t0)
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
  for k, v in scalars.items():
    logging.info("step %d %s = %.4f", step, k, v)
  return results


def _input_skips(before: dict) -> dict:
  """Corrupt records skipped so far by the input pipelines of all processes.

  `pipeline.skip_counts()` per process (records read ahead of training
  included), summed over processes; warns when the count grew since `before`.
  """
  from avself.data import pipeline  # pylint: disable=g-import-not-at-top

  counts = pipeline.skip_counts()
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
  task = get_task(config.task)
  config = config_lib.resolve_data(
      config
  )  # Builds the synthetic world if asked.
  if hasattr(task, "prepare_data"):
    # Targets made once over the records (SoundNet's teacher, audio clusters).
    config = task.prepare_data(config, workdir)

  mesh = sharding.make_mesh()
  local_batch = sharding.local_batch_size(config.batch_size)
  model = task.build_model(config)
  tx = make_optimizer(config)
  rng = jax.random.key(config.seed)
  init_rng, step_rng = jax.random.split(rng)

  #### State: fresh or restored.
  state = create_train_state(task, model, tx, config, init_rng, mesh)
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
  train_iter = task_data_iterator(
      task, config, local_batch, data_state, start_step
  )

  #### The jitted step: batch on `data`, state replicated and donated.
  step_fn = jax.jit(
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
  evaluators = build_evaluators(config, task=task, model=model, mesh=mesh)
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
    batch = sharding.to_global(train_iter.next(), mesh)
    if compiled_step is None:
      # Compiled once, ahead of time: the cost analysis (FLOPs) and the
      # executable every step runs are the same (jit's own cache would
      # compile a second time).
      compiled_step = step_fn.lower(state, batch, step_rng).compile()
      flops_per_step = (
          model_flops(
              functools.partial(
                  train_step,
                  task=task,
                  model=model,
                  tx=tx,
                  skip_nonfinite=config.get("skip_nonfinite", False),
              ),
              state,
              batch,
              step_rng,
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
      pending, t_log = [], time.time()

    if evaluators and (step % config.eval_every_steps == 0 or is_last):
      results = run_evaluators(evaluators, state, step, writer)
      t_log = time.time()

    stopping = _stop_requested(stop)
    if step % config.checkpoint.every_steps == 0 or is_last or stopping:
      ckpt_lib.save(
          manager, step, state, config, train_iter.state(), force=True
      )
      last_good_step = step
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


def restore(workdir: str, step: Optional[int] = None, mesh=None):
  """Rebuilds (config, task, model, state) from a checkpoint alone.

  The model is rebuilt from the config stored with the checkpoint, so a
  checkpoint describes itself (evaluate, embed and localize start here).
  """
  config, step = ckpt_lib.load_config(workdir, step)
  mesh = mesh or sharding.make_mesh()
  task = get_task(config.task)
  model = task.build_model(config)
  tx = make_optimizer(config)
  abstract = jax.eval_shape(
      lambda: create_train_state(
          task, model, tx, config, jax.random.key(0), mesh
      )
  )
  abstract = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(
          x.shape, x.dtype, sharding=sharding.replicated(mesh)
      ),
      abstract,
  )
  manager = ckpt_lib.make_manager(workdir, read_only=True)
  state, _ = ckpt_lib.restore_state(manager, abstract, step)
  return config, task, model, state


def random_init(config, mesh=None, seed: int = 0):
  """A randomly initialised (task, model, state) of `config`: the probes' baseline."""
  mesh = mesh or sharding.make_mesh()
  task = get_task(config.task)
  model = task.build_model(config)
  state = create_train_state(
      task, model, make_optimizer(config), config, jax.random.key(seed), mesh
  )
  return task, model, state


################################################################################
# The input side of the loop.
################################################################################


class DataIterator:
  """This host's training batches, with a position that checkpoints can store.

  The global batch is assembled from `num_streams` per-host input streams
  (default: one per process). A process reads streams
  [p * k, (p + 1) * k) with k = num_streams / process_count and concatenates
  their batches, so a run on fewer processes can see exactly the global
  batches of a run on more (the multi-host test relies on this).
  """

  def __init__(
      self,
      dataset_fn,
      *,
      seed: int,
      num_streams: int,
      local_batch: int,
      data_state: Optional[dict],
      start_step: int,
  ):
    processes = jax.process_count()
    if num_streams % processes:
      raise config_lib.ConfigError(
          f"config.data.input_streams={num_streams} must be a multiple of the "
          f"{processes} processes"
      )
    k = num_streams // processes
    if local_batch % k:
      raise config_lib.ConfigError(
          f"the per-process batch {local_batch} must divide over {k} input streams"
      )
    state = data_state or {}
    self.seed = int(state.get("seed", seed))
    self.position = int(state.get("position", start_step))
    first = jax.process_index() * k
    self._iterators = [
        self._make(dataset_fn, stream, num_streams, local_batch // k)
        for stream in range(first, first + k)
    ]

  def _make(self, dataset_fn, stream: int, num_streams: int, batch: int):
    ds = dataset_fn(self.seed, stream, num_streams, batch)
    if self.position:
      # The pipeline is deterministic: skipping replays exactly the batches an
      # uninterrupted run would have seen (cost: re-reading them once).
      ds = ds.skip(self.position)
    return ds.as_numpy_iterator()

  def next(self) -> dict:
    """The next local batch (numpy), concatenated over this host's streams."""
    parts = [next(it) for it in self._iterators]
    self.position += 1
    if len(parts) == 1:
      return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

  def state(self) -> dict:
    return {"seed": self.seed, "position": self.position}


def task_data_iterator(
    task, config, local_batch: int, data_state, start_step: int
):
  """Training batches for `task` from `config.data`."""
  from avself.data import pipeline  # pylint: disable=g-import-not-at-top

  def dataset_fn(seed, stream, num_streams, batch):
    return pipeline.make_dataset(
        config.data,
        mode=task.data_mode(config),
        split=config.data.train_split,
        batch_size=batch,
        train=True,
        seed=seed,
        process_index=stream,
        process_count=num_streams,
    )

  num_streams = config.data.get("input_streams") or jax.process_count()
  return DataIterator(
      dataset_fn,
      seed=config.seed,
      num_streams=num_streams,
      local_batch=local_batch,
      data_state=data_state,
      start_step=start_step,
  )
