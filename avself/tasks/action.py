"""Action recognition from video, fine-tuned from a Multisensory sync checkpoint.

Labelled clips come from the pipeline's `sync` mode, which gives `video`
[B, N, S, S, 3] and `class_label` (the record's label) and adds nothing new to
the pipeline; the audio it also gives is not used. The model is
`multisensory.ActionClassifier`: the sync net's video branch, 3D ResNet stages
(`config.model.trunk`: 'fusion', the sync net's own fusion stages fed silence,
or 'fresh' ones) and a softmax classifier. With `config.init_from` = a sync
run's workdir, `warm_start` copies that run's `video_branch` (and `fusion`)
parameters and BatchNorm statistics in before the first step
(`multisensory.init_from_sync`); with `init_from = ''` the same network trains
from scratch (the baseline).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from avself import config_lib


def data_mode(config) -> str:
  del config
  return "sync"


def build_model(config):
  """ActionClassifier with config.model.num_classes outputs."""
  from avself.models import multisensory  # pylint: disable=g-import-not-at-top

  m = config.model
  return multisensory.ActionClassifier(
      num_classes=int(m.num_classes),
      width=m.width,
      trunk=m.get("trunk", "fresh"),
      conv5_stride=m.get("conv5_stride", 2),
      conv4_strides=tuple(m.get("conv4_strides", (2, 2, 2))),
      stage_kernel=tuple(m.get("stage_kernel", (3, 3, 3))),
      dtype=config_lib.compute_dtype(m),
      remat=bool(m.get("remat", False)),
  )


def dummy_batch(config, batch_size: int) -> dict:
  """Zeros shaped like a batch, for init and compilation."""
  d = config.data
  return {
      "video": np.zeros(
          (batch_size, d.sync.num_frames, d.image_size, d.image_size, 3),
          np.float32,
      ),
      "class_label": np.zeros((batch_size,), np.int32),
  }


def init(model, rng, batch):
  return model.init({"params": rng}, batch["video"], train=False)


def loss_fn(model, params, model_state, batch, rng, train: bool):
  """Softmax cross-entropy over the action classes; top-1 accuracy."""
  del rng
  variables = {"params": params, **model_state}
  if train:
    outputs, new_state = model.apply(
        variables, batch["video"], train=True, mutable=["batch_stats"]
    )
  else:
    outputs, new_state = (
        model.apply(variables, batch["video"], train=False),
        model_state,
    )
  logits = outputs["logits"].astype(jnp.float32)  # [B, K]
  labels = batch["class_label"].astype(jnp.int32)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
  accuracy = (jnp.argmax(logits, -1) == labels).mean()
  return loss, ({"loss": loss, "accuracy": accuracy}, new_state)


def warm_start(config, params, model_state):
  """The video branch (and fusion stages, trunk='fusion') of the sync run in
  `config.init_from` (no-op when it is empty)."""
  workdir = config.get("init_from") or ""
  if not workdir:
    return params, model_state
  from avself.models import multisensory  # pylint: disable=g-import-not-at-top
  from avself.tasks import sync  # pylint: disable=g-import-not-at-top

  sync_config, step, sync_variables = sync.restore_run(workdir)
  if float(sync_config.model.width) != float(config.model.width):
    raise ValueError(
        f"config.model.width={config.model.width} but the sync run in "
        f"{workdir} has width {sync_config.model.width}"
    )
  if config.model.get("trunk", "fresh") == "fusion":
    for key, default in (("conv5_stride", 2), ("conv4_strides", (2, 2, 2))):
      mine, theirs = config.model.get(key, default), sync_config.model.get(
          key, default
      )
      if tuple(np.atleast_1d(mine)) != tuple(np.atleast_1d(theirs)):
        raise ValueError(
            f"config.model.{key}={mine} but the sync run in {workdir} has "
            f"{theirs}: trunk='fusion' copies its stages, strides included"
        )
  variables = multisensory.init_from_sync(
      jax.device_get({"params": params, **model_state}), sync_variables
  )
  copied = [n for n in multisensory.SYNC_TRANSFERRED if n in params]
  logging.info(
      "%s initialised from %s (step %d)", " and ".join(copied), workdir, step
  )
  return variables["params"], {
      k: v for k, v in variables.items() if k != "params"
  }
