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


NEGATIVES = ("pair", "all")


def negatives(config) -> str:
  """`config.avc.negatives`: 'pair' (if unset; the paper's) or 'all'."""
  value = (config.get("avc") or {}).get("negatives", "pair")
  if value not in NEGATIVES:
    raise ValueError(f"config.avc.negatives={value!r}: use one of {NEGATIVES}")
  return value


def build_model(config):
  """L3-Net or AVE-Net as named by `config.model.name`."""
  m = config.model
  dtype = config_lib.compute_dtype(m)
  if m.name == "l3":
    from avself.models import l3  # pylint: disable=g-import-not-at-top

    # The loss reads its option from the module (the loop hands it the model).
    return l3.L3Net(
        width=m.width,
        dtype=dtype,
        negatives=negatives(config),
        pack_columns=config_lib.packs_columns(m),
    )
  if negatives(config) != "pair":
    raise ValueError("config.avc.negatives='all' takes model.name 'l3'")
  if m.name == "avenet":
    from avself.models import avenet  # pylint: disable=g-import-not-at-top

    return avenet.AVENet(
        width=m.width, dtype=dtype, pack_columns=config_lib.packs_columns(m)
    )
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
  metrics = {"loss": loss, "accuracy": accuracy}
  if getattr(model, "negatives", "pair") == "all":
    loss = all_pairs_loss(model, params, outputs, labels)
    metrics = dict(metrics, pair_loss=metrics["loss"], loss=loss)
  return loss, (metrics, new_state)


def all_pairs_targets(labels: jnp.ndarray) -> jnp.ndarray:
  """1 where audio i and image j share a video, as far as the pairing knows.

  The pipeline shows example i its own frame (label 1) or example i ^ 1's
  (label 0), so audio i's frame is image i when label[i] is 1 and image
  i ^ 1 when label[i ^ 1] is 0; every other image is taken for another
  video's (two windows of one video in a batch, about one per example with
  the demo's shuffle buffer, are counted as negatives).
  """
  b = labels.shape[0]
  own = jnp.arange(b)
  targets = jnp.zeros((b, b), jnp.float32)
  targets = targets.at[own, own].set(labels.astype(jnp.float32))
  partner = own ^ 1
  return targets.at[own, partner].set(1.0 - labels[partner].astype(jnp.float32))


def all_pairs_loss(model, params, outputs, labels) -> jnp.ndarray:
  """AVC on all B x B (audio, image) pairs of a batch: B - 1 negatives each.

  The trunks run once per example as for the pairs; only the small fusion
  head runs B x B times. Positives and negatives weigh half each, as in
  the pair loss's 50/50 batches.
  """
  logits = model.apply(
      {"params": params},
      outputs["vision"]["pooled"],
      outputs["audio"]["pooled"],
      method=model.fuse_all_pairs,
  )  # [B, B, 2]
  targets = all_pairs_targets(labels)
  ce = optax.softmax_cross_entropy_with_integer_labels(
      logits, targets.astype(jnp.int32)
  )
  positive = jnp.sum(ce * targets) / jnp.maximum(jnp.sum(targets), 1.0)
  negative = jnp.sum(ce * (1 - targets)) / jnp.maximum(
      jnp.sum(1 - targets), 1.0
  )
  return 0.5 * (positive + negative)
