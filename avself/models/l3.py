"""L3-Net (Arandjelović & Zisserman 2017, "Look, Listen and Learn").

Two VGG trunks (vision on a frame, audio on 1 s of log-spectrogram), their
512-D pooled features concatenated and fused by fc1 (128) -> ReLU -> fc2 (2):
do this frame and this sound come from the same video?

Heads return float32 (logits, transfer features) so losses and linear probes
run in full precision whatever the trunk's compute dtype.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from avself.models.layers import MLPHead, adaptive_max_pool
from avself.models import vgg
from avself.models.vgg import VGGTrunk

Dtype = Any

__all__ = [
    "L3Net",
    "adaptive_max_pool",
    "audio_transfer_features",
    "vision_transfer_features",
]

# Transfer-feature grids of the paper's Sec. 4 (conv4_2 max-pooled).
AUDIO_TRANSFER_GRID = (4, 3)  # (frequency, time): 4 * 3 * 512 = 6144-D
VISION_TRANSFER_GRID = (4, 4)  # (rows, columns): 4 * 4 * 512 = 8192-D


def _pool_and_flatten(x: jnp.ndarray, grid: tuple[int, int]) -> jnp.ndarray:
  """Adaptive max-pool to `grid`, flattened grid-row-major, channel fastest."""
  x = adaptive_max_pool(x, grid)  # [B, gh, gw, C]
  # Index (i * gw + j) * C + c: the NHWC / Keras (OpenL3) order, not PyTorch's
  # channel-major flatten.
  return x.reshape(x.shape[0], -1).astype(jnp.float32)


def audio_transfer_features(trunk_out: dict[str, jnp.ndarray]) -> jnp.ndarray:
  """Audio transfer features: conv4_2 before ReLU, max-pooled to 4x3 -> [B, 6144] float32."""
  return _pool_and_flatten(trunk_out["conv4_2_pre_relu"], AUDIO_TRANSFER_GRID)


def vision_transfer_features(trunk_out: dict[str, jnp.ndarray]) -> jnp.ndarray:
  """Vision transfer features: conv4_2 after ReLU, max-pooled to 4x4 -> [B, 8192] float32."""
  return _pool_and_flatten(trunk_out["conv4_2"], VISION_TRANSFER_GRID)


class L3Net(nn.Module):
  """Audio-visual correspondence net: two trunks and a late fusion classifier.

  Attributes:
    width: channel multiplier of both trunks (the fusion head keeps its size).
    dtype: compute dtype; parameters stay float32.
    fusion_hidden: width of the fusion's fc1 (128 in the paper).
    num_classes: fusion outputs (2: mismatched / matched).
    negatives: the AVC loss's negatives ('pair' or 'all'; not the net's).
    pack_columns: the trunks' block 1 on column pairs (`vgg.VGGTrunk`).
  """

  width: float = 1.0
  dtype: Dtype = jnp.float32
  fusion_hidden: int = 128
  num_classes: int = 2
  # The AVC loss's negatives ('pair' or 'all', `avself.tasks.avc`): a loss
  # option kept here because the train loop hands the task only the model.
  negatives: str = "pair"
  pack_columns: bool = False

  def setup(self):
    self.vision_trunk = VGGTrunk(
        width=self.width, dtype=self.dtype, pack_columns=self.pack_columns
    )
    self.audio_trunk = VGGTrunk(
        width=self.width, dtype=self.dtype, pack_columns=self.pack_columns
    )
    self.fusion = MLPHead(
        self.fusion_hidden, self.num_classes, dtype=self.dtype
    )

  def __call__(
      self, image: jnp.ndarray, spectrogram: jnp.ndarray, train: bool
  ) -> dict[str, Any]:
    """image [B, H, W, 3], spectrogram [B, F, T, 1] -> logits [B, num_classes], trunk dicts."""
    vision = self.vision_trunk(image, train=train)
    audio = self.audio_trunk(spectrogram, train=train)
    # Vision first: [B, 2C] (1024 at width 1).
    fused = jnp.concatenate([vision["pooled"], audio["pooled"]], axis=-1)
    logits = self.fusion(fused).astype(jnp.float32)  # [B, num_classes]
    return {"logits": logits, "vision": vision, "audio": audio}

  def fuse_all_pairs(
      self, vision_pooled: jnp.ndarray, audio_pooled: jnp.ndarray
  ) -> jnp.ndarray:
    """Fusion logits [B, B, num_classes] of every (audio i, image j) pair.

    vision_pooled, audio_pooled [B, C] from the trunks; [i, i] are the
    logits `__call__` gives for pair i.
    """
    b = audio_pooled.shape[0]
    fused = jnp.concatenate(
        [
            jnp.broadcast_to(vision_pooled[None], (b, *vision_pooled.shape)),
            jnp.broadcast_to(audio_pooled[:, None], (b, *audio_pooled.shape)),
        ],
        axis=-1,
    )
    return self.fusion(fused).astype(jnp.float32)

  def embed_vision(
      self, image: jnp.ndarray, train: bool = False
  ) -> dict[str, jnp.ndarray]:
    """Vision trunk dict for image [B, H, W, 3]."""
    return self.vision_trunk(image, train=train)

  def embed_audio(
      self, spectrogram: jnp.ndarray, train: bool = False
  ) -> dict[str, jnp.ndarray]:
    """Audio trunk dict for spectrogram [B, F, T, 1]."""
    return self.audio_trunk(spectrogram, train=train)


def train_flops_per_example(
    image_size: int,
    spectrogram_shape: tuple[int, int],
    width: float = 1.0,
    fusion_hidden: int = 128,
    num_classes: int = 2,
) -> int:
  """Analytic FLOPs of one L3-Net train step per example (see vgg.train_flops).

  Full size (224x224 frame, 257x199 spectrogram): 119.7 GFLOP.
  """
  pooled = 2 * vgg.scaled(vgg.BLOCK_FILTERS[-1], width)
  fusion = 3 * 2 * (pooled * fusion_hidden + fusion_hidden * num_classes)
  return (
      vgg.train_flops(image_size, image_size, 3, width)
      + vgg.train_flops(*spectrogram_shape, 1, width)
      + fusion
  )
