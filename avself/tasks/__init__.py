"""Self-supervised tasks: one module per method, each filling in `Task`.

`train.py` imports `avself.tasks.<config.task>` and calls only the members
below, so a new method is a new file here that defines them (no registry, no
base class). `tests/test_tasks.py` checks every module against the protocol.
"""

import importlib
from typing import Any, Protocol, runtime_checkable

import flax.linen as nn
import jax
import ml_collections

# (loss, (metrics, new model state)): what `loss_fn` returns.
LossOutput = tuple[jax.Array, tuple[dict[str, jax.Array], dict[str, Any]]]


@runtime_checkable
class Task(Protocol):
  """What the train loop and the evaluators call on a task module."""

  def data_mode(self, config: ml_collections.ConfigDict) -> str:
    """The input pipeline's mode for this task (`avself.data.pipeline`).

    E.g. 'avc' (matched and mismatched pairs), 'pairs' (matched pairs only),
    'sync' (aligned and shifted clips).
    """
    ...

  def build_model(self, config: ml_collections.ConfigDict) -> nn.Module:
    """The Flax module named by `config.model`, unbound (no parameters yet)."""
    ...

  def dummy_batch(
      self, config: ml_collections.ConfigDict, batch_size: int
  ) -> dict[str, Any]:
    """Zeros shaped like a batch of `batch_size`, for init and compilation."""
    ...

  def init(self, model: nn.Module, rng: jax.Array, batch: dict) -> dict:
    """The model's variables: {'params': ..., 'batch_stats': ..., ...}."""
    ...

  def loss_fn(
      self,
      model: nn.Module,
      params: Any,
      model_state: dict[str, Any],
      batch: dict[str, Any],
      rng: jax.Array,
      train: bool,
  ) -> LossOutput:
    """(loss, (metrics, new model state)) on one batch; jitted and differentiated.

    `metrics` holds at least 'loss' and 'accuracy' (the AVC evaluator and
    the step log read them); `model_state` is every non-'params' collection
    (BatchNorm statistics), updated when `train` is True.
    """
    ...


@runtime_checkable
class WarmStartTask(Task, Protocol):
  """A task that can start from another run's variables (optional member)."""

  def warm_start(
      self, config: ml_collections.ConfigDict, params: Any, model_state: Any
  ) -> tuple[Any, Any]:
    """(params, model_state) taken from the run in `config.init_from`.

    Called by the loop on a fresh start (not on resume); returns its
    arguments unchanged when `config.init_from` is empty.
    """
    ...


@runtime_checkable
class PrepareDataTask(Task, Protocol):
  """A task whose targets are made once over the records (optional member)."""

  def prepare_data(
      self, config: ml_collections.ConfigDict, workdir: str
  ) -> ml_collections.ConfigDict:
    """The config to train with, after making what the task's data needs.

    Called by the loop once the records exist, before the model is built:
    e.g. SoundNet's teacher table, ambient sound's audio clusters (saved in
    `workdir`). Returns `config`, or a copy that points at what it made.
    """
    ...


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
