"""AVOL-Net: audio-visual correspondence that localises (Arandjelović & Zisserman 2018).

Same pairs as AVC (the pipeline's `avc` mode: matched / mismatched, 50/50),
but the net gives ONE logit per pair, the max over image positions of the
calibrated similarity map, trained with a sigmoid cross-entropy (Sec. 5:
multiple-instance learning, the sound comes from somewhere in the frame).
The map itself is the localisation output; `evaluators/av_localization.py`
scores where its peak falls.
"""

import jax.numpy as jnp
import optax

from avself import config_lib
from avself.tasks import avc


def data_mode(config) -> str:
  del config
  return "avc"


def build_model(config):
  """AVOL-Net of `config.model.width` and dtype."""
  from avself.models import avenet  # pylint: disable=g-import-not-at-top

  m = config.model
  if m.name != "avol":
    raise ValueError(
        f"config.model.name={m.name!r}: the avol task trains 'avol'"
    )
  return avenet.AVOLNet(
      width=m.width,
      dtype=config_lib.compute_dtype(m),
      pack_columns=config_lib.packs_columns(m),
  )


def dummy_batch(config, batch_size: int) -> dict:
  """Zeros shaped like an `avc` batch."""
  return avc.dummy_batch(config, batch_size)


def init(model, rng, batch):
  return model.init(
      {"params": rng}, batch["image"], batch["audio"], train=False
  )


def loss_fn(model, params, model_state, batch, rng, train: bool):
  """Sigmoid cross-entropy of the max-pooled logit against matched (1) / mismatched (0)."""
  del rng
  outputs, new_state = avc.forward(
      model, {"params": params, **model_state}, batch, train
  )
  logit = outputs["logit"].astype(jnp.float32)  # [B]
  labels = batch["label"].astype(jnp.float32)
  loss = optax.sigmoid_binary_cross_entropy(logit, labels).mean()
  accuracy = ((logit > 0) == (labels > 0.5)).mean()
  return loss, ({"loss": loss, "accuracy": accuracy}, new_state)
