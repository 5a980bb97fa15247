"""Cross-modal embeddings for retrieval (Surís et al. 2018, ECCV workshops).

The paper maps precomputed YouTube-8M features of a video's frames and of its
audio into one space with a cosine embedding loss over matched / mismatched
pairs (Sec. 3.2), regularised by a classifier SHARED by both embeddings that
predicts the video's class labels (Sec. 3.3). Here the towers are AVE-Net's
trunks + embedding heads trained end to end on the pipeline's `avc` pairs:

  cosine      1 - cos(v, a) for a matched pair, max(0, cos(v, a) - margin)
              for a mismatched one (PyTorch's CosineEmbeddingLoss).
  classes     softmax cross-entropy of the shared classifier on the vision
              embedding (target `class_label`, the frame's video) and on the
              audio embedding (its own video's class: `audio_class_label`
              when the batch has it, else `class_label` on matched pairs
              only, where frame and sound share a video).
  loss        cosine_weight * cosine + classification_weight * (classes_v + classes_a)

Examples whose class is -1 (unlabelled videos) drop out of the class terms;
the cosine term uses every pair.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from avself import config_lib
from avself.models import avenet
from avself.tasks import avc


def default_options() -> ml_collections.ConfigDict:
  """`config.crossmodal`: classes, margin and the two loss weights."""
  return ml_collections.ConfigDict(
      dict(
          num_classes=10,
          margin=0.1,
          cosine_weight=1.0,
          classification_weight=0.1,
      )
  )


def options(config) -> ml_collections.ConfigDict:
  """The defaults overridden by whatever `config.crossmodal` sets."""
  opts = default_options()
  opts.update(dict(config.get("crossmodal") or {}))
  return opts


class CrossModalNet(nn.Module):
  """AVE-Net's towers plus one classifier shared by the vision and audio embeddings.

  The loss options live on the module because the train loop hands the task
  only the model: `loss_fn` reads them from there.

  Attributes:
    num_classes: outputs of the shared classifier.
    width: channel multiplier of both trunks.
    dtype: compute dtype of the towers; embeddings and logits are float32.
    pack_columns: the trunks' block 1 on column pairs (`vgg.VGGTrunk`).
    margin: cosine below which a mismatched pair costs nothing.
    cosine_weight: weight of the cosine embedding loss.
    classification_weight: weight of the classification regulariser.
  """

  num_classes: int
  width: float = 1.0
  dtype: Any = jnp.float32
  pack_columns: bool = False
  margin: float = 0.1
  cosine_weight: float = 1.0
  classification_weight: float = 0.1

  def setup(self):
    self.towers = avenet.AVENet(
        width=self.width, dtype=self.dtype, pack_columns=self.pack_columns
    )
    self.classifier = nn.Dense(
        self.num_classes, dtype=jnp.float32, param_dtype=jnp.float32
    )

  def __call__(self, image, spectrogram, train: bool) -> dict:
    """image [B, H, W, 3], spectrogram [B, F, T, 1] -> embeddings [B, D] and class logits [B, K]."""
    v = self.embed_vision(image, train)["embedding"]
    a = self.embed_audio(spectrogram, train)["embedding"]
    return {
        "vision_embedding": v,
        "audio_embedding": a,
        "vision_class_logits": self.classifier(v),
        "audio_class_logits": self.classifier(a),
    }

  def embed_vision(self, image, train: bool = False) -> dict:
    """Vision trunk dict plus `embedding` [B, D] (unit norm)."""
    return self.towers.embed_vision(image, train=train)

  def embed_audio(self, spectrogram, train: bool = False) -> dict:
    """Audio trunk dict plus `embedding` [B, D] (unit norm)."""
    return self.towers.embed_audio(spectrogram, train=train)


def cosine_embedding_loss(vision, audio, matched, margin: float) -> jnp.ndarray:
  """Mean over pairs of 1 - cos (matched) or max(0, cos - margin) (mismatched)."""
  cos = jnp.sum(vision * audio, -1) / jnp.maximum(
      jnp.linalg.norm(vision, axis=-1) * jnp.linalg.norm(audio, axis=-1), 1e-12
  )  # [B]
  per_pair = jnp.where(matched, 1.0 - cos, jnp.maximum(0.0, cos - margin))
  return per_pair.mean()


def masked_cross_entropy(logits, labels) -> jnp.ndarray:
  """Softmax cross-entropy averaged over the examples with a label >= 0 (0 if none)."""
  keep = labels >= 0
  ce = optax.softmax_cross_entropy_with_integer_labels(
      logits, jnp.maximum(labels, 0)
  )
  return jnp.sum(jnp.where(keep, ce, 0.0)) / jnp.maximum(jnp.sum(keep), 1)


def audio_class_labels(batch) -> jnp.ndarray:
  """The audio's own class: `audio_class_label`, else `class_label` where matched, else -1."""
  if "audio_class_label" in batch:
    return batch["audio_class_label"].astype(jnp.int32)
  return jnp.where(batch["label"] == 1, batch["class_label"], -1).astype(
      jnp.int32
  )


def _masked_accuracy(logits, labels) -> jnp.ndarray:
  keep = labels >= 0
  hits = (jnp.argmax(logits, -1) == labels) & keep
  return jnp.sum(hits) / jnp.maximum(jnp.sum(keep), 1)


# ### The task interface ######################################################


def data_mode(config) -> str:
  del config
  return "avc"


def build_model(config) -> CrossModalNet:
  """AVE-Net towers plus the shared classifier."""
  m = config.model
  if m.name != "avenet":
    raise ValueError(
        f"config.model.name={m.name!r}: the crossmodal task trains the "
        "'avenet' towers"
    )
  opts = options(config)
  return CrossModalNet(
      num_classes=opts.num_classes,
      width=m.width,
      dtype=config_lib.compute_dtype(m),
      pack_columns=config_lib.packs_columns(m),
      margin=opts.margin,
      cosine_weight=opts.cosine_weight,
      classification_weight=opts.classification_weight,
  )


def dummy_batch(config, batch_size: int) -> dict:
  """Zeros shaped like an `avc` batch."""
  batch = avc.dummy_batch(config, batch_size)
  batch["class_label"] = np.zeros((batch_size,), np.int32)
  return batch


def init(model, rng, batch):
  return model.init(
      {"params": rng}, batch["image"], batch["audio"], train=False
  )


def loss_fn(model, params, model_state, batch, rng, train: bool):
  """Weighted cosine embedding loss + shared-classifier cross-entropies."""
  del rng
  outputs, new_state = avc.forward(
      model, {"params": params, **model_state}, batch, train
  )
  v, a = outputs["vision_embedding"], outputs["audio_embedding"]
  matched = batch["label"] == 1
  cosine = cosine_embedding_loss(v, a, matched, model.margin)
  vision_labels = batch["class_label"].astype(jnp.int32)
  audio_labels = audio_class_labels(batch)
  classes_v = masked_cross_entropy(
      outputs["vision_class_logits"], vision_labels
  )
  classes_a = masked_cross_entropy(outputs["audio_class_logits"], audio_labels)
  loss = model.cosine_weight * cosine + model.classification_weight * (
      classes_v + classes_a
  )
  cos = jnp.sum(v * a, -1)
  # A pair is called matched when its cosine clears half the margin's way to 1.
  accuracy = ((cos > (1.0 + model.margin) / 2) == matched).mean()
  metrics = {
      "loss": loss,
      "cosine_loss": cosine,
      "classification_loss": classes_v + classes_a,
      "accuracy": accuracy,
      "vision_class_accuracy": _masked_accuracy(
          outputs["vision_class_logits"], vision_labels
      ),
      "audio_class_accuracy": _masked_accuracy(
          outputs["audio_class_logits"], audio_labels
      ),
  }
  return loss, (metrics, new_state)
