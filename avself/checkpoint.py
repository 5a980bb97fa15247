"""Orbax checkpoints that describe themselves.

Each step folder holds the train state (`state`) and the run's config
(`config`, JSON), so `avself.evaluate` and `avself.embed` can rebuild the
model from the checkpoint alone. Saves are asynchronous; a save that was
killed half-way never becomes the latest step (Orbax writes to a temporary
folder and renames it when complete).

Each save also stores a SHA-256 of the train state's bytes (beside the input
position, in `data`); a restore recomputes it, so a damaged step (flipped
bytes, a truncated file) is never loaded as good: `restore_state` falls back
to the newest step that restores and matches, warning with the damaged one's
number, and a training run moves damaged steps to `checkpoints_damaged/`.
"""

import hashlib
import os
import shutil
import weakref
from typing import Any, Optional

from absl import logging
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

CHECKPOINT_DIR = "checkpoints"
DAMAGED_DIR = "checkpoints_damaged"
DIGEST_KEY = "state_sha256"


class CheckpointError(RuntimeError):
  """No checkpoint restores intact, or a save failed; the message says which."""


def make_manager(
    workdir: str,
    *,
    keep: int = 3,
    every_steps: int = 1000,
    async_save: bool = True,
    read_only: bool = False,
) -> ocp.CheckpointManager:
  """A CheckpointManager over `workdir/checkpoints`."""
  options = ocp.CheckpointManagerOptions(
      max_to_keep=keep,
      save_interval_steps=every_steps,
      enable_async_checkpointing=async_save,
      read_only=read_only,
      create=not read_only,
  )
  directory = os.path.abspath(os.path.join(workdir, CHECKPOINT_DIR))
  manager = ocp.CheckpointManager(
      directory, options=options, item_names=("state", "config", "data")
  )
  if not read_only:
    _MANAGERS.add(manager)
  return manager


_MANAGERS = weakref.WeakSet()


def finish_saves() -> None:
  """Waits for every save in flight (before a failed run exits); never raises."""
  for manager in list(_MANAGERS):
    try:
      manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except
      logging.error("Checkpoint save in %s failed: %s", manager.directory, e)


def save(
    manager: ocp.CheckpointManager,
    step: int,
    state: Any,
    config: ml_collections.ConfigDict,
    data_state: Optional[dict] = None,
    force: bool = False,
) -> bool:
  """Saves state + config + the state's digest (+ input position); True if it saved."""
  check_saves(manager)
  items = {
      "state": ocp.args.StandardSave(state),
      "config": ocp.args.JsonSave(config.to_dict()),
      "data": ocp.args.JsonSave(
          {**(data_state or {}), DIGEST_KEY: state_digest(state)}
      ),
  }
  return manager.save(step, args=ocp.args.Composite(**items), force=force)


def check_saves(manager: ocp.CheckpointManager) -> None:
  """Raises CheckpointError if a background save failed since the last check."""
  try:
    manager.check_for_errors()
  except Exception as e:  # pylint: disable=broad-except  # Any failure stops the run.
    raise CheckpointError(
        f"saving a checkpoint in {manager.directory} failed: "
        f"{type(e).__name__}: {e}"
    ) from e


def state_digest(state: Any) -> str:
  """SHA-256 over the bytes of every leaf (this process's copy of each)."""
  digest = hashlib.sha256()
  for leaf in jax.tree.leaves(state):
    if isinstance(leaf, jax.Array):
      if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
      # Replicated: shard 0 holds the whole array on every process.
      leaf = leaf.addressable_data(0)
    value = np.ascontiguousarray(np.asarray(leaf))
    digest.update(str((value.shape, value.dtype.str)).encode())
    digest.update(value.tobytes())
  return digest.hexdigest()


def restore_state(
    manager: ocp.CheckpointManager,
    abstract_state: Any,
    step: Optional[int] = None,
) -> tuple[Any, int]:
  """Restores and verifies the state at `step` (default: the newest intact one).

  With `step=None` a step that fails to restore or whose digest does not
  match is skipped with a warning naming it, and the next older one is
  tried; `damaged_steps(manager)` lists those skipped. A given `step` that is
  damaged raises CheckpointError. Steps saved without a digest are restored
  and reported as unverified.
  """
  if step is not None:
    state, problem = _restore_verified(manager, abstract_state, step)
    if problem:
      raise CheckpointError(f"checkpoint step {step} is damaged: {problem}")
    return state, step
  steps = sorted(manager.all_steps(), reverse=True)
  if not steps:
    raise FileNotFoundError(f"No checkpoint in {manager.directory}")
  damaged = []
  for candidate in steps:
    state, problem = _restore_verified(manager, abstract_state, candidate)
    if not problem:
      _DAMAGED[str(manager.directory)] = damaged
      return state, candidate
    logging.warning(
        "Checkpoint step %d in %s is damaged (%s); trying the previous step.",
        candidate,
        manager.directory,
        problem,
    )
    damaged.append(candidate)
  raise CheckpointError(
      f"every checkpoint in {manager.directory} is damaged (steps "
      f"{damaged}); move them away to start afresh"
  )


# Steps the last `restore_state(step=None)` of a directory skipped as damaged.
_DAMAGED: dict = {}


def damaged_steps(manager: ocp.CheckpointManager) -> list[int]:
  """Steps newer than the one `restore_state` returned that were damaged."""
  return list(_DAMAGED.get(str(manager.directory), []))


def _restore_verified(manager, abstract_state, step: int):
  """(state, None) if `step` restores and matches its digest, else (None, why)."""
  try:
    state = manager.restore(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)),
    )["state"]
    data = {}
    if os.path.isdir(os.path.join(str(manager.directory), str(step), "data")):
      data = manager.restore(
          step, args=ocp.args.Composite(data=ocp.args.JsonRestore())
      )["data"]
  except Exception as e:  # pylint: disable=broad-except  # Any read error is damage.
    return None, f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
  expected = data.get(DIGEST_KEY)
  if expected is None:
    logging.warning(
        "Checkpoint step %d in %s has no digest (saved by an older avself): "
        "restored unverified.",
        step,
        manager.directory,
    )
    return state, None
  if state_digest(state) != expected:
    return None, "the state's SHA-256 differs from the one saved with it"
  return state, None


def move_damaged(manager: ocp.CheckpointManager, steps: list[int]) -> None:
  """Moves damaged step folders to DAMAGED_DIR beside the checkpoints (process 0).

  A resumed run saves those step numbers again, which Orbax refuses while
  the old folders exist; moving (not deleting) keeps them for inspection.
  """
  if not steps:
    return
  directory = str(manager.directory)
  if jax.process_index() == 0:
    target = os.path.join(os.path.dirname(directory), DAMAGED_DIR)
    os.makedirs(target, exist_ok=True)
    for step in steps:
      dst = os.path.join(target, str(step))
      if os.path.exists(dst):
        shutil.rmtree(dst)
      shutil.move(os.path.join(directory, str(step)), dst)
      logging.warning("Moved damaged checkpoint step %d to %s", step, dst)
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

    multihost_utils.sync_global_devices("avself_move_damaged")
  manager.reload()


def restore_data_state(
    manager: ocp.CheckpointManager, step: int
) -> Optional[dict]:
  """The input pipeline position saved with `step`, or None."""
  try:
    restored = manager.restore(
        step, args=ocp.args.Composite(data=ocp.args.JsonRestore())
    )
  except (FileNotFoundError, KeyError, ValueError):
    return None
  data = dict(restored.get("data") or {})
  data.pop(DIGEST_KEY, None)
  return data or None


def load_config(
    workdir: str, step: Optional[int] = None
) -> tuple[ml_collections.ConfigDict, int]:
  """The config stored with a checkpoint (default: the latest)."""
  manager = make_manager(workdir, read_only=True)
  step = manager.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(
        f"No checkpoint in {os.path.join(workdir, CHECKPOINT_DIR)}; train first "
        "with `python -m avself.main --config=... --workdir=...`."
    )
  restored = manager.restore(
      step, args=ocp.args.Composite(config=ocp.args.JsonRestore())
  )
  return ml_collections.ConfigDict(restored["config"]), step


def abstract_like(tree: Any) -> Any:
  """ShapeDtypeStructs (with shardings) of a concrete or abstract pytree."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(
          x.shape, x.dtype, sharding=getattr(x, "sharding", None)
      ),
      tree,
  )
