"""The ambient-sound net (Owens et al. 2016): a frame -> its sound's cluster.

The vision trunk is L3-Net's (`vgg.VGGTrunk`), so its frozen features go
through the same linear probe as L3-Net's vision features; a linear layer on
the pooled 512-D features gives the audio-cluster logits.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from avself.models.vgg import VGGTrunk

Dtype = Any


class AmbientNet(nn.Module):
  """Vision trunk and a linear classifier over `num_clusters` sound clusters.

  Attributes:
    num_clusters: the k of the audio statistics' k-means.
    width: channel multiplier of the trunk.
    dtype: compute dtype; parameters stay float32.
    pack_columns: the trunks' block 1 on column pairs (`vgg.VGGTrunk`).
  """

  num_clusters: int
  width: float = 1.0
  dtype: Dtype = jnp.float32
  pack_columns: bool = False

  def setup(self):
    self.vision_trunk = VGGTrunk(
        width=self.width, dtype=self.dtype, pack_columns=self.pack_columns
    )
    self.classifier = nn.Dense(
        self.num_clusters, dtype=self.dtype, param_dtype=jnp.float32
    )

  def __call__(self, image: jnp.ndarray, train: bool) -> dict:
    """image [B, H, W, 3] -> logits [B, num_clusters] float32 and the trunk dict."""
    vision = self.vision_trunk(image, train=train)
    logits = self.classifier(vision["pooled"]).astype(jnp.float32)
    return {"logits": logits, "vision": vision}

  def embed_vision(self, image: jnp.ndarray, train: bool = False) -> dict:
    """Vision trunk dict for image [B, H, W, 3]."""
    return self.vision_trunk(image, train=train)
