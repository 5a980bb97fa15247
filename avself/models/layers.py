"""Small pieces shared by the audio-visual models: width scaling, heads, pooling."""

import contextlib
import functools
import os
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


def l2_normalize(
    x: jnp.ndarray, axis: int = -1, eps: float = 1e-12
) -> jnp.ndarray:
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


def conv_kernel(module: nn.Module, shape: tuple[int, ...]) -> jnp.ndarray:
  """Declares `nn.Conv`'s kernel on `module`: its name, initialiser and float32.

  For convs computed another way than `nn.Conv` (stacked time taps, column
  pairs) whose variables must stay interchangeable with it.
  """
  return module.param(
      "kernel", nn.initializers.lecun_normal(), shape, jnp.float32
  )


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
    x = nn.Dense(
        self.hidden_features,
        dtype=self.dtype,
        param_dtype=jnp.float32,
        name="fc1",
    )(x)
    x = nn.relu(x)
    return nn.Dense(
        self.out_features, dtype=self.dtype, param_dtype=jnp.float32, name="fc2"
    )(x)


# ### Convolution with a fast weight gradient on CPU ###########################
#
# XLA's CPU backend computes a stride-1 conv's kernel gradient as one large
# "convolution" whose window is the whole feature map; on full-size L3 that is
# ~10x slower than the forward pass (benchmarks/train_throughput.py: 9.1 s vs
# 0.7 s for the 64->64 conv at 224x224, batch 16). Written as kh * kw matrix
# products of shifted inputs with the output gradient (unrolled: 2.2 s; in a
# loop, to keep one shifted copy alive), full-size L3 trains 2.5x faster.
# GPUs and TPUs have good kernels for the plain gradient, so this is used on
# CPU only unless asked for (AVSELF_CONV_WGRAD=taps|xla|auto).


def _conv_nhwc(x, w, pads, precision=None):
  return jax.lax.conv_general_dilated(
      x,
      w,
      (1, 1),
      pads,
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
      precision=precision,
  )


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _tapped_conv(x, w, pads, precision):
  return _conv_nhwc(x, w, pads, precision)


def _tapped_conv_fwd(x, w, pads, precision):
  return _conv_nhwc(x, w, pads, precision), (x, w)


def _tapped_conv_bwd(pads, precision, residuals, dy):
  x, w = residuals
  _, input_vjp = jax.vjp(lambda x_: _conv_nhwc(x_, w, pads, precision), x)
  (dx,) = input_vjp(dy)
  kh, kw, ci, co = w.shape
  h, wd = dy.shape[1:3]
  xp = jnp.pad(x, ((0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)))
  dy2 = dy.reshape(-1, co)

  def tap(t, dw):  # one shifted copy of x alive at a time, not kh * kw
    shifted = jax.lax.dynamic_slice(
        xp, (0, t // kw, t % kw, 0), (x.shape[0], h, wd, ci)
    )
    g = jax.lax.dot_general(
        shifted.reshape(-1, ci),
        dy2,
        (((0,), (0,)), ((), ())),
        precision=precision,
        preferred_element_type=jnp.float32,
    )
    return dw.at[t].set(g)

  dw = jax.lax.fori_loop(
      0, kh * kw, tap, jnp.zeros((kh * kw, ci, co), jnp.float32)
  )
  return dx, dw.reshape(kh, kw, ci, co).astype(w.dtype)


_tapped_conv.defvjp(_tapped_conv_fwd, _tapped_conv_bwd)


_WGRAD_OVERRIDE: list = []  # set by plain_conv_gradients()


@contextlib.contextmanager
def plain_conv_gradients():
  """Traces inside use XLA's own conv gradient (e.g. to count model FLOPs:
  cost analyses count a loop's body once)."""
  _WGRAD_OVERRIDE.append("xla")
  try:
    yield
  finally:
    _WGRAD_OVERRIDE.pop()


def _use_taps() -> bool:
  mode = (_WGRAD_OVERRIDE or [os.environ.get("AVSELF_CONV_WGRAD", "auto")])[-1]
  if mode not in ("auto", "taps", "xla"):
    raise ValueError(
        f"AVSELF_CONV_WGRAD must be auto, taps or xla, not {mode!r}"
    )
  return mode == "taps" or (mode == "auto" and jax.default_backend() == "cpu")


def conv_general_dilated(
    lhs,
    rhs,
    window_strides,
    padding,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count=1,
    batch_group_count=1,
    precision=None,
    preferred_element_type=None,
):
  """`lax.conv_general_dilated`, with the tapped kernel gradient where it applies.

  Applies to 2-D, stride-1, undilated, ungrouped NHWC/HWIO convolutions (every
  conv of the VGG trunks) on CPU; anything else goes to lax unchanged.
  """
  simple = (
      lhs.ndim == 4
      and tuple(window_strides) == (1, 1)
      and all(
          d in (None, 1)
          for d in (lhs_dilation or (1,)) + (rhs_dilation or (1,))
      )
      and feature_group_count == 1
      and batch_group_count == 1
      and preferred_element_type is None
      and dimension_numbers is not None
      and tuple(getattr(dimension_numbers, "lhs_spec", ())) == (0, 3, 1, 2)
      and tuple(getattr(dimension_numbers, "rhs_spec", ())) == (3, 2, 0, 1)
      and tuple(getattr(dimension_numbers, "out_spec", ())) == (0, 3, 1, 2)
  )
  if not simple or not _use_taps():
    return jax.lax.conv_general_dilated(
        lhs,
        rhs,
        window_strides,
        padding,
        lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count,
        batch_group_count=batch_group_count,
        precision=precision,
        preferred_element_type=preferred_element_type,
    )
  if isinstance(padding, str):
    padding = jax.lax.padtype_to_pads(
        lhs.shape[1:3], rhs.shape[:2], (1, 1), padding
    )
  pads = tuple(tuple(int(v) for v in p) for p in padding)
  return _tapped_conv(lhs, rhs, pads, precision)
