"""Device mesh and the host <-> global array boundary.

One mesh axis, `data`: the batch is split over it, parameters are replicated.
Under `jax.jit` every reduction over the batch (the loss mean, BatchNorm
statistics) is global, so no `axis_name` plumbing is needed.
"""

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def make_mesh(devices=None) -> Mesh:
  """A 1-D `data` mesh over all (global) devices."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), ("data",))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over `data`."""
  return NamedSharding(mesh, P("data"))


def replicated(mesh: Mesh) -> NamedSharding:
  """Fully replicated on every device."""
  return NamedSharding(mesh, P())


def local_batch_size(global_batch_size: int) -> int:
  """This host's share of the global batch; validates divisibility."""
  devices, processes = jax.device_count(), jax.process_count()
  if global_batch_size % devices:
    raise ValueError(
        f"config.batch_size={global_batch_size} is not divisible by the "
        f"{devices} devices in the mesh; pick a multiple of {devices}."
    )
  return global_batch_size // processes


def to_global(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Each host's numpy slice -> one global jax.Array per key."""
  sharding = batch_sharding(mesh)
  return {
      k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
      for k, v in batch.items()
  }


def to_host(tree: Any) -> Any:
  """Fully replicated arrays -> numpy on every host (no cross-host gather)."""
  return jax.tree.map(lambda x: np.asarray(jax.device_get(x)), tree)


def local_rows(x: jax.Array) -> np.ndarray:
  """This host's rows of a batch-sharded array, in order."""
  shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
  return np.concatenate([np.asarray(s.data) for s in shards], axis=0)
