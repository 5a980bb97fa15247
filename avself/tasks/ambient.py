"""Ambient sound as supervision (Owens, Wu, McDermott, Freeman & Torralba 2016).

A vision net learns to predict, from one frame, the cluster of the sound
around it: sound-texture statistics of the training clips' audio
(`avself.data.texture`), k-means clustered once per run. The targets come
through the pipeline's `frame_targets` mode (`steps` = 1: the frame at the
window's centre); the clusters are made by `prepare_data` into
WORKDIR/ambient (centres, scaler, options and per-frame targets) unless
`data.frame_targets.path` names a table already. The net never sees labels.
"""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from avself import config_lib


def data_mode(config) -> str:
  del config
  return "frame_targets"


def build_model(config):
  """AmbientNet over `model.num_clusters` clusters."""
  from avself.models import ambient  # pylint: disable=g-import-not-at-top

  m = config.model
  return ambient.AmbientNet(
      num_clusters=int(m.num_clusters),
      width=m.width,
      dtype=config_lib.compute_dtype(m),
      pack_columns=config_lib.packs_columns(m),
  )


def dummy_batch(config, batch_size: int) -> dict:
  """Zeros shaped like a batch, for init and compilation."""
  size = config.data.image_size
  target = np.zeros((batch_size, 1, int(config.model.num_clusters)), np.float32)
  target[..., 0] = 1.0
  return {
      "image": np.zeros((batch_size, size, size, 3), np.float32),
      "target": target,
  }


def init(model, rng, batch):
  return model.init({"params": rng}, batch["image"], train=False)


def loss_fn(model, params, model_state, batch, rng, train: bool):
  """Softmax cross-entropy against the frame's (one-hot) sound cluster."""
  del rng
  variables = {"params": params, **model_state}
  if train:
    outputs, new_state = model.apply(
        variables, batch["image"], train=True, mutable=["batch_stats"]
    )
  else:
    outputs = model.apply(variables, batch["image"], train=False)
    new_state = model_state
  logits = outputs["logits"]  # [B, K]
  target = batch["target"][:, 0].astype(jnp.float32)  # [B, K]
  loss = optax.softmax_cross_entropy(logits, target).mean()
  accuracy = (jnp.argmax(logits, -1) == jnp.argmax(target, -1)).mean()
  return loss, ({"loss": loss, "accuracy": accuracy}, new_state)


def prepare_data(config, workdir: str):
  """Clusters the training audio into WORKDIR/ambient once (seeded); points the data at it."""
  from avself.data import sampling  # pylint: disable=g-import-not-at-top
  from avself.data import targets  # pylint: disable=g-import-not-at-top
  from avself.data import texture  # pylint: disable=g-import-not-at-top

  if int(config.data.frame_targets.steps) != 1:
    raise config_lib.ConfigError(
        "the ambient task predicts one frame's cluster: "
        "data.frame_targets.steps must be 1"
    )
  config = ml_collections.ConfigDict(config.to_dict())
  d, a = config.data, config.ambient
  if not d.frame_targets.path:
    out_dir = os.path.join(os.path.abspath(workdir), "ambient")
    table = os.path.join(out_dir, f"{d.train_split}.targets.npz")
    if jax.process_index() == 0 and not os.path.exists(table):
      texture.build_targets(
          d.path,
          out_dir,
          split=d.train_split,
          num_clusters=int(config.model.num_clusters),
          audio_seconds=a.audio_seconds,
          hop_seconds=a.hop_seconds,
          num_bands=a.num_bands,
          seed=a.seed,
      )
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

      multihost_utils.sync_global_devices("avself_ambient_clusters")
    d.frame_targets.path = table
  rows = targets.load_table(sampling.frame_targets_path(d))["rows"]
  if rows.shape[1] != int(config.model.num_clusters):
    raise config_lib.ConfigError(
        f"the cluster table has {rows.shape[1]} clusters but "
        f"model.num_clusters={config.model.num_clusters}"
    )
  return config
