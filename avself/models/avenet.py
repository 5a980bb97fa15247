"""AVE-Net and AVOL-Net (Arandjelović & Zisserman 2018, "Objects that Sound").

AVE-Net: the L3 trunks, each followed by fc1 (128) -> ReLU -> fc2 (128) ->
L2-normalise; the Euclidean distance between the two embeddings is the only
input of a 1 -> 2 classifier (fc3), which forces the embeddings to be
comparable across modalities (cross-modal retrieval).

AVOL-Net: the same idea per image position: the vision conv4_2 map goes
through two 1x1 convs to a 128-D normalised embedding per position; its dot
product with the audio embedding is a similarity map, calibrated (a*s + b) and
max-pooled to one logit per pair (multiple-instance learning: the sound comes
from somewhere in the frame).

Embeddings, distances, similarities and logits are float32 whatever `dtype`:
they are cheap and feed losses and B x B similarity matrices.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from avself.models.layers import MLPHead, global_max_pool, l2_normalize
from avself.models.vgg import VGGTrunk

Dtype = Any


def _embed(
    trunk: nn.Module, head: nn.Module, x: jnp.ndarray, train: bool
) -> dict[str, jnp.ndarray]:
  """Trunk dict plus `embedding`: the head on the pooled feature, L2-normalised, float32."""
  out = trunk(x, train=train)
  embedding = l2_normalize(head(out["pooled"]).astype(jnp.float32))  # [B, D]
  return {**out, "embedding": embedding}


def _distance_kernel_init(key, shape, dtype=jnp.float32):
  """fc3's kernel [1, C]: +1 for 'mismatched' (class 0), -1 for 'matched' (class 1)."""
  del key
  if shape[-1] != 2:
    return jnp.zeros(shape, dtype)
  return jnp.array([[1.0, -1.0]], dtype).reshape(shape)


def _distance_bias_init(key, shape, dtype=jnp.float32):
  """fc3's bias: the two logits tie at distance sqrt(2)."""
  del key
  if shape[-1] != 2:
    return jnp.zeros(shape, dtype)
  return jnp.array([-1.0, 1.0], dtype) * jnp.sqrt(2.0).astype(dtype)


class AVENet(nn.Module):
  """Audio-visual embedding net: two trunks, two embedding heads, distance -> 2-way logits.

  Attributes:
    width: channel multiplier of both trunks (the heads keep their size).
    dtype: compute dtype of trunks and heads; parameters stay float32.
    pack_columns: the trunks' block 1 on column pairs (`vgg.VGGTrunk`).
    embed_hidden: width of each head's fc1 (128 in the paper).
    embed_dim: embedding size, fc2 (128 in the paper).
    num_classes: outputs of fc3 (2: mismatched / matched).
  """

  width: float = 1.0
  dtype: Dtype = jnp.float32
  pack_columns: bool = False
  embed_hidden: int = 128
  embed_dim: int = 128
  num_classes: int = 2

  def setup(self):
    self.vision_trunk = VGGTrunk(
        width=self.width, dtype=self.dtype, pack_columns=self.pack_columns
    )
    self.audio_trunk = VGGTrunk(
        width=self.width, dtype=self.dtype, pack_columns=self.pack_columns
    )
    self.vision_embed = MLPHead(
        self.embed_hidden, self.embed_dim, dtype=self.dtype
    )
    self.audio_embed = MLPHead(
        self.embed_hidden, self.embed_dim, dtype=self.dtype
    )
    # The paper's "fc3 1 -> 2": logits = w * d + b, kept in float32. Nothing
    # in it says which way round: from a random init it can learn
    # "matched = far" (it did on the synthetic world: retrieval by cosine
    # then ranked same-class items below chance). It starts as "matched =
    # closer than sqrt(2)" (the distance of random unit vectors), so the
    # embedding distance is the similarity retrieval uses.
    self.fc3 = nn.Dense(
        self.num_classes,
        dtype=jnp.float32,
        param_dtype=jnp.float32,
        kernel_init=_distance_kernel_init,
        bias_init=_distance_bias_init,
    )

  def __call__(
      self, image: jnp.ndarray, spectrogram: jnp.ndarray, train: bool
  ) -> dict[str, Any]:
    """image [B, H, W, 3], spectrogram [B, F, T, 1] -> logits, distance, embeddings."""
    vision = self.embed_vision(image, train=train)
    audio = self.embed_audio(spectrogram, train=train)
    v, a = vision.pop("embedding"), audio.pop("embedding")  # [B, D] each
    sq = jnp.sum(jnp.square(v - a), axis=-1)
    # max() keeps the sqrt's gradient finite when the two embeddings coincide.
    distance = jnp.sqrt(jnp.maximum(sq, 1e-12))  # [B], in [0, 2]
    logits = self.fc3(distance[:, None])  # [B, num_classes]
    return {
        "logits": logits,
        "distance": distance,
        "vision_embedding": v,
        "audio_embedding": a,
        "vision": vision,
        "audio": audio,
    }

  def embed_vision(
      self, image: jnp.ndarray, train: bool = False
  ) -> dict[str, jnp.ndarray]:
    """Vision trunk dict plus `embedding` [B, embed_dim] (unit norm, float32)."""
    return _embed(self.vision_trunk, self.vision_embed, image, train)

  def embed_audio(
      self, spectrogram: jnp.ndarray, train: bool = False
  ) -> dict[str, jnp.ndarray]:
    """Audio trunk dict plus `embedding` [B, embed_dim] (unit norm, float32)."""
    return _embed(self.audio_trunk, self.audio_embed, spectrogram, train)


class AVOLNet(nn.Module):
  """Audio-visual object localisation net: per-position similarity, calibrated, max-pooled.

  The vision head is the paper's conv5/conv6 (1x1, 128 each); a 1x1 conv is a
  Dense over channels, so `vision_embed` is the same MLPHead as AVE-Net's
  (same parameter shapes) applied to the conv4_2 map, before the final pool.

  Calibration: logit map = a * s + b with s a cosine in [-1, 1]. a starts at
  10 so the sigmoid can reach confident outputs without first having to grow
  a. b starts at -1.5 because at init the max over positions of s is ~0.15
  for any pair (measured on 8x8 and 16x16 maps, widths 1/8 and 1/2), so the
  initial logits are ~0 and the predictions start balanced, like the 50/50
  matched / mismatched pairs.

  Attributes:
    width: channel multiplier of both trunks (the heads keep their size).
    dtype: compute dtype of trunks and heads; parameters stay float32.
    pack_columns: the trunks' block 1 on column pairs (`vgg.VGGTrunk`).
    embed_hidden: width of conv5 / the audio fc1 (128 in the paper).
    embed_dim: embedding size, conv6 / the audio fc2 (128 in the paper).
    calibration_scale_init: initial a.
    calibration_bias_init: initial b.
  """

  width: float = 1.0
  dtype: Dtype = jnp.float32
  pack_columns: bool = False
  embed_hidden: int = 128
  embed_dim: int = 128
  calibration_scale_init: float = 10.0
  calibration_bias_init: float = -1.5

  def setup(self):
    self.vision_trunk = VGGTrunk(
        width=self.width, dtype=self.dtype, pack_columns=self.pack_columns
    )
    self.audio_trunk = VGGTrunk(
        width=self.width, dtype=self.dtype, pack_columns=self.pack_columns
    )
    self.vision_embed = MLPHead(
        self.embed_hidden, self.embed_dim, dtype=self.dtype
    )
    self.audio_embed = MLPHead(
        self.embed_hidden, self.embed_dim, dtype=self.dtype
    )
    self.calibration_scale = self.param(
        "calibration_scale",
        nn.initializers.constant(self.calibration_scale_init),
        (),
        jnp.float32,
    )
    self.calibration_bias = self.param(
        "calibration_bias",
        nn.initializers.constant(self.calibration_bias_init),
        (),
        jnp.float32,
    )

  def __call__(
      self, image: jnp.ndarray, spectrogram: jnp.ndarray, train: bool
  ) -> dict[str, Any]:
    """image [B, H, W, 3], spectrogram [B, F, T, 1] -> one logit per pair and its map."""
    vision = self.embed_vision(image, train=train)
    audio = self.embed_audio(spectrogram, train=train)
    v_map, a = vision.pop("embedding_map"), audio.pop("embedding")
    sim = jnp.einsum("bhwd,bd->bhw", v_map, a)  # [B, h, w], cosine in [-1, 1]
    localization_map = self.calibration_scale * sim + self.calibration_bias
    # Argmax gradient: see layers.global_max_pool.
    logit = global_max_pool(localization_map[..., None])[:, 0]  # [B]
    return {
        "logit": logit,
        "localization_map": localization_map,
        "vision_embedding_map": v_map,
        "audio_embedding": a,
        "vision": vision,
        "audio": audio,
    }

  def embed_vision(
      self, image: jnp.ndarray, train: bool = False
  ) -> dict[str, jnp.ndarray]:
    """Vision trunk dict plus `embedding_map` [B, h, w, D], unit norm per position, float32."""
    out = self.vision_trunk(image, train=train)
    v_map = self.vision_embed(out["conv4_2"]).astype(
        jnp.float32
    )  # [B, h, w, D]
    return {**out, "embedding_map": l2_normalize(v_map)}

  def embed_audio(
      self, spectrogram: jnp.ndarray, train: bool = False
  ) -> dict[str, jnp.ndarray]:
    """Audio trunk dict plus `embedding` [B, embed_dim] (unit norm, float32)."""
    return _embed(self.audio_trunk, self.audio_embed, spectrogram, train)
