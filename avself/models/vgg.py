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

Column pairs (`pack_columns`): a TPU stores an array in tiles of 128 lanes
along its last dimension, so block 1's 64-channel maps, the largest of both
trunks, cost twice their size in HBM traffic. With `pack_columns` block 1
runs on the same maps with each pair of neighbouring columns side by side in
the channels ([B, H, W, 64] viewed as [B, H, W/2, 128]): each 3x3 conv
becomes a 3x3 conv over the packed map whose kernel is assembled from the
same [3, 3, C_in, 64] parameter (twice the multiply-adds, half of them by
structural zeros), BatchNorm pools its statistics over both halves, and the
2x2 max-pool is a max over row pairs and then over the two halves. The
outputs, the variables and their names are the same as without it (to
float rounding; a tie between the two columns of a pooling window splits
its gradient between them); an odd width is padded with one zero column
that the BatchNorm statistics leave out and the pool drops.
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from avself.models.layers import (
    BN_EPSILON,
    BN_MOMENTUM,
    conv_general_dilated,
    conv_kernel,
    global_max_pool,
    scaled,
)

Dtype = Any

BLOCK_FILTERS = (64, 128, 256, 512)

_CONV_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def pack_kernel(kernel: jnp.ndarray) -> jnp.ndarray:
  """[3, 3, C_in, C_out] kernel -> [3, 3, 2 C_in, 2 C_out] on column pairs.

  Packed column j holds columns 2j (first half of the channels) and 2j+1
  (second half). Output half `ho` of packed column j reads input half `hi`
  of packed column j + kw - 1, which is the original tap at column offset
  dx = 2 (kw - 1) + hi - ho; offsets outside [-1, 1] are zero.
  """
  taps, cin, cout = kernel.shape[1:]
  zero = jnp.zeros((kernel.shape[0], cin, cout), kernel.dtype)

  def tap(kw, hi, ho):
    dx = 2 * (kw - 1) + hi - ho
    return kernel[:, dx + 1] if abs(dx) <= taps // 2 else zero

  return jnp.stack(
      [
          jnp.concatenate(
              [
                  jnp.concatenate([tap(kw, hi, ho) for ho in (0, 1)], -1)
                  for hi in (0, 1)
              ],
              -2,
          )
          for kw in range(3)
      ],
      axis=1,
  )


class PackedConv(nn.Module):
  """A 3x3 'SAME' conv, no bias, on a map packed in column pairs (see above).

  Holds the same `kernel` as `nn.Conv(features, (3, 3))`, initialised alike.
  """

  features: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    kernel = conv_kernel(self, (3, 3, x.shape[-1] // 2, self.features))
    packed = pack_kernel(kernel).astype(self.dtype)
    x = x.astype(self.dtype)
    return conv_general_dilated(
        x,
        packed,
        (1, 1),
        "SAME",
        dimension_numbers=jax.lax.conv_dimension_numbers(
            x.shape, packed.shape, _CONV_DIMENSIONS
        ),
    )


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
  pack_columns: bool = False

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> dict[str, jnp.ndarray]:
    bn = functools.partial(
        nn.BatchNorm,
        use_running_average=not train,
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        dtype=self.dtype,
        param_dtype=jnp.float32,
    )
    x = x.astype(self.dtype)  # [B, H, W, C_in]
    blocks = list(enumerate(BLOCK_FILTERS, start=1))
    if self.pack_columns:
      (_, filters), blocks = blocks[0], blocks[1:]
      x = self._packed_block1(x, scaled(filters, self.width), bn)
    for block, filters in blocks:
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
        x = bn(name=f"bn{block}_{layer}")(x)
        pre_relu = x
        x = nn.relu(x)
      if block < len(BLOCK_FILTERS):
        x = nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")
    return {
        "conv4_2_pre_relu": pre_relu,  # [B, h, w, C]
        "conv4_2": x,  # [B, h, w, C]
        "pooled": global_max_pool(x),  # [B, C]: pool4 over the whole map
    }

  def _packed_block1(self, x, filters: int, bn) -> jnp.ndarray:
    """Block 1 and its pool on column pairs: [B, H, W, C] -> [B, H/2, W/2, filters]."""
    b, h, w, c = x.shape
    if w % 2:  # One zero column makes the width even.
      x = jnp.pad(x, ((0, 0), (0, 0), (0, 1), (0, 0)))
    x = x.reshape(b, h, -1, 2 * c)  # [B, H, W/2, 2 C]
    # Which (packed column, half) are real columns: [1, 1, W/2, 2, 1].
    valid = (np.arange(2 * x.shape[2]) < w).reshape(1, 1, -1, 2, 1)
    valid = None if valid.all() else valid
    for layer in (1, 2):
      x = PackedConv(filters, dtype=self.dtype, name=f"conv1_{layer}")(x)
      halves = x.reshape(*x.shape[:3], 2, filters)  # Statistics over both.
      halves = nn.relu(bn(name=f"bn1_{layer}")(halves, mask=valid))
      if valid is not None:  # The padding column stays zero for the next conv.
        halves = jnp.where(valid, halves, 0)
      x = halves.reshape(x.shape)
    x = nn.max_pool(x, (2, 1), strides=(2, 1), padding="VALID")  # Row pairs.
    x = jnp.maximum(x[..., :filters], x[..., filters:])  # Column pairs.
    return x[:, :, : w // 2]  # A 'VALID' pool drops an odd last column.


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
