"""The optimiser: learning-rate schedule, Adam/AdamW/SGD, clipping and held groups."""

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import optax


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
