"""Orbax checkpoints that describe themselves.

Each step folder holds the train state (`state`) and the run's config
(`config`, JSON), so `avself.evaluate` and `avself.embed` can rebuild the
model from the checkpoint alone. Saves are asynchronous; a save that was
killed half-way never becomes the latest step (Orbax writes to a temporary
folder and renames it when complete).
"""

import os
from typing import Any, Optional

import jax
import ml_collections
import orbax.checkpoint as ocp

CHECKPOINT_DIR = "checkpoints"


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
  return ocp.CheckpointManager(
      directory, options=options, item_names=("state", "config", "data")
  )


def save(
    manager: ocp.CheckpointManager,
    step: int,
    state: Any,
    config: ml_collections.ConfigDict,
    data_state: Optional[dict] = None,
    force: bool = False,
) -> bool:
  """Saves state + config (+ input pipeline position); True if it saved."""
  items = {
      "state": ocp.args.StandardSave(state),
      "config": ocp.args.JsonSave(config.to_dict()),
  }
  if data_state is not None:
    items["data"] = ocp.args.JsonSave(data_state)
  return manager.save(step, args=ocp.args.Composite(**items), force=force)


def restore_state(
    manager: ocp.CheckpointManager,
    abstract_state: Any,
    step: Optional[int] = None,
) -> tuple[Any, int]:
  """Restores the state at `step` (default: latest) with the abstract's shardings."""
  step = manager.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f"No checkpoint in {manager.directory}")
  restored = manager.restore(
      step,
      args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)),
  )
  return restored["state"], step


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
  return restored.get("data")


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
