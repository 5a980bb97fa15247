"""Frozen-feature extraction over a finite split, shared by probes and retrieval.

The pipeline's `clips` mode yields every `audio_seconds` window of every
video once (the last batch padded, `mask` = 0 there). A jitted function maps
each global batch to per-example feature arrays; padding is dropped on the
host. With several hosts, each host reads its own shards, so the number of
batches can differ: hosts agree on the maximum and pad with empty batches,
then every host gathers everyone's features.
"""

import functools
from typing import Callable

import jax
import numpy as np

from avself import sharding

# Keys the `clips` mode emits besides the model inputs.
_META = ("label", "video_index", "window_start", "mask")


def make_feature_fn(fn: Callable, model, mesh):
  """Jits `fn(model, variables, batch) -> {name: [B, ...]}` for sharded batches."""
  return jax.jit(
      functools.partial(fn, model),
      in_shardings=(sharding.replicated(mesh), sharding.batch_sharding(mesh)),
      out_shardings=sharding.batch_sharding(mesh),
  )


def _local_batches(
    data_config, split: str, local_batch: int, mode: str = "clips"
):
  """This host's padded batches, and an all-mask-0 batch of the same shapes.

  The filler pads hosts with fewer batches than others (a host can even have
  none: a small split shared record by record over many hosts).
  """
  from avself.data import pipeline  # pylint: disable=g-import-not-at-top

  ds = pipeline.make_dataset(
      data_config,
      mode=mode,
      split=split,
      batch_size=local_batch,
      train=False,
      seed=0,
  )
  filler = {
      k: np.zeros(s.shape, s.dtype.as_numpy_dtype)
      for k, s in ds.element_spec.items()
  }
  return list(ds.as_numpy_iterator()), filler


def _agree_on_count(n: int) -> int:
  """The largest batch count over hosts."""
  if jax.process_count() == 1:
    return n
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

  return int(np.max(multihost_utils.process_allgather(np.int32(n))))


def extract(
    feature_fn,
    variables,
    data_config,
    split: str,
    global_batch: int,
    mesh,
    keep_inputs: tuple = (),
) -> dict:
  """Features of every window of `split`: `{name: [N, ...]}` plus label,
  video_index (made unique across hosts), window_start and any `keep_inputs`."""
  local_batch = sharding.local_batch_size(global_batch)
  batches, filler = _local_batches(data_config, split, local_batch)
  total = _agree_on_count(len(batches))
  out: dict = {}
  for i in range(total):
    batch = batches[i] if i < len(batches) else filler
    inputs = {k: v for k, v in batch.items() if k not in _META}
    feats = feature_fn(variables, sharding.to_global(inputs, mesh))
    keep = batch["mask"].astype(bool)
    for name, value in feats.items():
      out.setdefault(name, []).append(sharding.local_rows(value)[keep])
    for name in ("label", "video_index", "window_start", *keep_inputs):
      out.setdefault(name, []).append(np.asarray(batch[name])[keep])
  local = {k: np.concatenate(v, axis=0) for k, v in out.items()}
  # video_index counts this host's videos: make it unique across hosts.
  local["video_index"] = (
      local["video_index"].astype(np.int64) * jax.process_count()
      + jax.process_index()
  )
  return _gather_hosts(local)


def _gather_hosts(local: dict) -> dict:
  """Every host's rows, concatenated (identity on one host)."""
  if jax.process_count() == 1:
    return local
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

  counts = multihost_utils.process_allgather(np.int32(len(local["label"])))
  most = int(np.max(counts))
  gathered = {}
  for k, v in local.items():
    padded = np.zeros((most, *v.shape[1:]), v.dtype)
    padded[: len(v)] = v
    all_rows = multihost_utils.process_allgather(padded)  # [P, most, ...]
    gathered[k] = np.concatenate(
        [all_rows[p, : counts[p]] for p in range(len(counts))]
    )
  return gathered


def per_video_mean(
    values: np.ndarray, video_index: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
  """Means of `values` rows per video (a clip's score = mean over its windows)."""
  videos, inverse = np.unique(video_index, return_inverse=True)
  sums = np.zeros((len(videos), *values.shape[1:]), np.float64)
  np.add.at(sums, inverse, values)
  counts = np.bincount(inverse, minlength=len(videos)).reshape(
      -1, *([1] * (values.ndim - 1))
  )
  return sums / counts, videos
