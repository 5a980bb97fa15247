"""In-batch contrastive learning on AVE-Net's towers (beyond the papers).

AVE-Net's binary AVC loss shows each frame one mismatched sound per step.
Here every positive pair (a frame and an overlapping 1 s of its own audio,
the pipeline's `pairs` mode) meets the B - 1 other sounds of the global batch
as negatives, and every sound the B - 1 other frames:

  infonce  symmetric cross-entropy over the B x B cosine similarities divided
           by a learnable temperature (CLIP, Radford et al. 2021, Fig. 3).
  sigmoid  an independent binary term for each of the B^2 pairs, logit =
           similarity / temperature + bias, both learnable (SigLIP, Zhai et
           al. 2023, Alg. 1); no softmax over the batch.

The similarity matrix spans the GLOBAL batch: the embeddings are sharded on
`data` under jit and XLA gathers them for the [B, D] x [D, B] product, so no
all_gather appears here and the loss does not depend on the device count.

False negatives: the negatives are simply the other examples of the batch.
On the synthetic world (10 classes) about a tenth of them show the same class
as the positive, and with `data.samples_per_video` > 1 two windows of the same
video can share a batch; both are pushed apart like true negatives. That caps
how tightly a class can cluster (contrast this with the probe, which wants
classes together) and grows with the batch / number-of-classes ratio. The
`pairs` mode carries no video id, so same-video negatives cannot be masked.
"""

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from avself import config_lib
from avself.models import avenet
from avself.tasks import avc

LOSSES = ("infonce", "sigmoid")


def default_options() -> ml_collections.ConfigDict:
  """`config.contrastive`: loss, temperature (init and clip range) and sigmoid bias."""
  return ml_collections.ConfigDict(
      dict(
          loss="infonce",
          temperature_init=0.07,  # CLIP's; SigLIP starts at 0.1 (log t' = log 10).
          min_temperature=0.01,  # CLIP clips the logit scale at 100.
          max_temperature=1.0,
          bias_init=-10.0,  # SigLIP's, for the sigmoid loss (unused by infonce).
      )
  )


def options(config) -> ml_collections.ConfigDict:
  """The defaults overridden by whatever `config.contrastive` sets."""
  opts = default_options()
  opts.update(dict(config.get("contrastive") or {}))
  if opts.loss not in LOSSES:
    raise ValueError(
        f"config.contrastive.loss={opts.loss!r}: use one of {LOSSES}"
    )
  return opts


class ContrastiveNet(nn.Module):
  """AVE-Net's trunks and embedding heads plus the loss's temperature and bias.

  The loss options live on the module because the train loop hands the task
  only the model: `loss_fn` reads them from there.

  Attributes:
    width: channel multiplier of both trunks.
    dtype: compute dtype of the towers; the embeddings and the two scalars are float32.
    pack_columns: the trunks' block 1 on column pairs (`vgg.VGGTrunk`).
    loss: 'infonce' or 'sigmoid'.
    temperature_init: initial temperature (stored as its log).
    min_temperature: lower clip of the temperature.
    max_temperature: upper clip of the temperature.
    bias_init: initial bias of the sigmoid loss (a parameter infonce leaves alone).
  """

  width: float = 1.0
  dtype: Any = jnp.float32
  pack_columns: bool = False
  loss: str = "infonce"
  temperature_init: float = 0.07
  min_temperature: float = 0.01
  max_temperature: float = 1.0
  bias_init: float = -10.0

  def setup(self):
    self.towers = avenet.AVENet(
        width=self.width, dtype=self.dtype, pack_columns=self.pack_columns
    )
    # Log-parametrised so that gradient steps are relative and t stays positive.
    self.log_temperature = self.param(
        "log_temperature",
        nn.initializers.constant(math.log(self.temperature_init)),
        (),
        jnp.float32,
    )
    self.bias = self.param(
        "bias", nn.initializers.constant(self.bias_init), (), jnp.float32
    )

  def __call__(self, image, spectrogram, train: bool) -> dict:
    """image [B, H, W, 3], spectrogram [B, F, T, 1] -> unit embeddings [B, D] and the scalars."""
    return {
        "vision_embedding": self.embed_vision(image, train)["embedding"],
        "audio_embedding": self.embed_audio(spectrogram, train)["embedding"],
        "temperature": temperature(
            self.log_temperature, self.min_temperature, self.max_temperature
        ),
        "bias": self.bias,
    }

  def embed_vision(self, image, train: bool = False) -> dict:
    """Vision trunk dict plus `embedding` [B, D] (unit norm)."""
    return self.towers.embed_vision(image, train=train)

  def embed_audio(self, spectrogram, train: bool = False) -> dict:
    """Audio trunk dict plus `embedding` [B, D] (unit norm)."""
    return self.towers.embed_audio(spectrogram, train=train)


def similarities(vision: jnp.ndarray, audio: jnp.ndarray) -> jnp.ndarray:
  """Cosines [B, B]: row i = frame i against every sound (inputs unit norm)."""
  # HIGHEST: at t = 0.07 a bf16-pass matmul's error (~1e-2) would move logits by ~0.1.
  return jnp.einsum(
      "id,jd->ij", vision, audio, precision=jax.lax.Precision.HIGHEST
  )


def temperature(
    log_temperature, min_temperature: float, max_temperature: float
):
  """exp(log t) clipped to [min, max] (no gradient once clipped, as CLIP's clamp)."""
  return jnp.exp(
      jnp.clip(
          log_temperature, math.log(min_temperature), math.log(max_temperature)
      )
  )


def infonce_loss(vision, audio, temp) -> jnp.ndarray:
  """Symmetric InfoNCE: mean of frame->sound and sound->frame cross-entropies."""
  logits = similarities(vision, audio) / temp  # [B, B]
  labels = jnp.arange(logits.shape[0])
  frame_to_sound = optax.softmax_cross_entropy_with_integer_labels(
      logits, labels
  )
  sound_to_frame = optax.softmax_cross_entropy_with_integer_labels(
      logits.T, labels
  )
  return 0.5 * (frame_to_sound.mean() + sound_to_frame.mean())


def sigmoid_loss(vision, audio, temp, bias) -> jnp.ndarray:
  """SigLIP: -sum_ij log sigmoid(z_ij (s_ij / t + b)) / B, z = +1 on the diagonal, else -1."""
  logits = similarities(vision, audio) / temp + bias  # [B, B]
  signs = 2.0 * jnp.eye(logits.shape[0], dtype=logits.dtype) - 1.0
  return -jnp.sum(jax.nn.log_sigmoid(signs * logits)) / logits.shape[0]


def in_batch_accuracy(vision, audio) -> jnp.ndarray:
  """How often the own partner is the nearest of the B candidates (both directions)."""
  sim = similarities(vision, audio)
  labels = jnp.arange(sim.shape[0])
  return 0.5 * (
      (jnp.argmax(sim, 1) == labels).mean()
      + (jnp.argmax(sim, 0) == labels).mean()
  )


# ### The task interface ######################################################


def data_mode(config) -> str:
  del config
  return "pairs"


def build_model(config) -> ContrastiveNet:
  """AVE-Net towers with the loss's learnable scalars."""
  m = config.model
  if m.name != "avenet":
    raise ValueError(
        f"config.model.name={m.name!r}: the contrastive task trains the "
        "'avenet' towers"
    )
  opts = options(config)
  return ContrastiveNet(
      width=m.width,
      dtype=config_lib.compute_dtype(m),
      pack_columns=config_lib.packs_columns(m),
      loss=opts.loss,
      temperature_init=opts.temperature_init,
      min_temperature=opts.min_temperature,
      max_temperature=opts.max_temperature,
      bias_init=opts.bias_init,
  )


def dummy_batch(config, batch_size: int) -> dict:
  """Zeros shaped like a `pairs` batch."""
  batch = avc.dummy_batch(config, batch_size)
  batch["class_label"] = np.zeros((batch_size,), np.int32)
  return batch


def init(model, rng, batch):
  return model.init(
      {"params": rng}, batch["image"], batch["audio"], train=False
  )


def loss_fn(model, params, model_state, batch, rng, train: bool):
  """`model.loss` over the global batch, plus in-batch retrieval metrics."""
  del rng
  outputs, new_state = avc.forward(
      model, {"params": params, **model_state}, batch, train
  )
  v, a = outputs["vision_embedding"], outputs["audio_embedding"]  # [B, D] each
  temp = outputs["temperature"]
  if model.loss == "infonce":
    loss = infonce_loss(v, a, temp)
  else:
    loss = sigmoid_loss(v, a, temp, outputs["bias"])
  sim = similarities(v, a)
  eye = jnp.eye(sim.shape[0], dtype=bool)
  metrics = {
      "loss": loss,
      "accuracy": in_batch_accuracy(v, a),
      "temperature": temp,
      "positive_similarity": jnp.sum(jnp.where(eye, sim, 0.0)) / sim.shape[0],
      "negative_similarity": jnp.sum(jnp.where(eye, 0.0, sim))
      / max(sim.size - sim.shape[0], 1),
  }
  if model.loss == "sigmoid":
    metrics["bias"] = outputs["bias"]
  return loss, (metrics, new_state)
