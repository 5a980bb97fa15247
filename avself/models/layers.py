"""Small pieces shared by the audio-visual models: width scaling, heads, pooling."""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any

# Every BatchNorm in the zoo uses these (Flax momentum 0.9 == PyTorch's 0.1).
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def scaled(filters: int, width: float) -> int:
    """Channel count under a width multiplier: max(1, round(filters * width))."""
    return max(1, int(round(filters * width)))


def l2_normalize(x: jnp.ndarray, axis: int = -1, eps: float = 1e-12) -> jnp.ndarray:
    """Divides x by its L2 norm along `axis` (safe at zero)."""
    sq = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
    # max() rather than +eps: exactly unit norm for any non-degenerate vector.
    return x * jnp.reciprocal(jnp.sqrt(jnp.maximum(sq, eps)))


def _bin_edges(size: int, bins: int) -> list[tuple[int, int]]:
    """Bin i spans [floor(i*size/bins), ceil((i+1)*size/bins)), as torch's AdaptiveMaxPool."""
    return [(i * size // bins, -(-(i + 1) * size // bins)) for i in range(bins)]


def adaptive_max_pool(x: jnp.ndarray, out_hw: tuple[int, int]) -> jnp.ndarray:
    """Max over near-equal bins, [B, H, W, C] -> [B, out_h, out_w, C] (torch AdaptiveMaxPool2d)."""
    out_h, out_w = out_hw
    _, h, w, _ = x.shape
    # A max over a rectangle is a max over its rows then its columns, so pooling
    # each axis in turn needs out_h + out_w static slices, not out_h * out_w.
    rows = [jnp.max(x[:, a:b], axis=1) for a, b in _bin_edges(h, out_h)]
    x = jnp.stack(rows, axis=1)  # [B, out_h, W, C]
    cols = [jnp.max(x[:, :, a:b], axis=2) for a, b in _bin_edges(w, out_w)]
    return jnp.stack(cols, axis=2)  # [B, out_h, out_w, C]


@jax.custom_vjp
def global_max_pool(x: jnp.ndarray) -> jnp.ndarray:
    """Max over all positions, [B, H, W, C] -> [B, C], with an argmax gradient.

    Why not `jnp.max(x, axis=(1, 2))`: its derivative rebuilds the winning
    positions as `x == max(x)` inside the backward pass. When `x` comes from a
    BatchNorm over a batch split across devices, XLA's partitioner (jax 0.10,
    CPU, GSPMD and Shardy alike) recomputes that comparison inconsistently and
    the gradient changes with the device count (in float64 too). Saving the
    argmax in the forward pass makes 1 and 8 devices agree to rounding.
    """
    return jnp.max(x, axis=(1, 2))


def _global_max_pool_fwd(x):
    b, h, w, c = x.shape
    flat = x.reshape(b, h * w, c)
    index = jnp.argmax(flat, axis=1)  # [B, C]
    pooled = jnp.take_along_axis(flat, index[:, None, :], axis=1)[:, 0]
    return pooled, (index, x.shape)


def _global_max_pool_bwd(residual, g):
    index, shape = residual
    b, h, w, c = shape
    onehot = jax.nn.one_hot(index, h * w, axis=1, dtype=g.dtype)  # [B, HW, C]
    return ((onehot * g[:, None, :]).reshape(shape),)


global_max_pool.defvjp(_global_max_pool_fwd, _global_max_pool_bwd)


class MLPHead(nn.Module):
    """Dense -> ReLU -> Dense: the fusion head of L3-Net, the embedding heads of AVE-Net.

    Attributes:
      hidden_features: width of `fc1`.
      out_features: width of `fc2`.
      dtype: compute dtype; parameters stay float32.
    """

    hidden_features: int
    out_features: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        x = nn.Dense(self.hidden_features, dtype=self.dtype,
                     param_dtype=jnp.float32, name="fc1")(x)
        x = nn.relu(x)
        return nn.Dense(self.out_features, dtype=self.dtype,
                        param_dtype=jnp.float32, name="fc2")(x)
