"""The input side of the train loop: this host's batches, with a resumable position."""

from typing import Optional

import jax
import numpy as np

from avself import config_lib


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
