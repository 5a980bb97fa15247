"""The VGG-style trunk of L3-Net and AVE-Net (Arandjelović & Zisserman 2017, Fig. 2).

One module serves both modalities: a 224x224x3 frame and a 257x199x1
log-spectrogram (frequency first). Four blocks of [conv3x3 -> BN -> ReLU] x2,
64/128/256/512 filters; blocks 1-3 end in a 2x2/2 max-pool; the paper's pool4
spans the whole conv4 map (28x28 for vision, 32x24 for audio), so it is a
global max-pool here.

Input normalisation: none is applied. The first conv has no bias and is followed
by BatchNorm, which makes the output invariant to the input's scale and (away
from the zero-padded border) its offset, so an input BatchNorm would add
nothing. The pipeline already maps frames to [-1, 1] and log-compresses audio.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from avself.models.layers import (
    BN_EPSILON,
    BN_MOMENTUM,
    conv_general_dilated,
    global_max_pool,
    scaled,
)

Dtype = Any

BLOCK_FILTERS = (64, 128, 256, 512)


class VGGTrunk(nn.Module):
  """VGG trunk: 4 x ([conv3x3-BN-ReLU] x2 + pool), global max-pool at the end.

  Works for any input at least 8x8 (three 2x2 'VALID' pools floor odd sizes:
  257x199 -> 32x24 at conv4, 224x224 -> 28x28).

  Attributes:
    width: multiplier on every block's filters (max(1, round(f * width))).
    dtype: compute dtype (activations); parameters stay float32.

  Returns from `__call__` a dict, activations in `dtype`:
    conv4_2_pre_relu: [B, h, w, C] output of bn4_2, before the ReLU.
    conv4_2: [B, h, w, C] after the ReLU, before the final (global) pool;
      h, w = input size / 8 (floored at each pool).
    pooled: [B, C] global max of conv4_2 (C = 512 at width 1).
  """

  width: float = 1.0
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> dict[str, jnp.ndarray]:
    x = x.astype(self.dtype)  # [B, H, W, C_in]
    for block, filters in enumerate(BLOCK_FILTERS, start=1):
      if block > 1:
        x = nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")
      for layer in (1, 2):
        # No conv bias: the BatchNorm right after it has its own.
        x = nn.Conv(
            scaled(filters, self.width),
            (3, 3),
            padding="SAME",
            use_bias=False,
            dtype=self.dtype,
            param_dtype=jnp.float32,
            conv_general_dilated=conv_general_dilated,
            name=f"conv{block}_{layer}",
        )(x)
        x = nn.BatchNorm(
            use_running_average=not train,
            momentum=BN_MOMENTUM,
            epsilon=BN_EPSILON,
            dtype=self.dtype,
            param_dtype=jnp.float32,
            name=f"bn{block}_{layer}",
        )(x)
        pre_relu = x
        x = nn.relu(x)
    return {
        "conv4_2_pre_relu": pre_relu,  # [B, h, w, C]
        "conv4_2": x,  # [B, h, w, C]
        "pooled": global_max_pool(x),  # [B, C]: pool4 over the whole map
    }


def train_flops(
    height: int, width_px: int, channels: int, width: float = 1.0
) -> int:
  """Analytic FLOPs of one train step of the trunk on one [height, width_px] input.

  Counts each multiply-add as 2 FLOPs over the 3x3 taps that fall inside the
  zero-padded input (the convention of XLA's HLO cost analysis), three convs
  per layer (forward, input gradient, kernel gradient) except the first layer,
  whose input needs no gradient. BatchNorm, ReLU and pooling are left out:
  they are under 1% of the total at width >= 0.5.
  """
  total, cin, h, w = 0, channels, height, width_px
  for block, filters in enumerate(BLOCK_FILTERS, start=1):
    if block > 1:
      h, w = h // 2, w // 2
    cout = scaled(filters, width)
    for layer in (1, 2):
      passes = 2 if (block, layer) == (1, 1) else 3
      total += passes * 2 * (3 * h - 2) * (3 * w - 2) * cin * cout
      cin = cout
  return total
