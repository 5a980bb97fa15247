"""Audio-visual correspondence (L3-Net): does this frame go with this sound?

Pairs come from the pipeline's `avc` mode: a frame with an overlapping 1 s of
its own audio (label 1) or with 1 s from another video (label 0), 50/50.
The same loss trains AVE-Net when `config.model.name == 'avenet'`.
"""

import jax.numpy as jnp
import numpy as np
import optax

from avself import config_lib
from avself.data import audio as audio_lib


def data_mode(config) -> str:
  del config
  return "avc"


def build_model(config):
  """L3-Net or AVE-Net as named by `config.model.name`."""
  m = config.model
  dtype = config_lib.compute_dtype(m)
  if m.name == "l3":
    from avself.models import l3  # pylint: disable=g-import-not-at-top

    return l3.L3Net(width=m.width, dtype=dtype)
  if m.name == "avenet":
    from avself.models import avenet  # pylint: disable=g-import-not-at-top

    return avenet.AVENet(width=m.width, dtype=dtype)
  raise ValueError(
      f"config.model.name={m.name!r}: the avc task takes 'l3' or 'avenet'"
  )


def input_shapes(config) -> dict:
  """Per-example shapes of the model inputs."""
  d = config.data
  num_samples = int(round(d.sample_rate * d.audio_seconds))
  freq, time = audio_lib.spectrogram_shape(d.spectrogram, num_samples)
  return {"image": (d.image_size, d.image_size, 3), "audio": (freq, time, 1)}


def dummy_batch(config, batch_size: int) -> dict:
  """Zeros shaped like a batch, for init and compilation."""
  shapes = input_shapes(config)
  batch = {k: np.zeros((batch_size, *s), np.float32) for k, s in shapes.items()}
  batch["label"] = np.zeros((batch_size,), np.int32)
  return batch


def init(model, rng, batch):
  return model.init(
      {"params": rng}, batch["image"], batch["audio"], train=False
  )


def forward(model, variables, batch, train: bool):
  """Applies the model; returns (outputs, new model state)."""
  if train:
    return model.apply(
        variables,
        batch["image"],
        batch["audio"],
        train=True,
        mutable=["batch_stats"],
    )
  return model.apply(variables, batch["image"], batch["audio"], train=False), {
      k: v for k, v in variables.items() if k != "params"
  }


def loss_fn(model, params, model_state, batch, rng, train: bool):
  """Softmax cross-entropy over {mismatched, matched}."""
  del rng
  outputs, new_state = forward(
      model, {"params": params, **model_state}, batch, train
  )
  logits = outputs["logits"].astype(jnp.float32)  # [B, 2]
  labels = batch["label"].astype(jnp.int32)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
  accuracy = (jnp.argmax(logits, -1) == labels).mean()
  return loss, ({"loss": loss, "accuracy": accuracy}, new_state)
