"""The train state: its fields, a fresh one, and one rebuilt from a checkpoint."""

from typing import Any, Callable, Optional

import flax
import jax
import jax.numpy as jnp

from avself import checkpoint as ckpt_lib
from avself import optimizer
from avself import sharding
from avself.tasks import get_task


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  model_state: Any  # BatchNorm statistics and other non-trained collections.
  opt_state: Any


def state_initializer(task, model, tx, config) -> Callable:
  """`rng -> TrainState`: fresh parameters, model state and optimiser state."""
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

  return init


def create_train_state(task, model, tx, config, rng, mesh) -> TrainState:
  """Initialises parameters directly into their (replicated) shardings."""
  init = state_initializer(task, model, tx, config)
  return jax.jit(init, out_shardings=sharding.replicated(mesh))(rng)


def restore(workdir: str, step: Optional[int] = None, mesh=None):
  """Rebuilds (config, task, model, state) from a checkpoint alone.

  The model is rebuilt from the config stored with the checkpoint, so a
  checkpoint describes itself (evaluate, embed and localize start here).
  """
  config, _ = ckpt_lib.load_config(workdir, step)
  mesh = mesh or sharding.make_mesh()
  task = get_task(config.task)
  model = task.build_model(config)
  tx = optimizer.make_optimizer(config)
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
      task,
      model,
      optimizer.make_optimizer(config),
      config,
      jax.random.key(seed),
      mesh,
  )
  return task, model, state
