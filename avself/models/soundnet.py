"""SoundNet (Aytar, Vondrick & Torralba 2016): a 1-D conv net on raw audio.

The 8-layer net of the paper (Fig. 1, Table 6): conv1-conv7, each 1-D conv ->
BatchNorm -> ReLU, with max-pools after conv1, conv2 and conv5, and conv8 that
predicts the teachers' class distributions at a few time steps:

  layer    filters  kernel  stride  padding     pool after
  conv1    16       64      2       32          8
  conv2    32       32      2       16          8
  conv3    64       16      2       8
  conv4    128      8       2       4
  conv5    256      4       2       2           4
  conv6    512      4       2       2
  conv7    1024     4       2       2
  conv8    K        8       2       0 (valid)

For 20 s at 22,050 Hz (441,000 samples, the length of the paper's public
code) conv7 has 15 steps and conv8 4: one teacher distribution every 5 s.
`pool_sizes` and `conv8_kernel` shrink the net's time span for short clips
(the synthetic world's 2 s windows).

Transfer features: the paper feeds conv5-conv7 activations to an SVM; here
each of `transfer_layers` (after the ReLU) is max-pooled over time and they
are concatenated (256 + 512 + 1024 = 1792-D at width 1).
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from avself.models.layers import BN_EPSILON, BN_MOMENTUM, scaled

Dtype = Any

# (filters, kernel, stride) of conv1..conv7.
CONVS = (
    (16, 64, 2),
    (32, 32, 2),
    (64, 16, 2),
    (128, 8, 2),
    (256, 4, 2),
    (512, 4, 2),
    (1024, 4, 2),
)
POOLED_AFTER = (1, 2, 5)  # conv layers followed by a max-pool
PAPER_POOL_SIZES = (8, 8, 4)


def output_steps(
    num_samples: int, pool_sizes=PAPER_POOL_SIZES, conv8_kernel: int = 8
) -> int:
  """conv8's time steps for `num_samples` of audio (< 1: too short for the net)."""
  length = int(num_samples)
  pools = dict(zip(POOLED_AFTER, pool_sizes))
  for layer, (_, kernel, stride) in enumerate(CONVS, start=1):
    length = (length + 2 * (kernel // 2) - kernel) // stride + 1
    if layer in pools:
      length //= pools[layer]
  return (length - conv8_kernel) // 2 + 1


class SoundNetTrunk(nn.Module):
  """conv1-conv7 on a raw waveform [B, N] or [B, N, 1].

  Attributes:
    width: multiplier on the filters.
    pool_sizes: the max-pools after conv1, conv2 and conv5 (paper: 8, 8, 4).
    transfer_layers: layers whose time-max-pooled activations are the
      transfer features.
    dtype: compute dtype; parameters stay float32.
  """

  width: float = 1.0
  pool_sizes: tuple = PAPER_POOL_SIZES
  transfer_layers: tuple = ("conv5", "conv6", "conv7")
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, waveform: jnp.ndarray, train: bool) -> dict:
    """Activations of conv1..conv7 ([B, T_l, C_l], after the ReLU) and `transfer` [B, D] float32."""
    x = waveform.astype(self.dtype)
    if x.ndim == 2:
      x = x[..., None]  # [B, N, 1]
    pools = dict(zip(POOLED_AFTER, self.pool_sizes))
    out = {}
    for layer, (filters, kernel, stride) in enumerate(CONVS, start=1):
      x = nn.Conv(
          scaled(filters, self.width),
          (kernel,),
          strides=(stride,),
          padding=[(kernel // 2, kernel // 2)],
          use_bias=False,  # the BatchNorm right after it has its own
          dtype=self.dtype,
          param_dtype=jnp.float32,
          name=f"conv{layer}",
      )(x)
      x = nn.BatchNorm(
          use_running_average=not train,
          momentum=BN_MOMENTUM,
          epsilon=BN_EPSILON,
          dtype=self.dtype,
          param_dtype=jnp.float32,
          name=f"bn{layer}",
      )(x)
      x = nn.relu(x)
      out[f"conv{layer}"] = x  # [B, T_l, C_l]
      if layer in pools:
        size = pools[layer]
        x = nn.max_pool(x, (size,), strides=(size,), padding="VALID")
    out["transfer"] = jnp.concatenate(
        [out[name].max(axis=1) for name in self.transfer_layers], axis=-1
    ).astype(jnp.float32)
    return out


class SoundNet(nn.Module):
  """SoundNet-8: the trunk and conv8, the teachers' class logits over time.

  Attributes:
    teacher_classes: each teacher's class count; conv8 outputs their sum
      (the teachers' classes, concatenated; a softmax per teacher).
    width, pool_sizes, transfer_layers, dtype: as `SoundNetTrunk`.
    conv8_kernel: conv8's kernel (paper: 8).
  """

  teacher_classes: tuple
  width: float = 1.0
  pool_sizes: tuple = PAPER_POOL_SIZES
  conv8_kernel: int = 8
  transfer_layers: tuple = ("conv5", "conv6", "conv7")
  dtype: Dtype = jnp.float32

  def setup(self):
    self.audio_trunk = SoundNetTrunk(
        width=self.width,
        pool_sizes=tuple(self.pool_sizes),
        transfer_layers=tuple(self.transfer_layers),
        dtype=self.dtype,
    )
    self.conv8 = nn.Conv(
        sum(self.teacher_classes),
        (self.conv8_kernel,),
        strides=(2,),
        padding="VALID",
        dtype=self.dtype,
        param_dtype=jnp.float32,
    )

  def __call__(self, waveform: jnp.ndarray, train: bool) -> dict:
    """waveform [B, N(, 1)] -> logits [B, T8, sum(teacher_classes)] float32, trunk dict."""
    trunk = self.audio_trunk(waveform, train=train)
    steps = trunk["conv7"].shape[1]
    if steps < self.conv8_kernel:
      raise ValueError(
          f"conv7 has {steps} time steps, fewer than conv8's kernel "
          f"({self.conv8_kernel}): the audio window is too short for the net "
          "(lengthen data.audio_seconds or shrink model.pool_sizes)"
      )
    logits = self.conv8(trunk["conv7"]).astype(jnp.float32)
    return {"logits": logits, "audio": trunk}

  def embed_audio(self, waveform: jnp.ndarray, train: bool = False) -> dict:
    """The trunk's dict (with `transfer`) for waveform [B, N(, 1)]."""
    return self.audio_trunk(waveform, train=train)
