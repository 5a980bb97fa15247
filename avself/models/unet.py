"""On/off-screen source separation u-net (Owens & Efros 2018).

A u-net on the mixture's spectrogram, conditioned on the multisensory net's
features at three time scales, predicts two spectrograms: the sound of what is
on screen and of everything else.

Input: `spectrogram` [B, F, T, C]. Channel 0 is the log-magnitude; any further
channels (the authors add the STFT phase, scaled to [-1, 1], as channel 1) are
read the same way and are the caller's choice. Outputs are the predicted
log-magnitude spectrograms [B, F, T, 1] themselves, in the units of channel 0
(not masks): the loss is L1 between log-magnitudes. The authors squash the
output with tanh into a fixed dB range; ours stays linear because the pipeline's
log-spectrograms have no fixed range. Phase is not predicted: resynthesis uses
the mixture's phase.

Any F, T works: the input is zero-padded (at the high-frequency / late end) to
a multiple of 2^depth and the outputs are cropped back.

Video conditioning (the authors' `merge_level`): each sync feature map
[B, t, h, w, C] is averaged over space -> [B, t, C]; resized linearly to the
spectrogram's T frames (both span the same clip); edge-padded like the
spectrogram; average-pooled to the encoder level's time resolution;
batch-normalised if `video_norm`; tiled over frequency and concatenated to
that level's channels (which then also feed the skip connection). Resizing
once at full resolution, then pooling, keeps the video aligned with the
real, unpadded time frames at every depth.
"""

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from avself.models.layers import BN_EPSILON, BN_MOMENTUM, scaled

Dtype = Any

__all__ = ["SeparationUNet", "l1_loss", "pit_l1_loss", "video_context"]


def video_context(
    scale: jnp.ndarray, num_frames: int, padded_frames: int, level_frames: int
) -> jnp.ndarray:
  """Sync features [B, t, h, w, C] -> [B, level_frames, C], aligned to the padded spectrogram."""
  x = jnp.mean(scale.astype(jnp.float32), axis=(2, 3))  # [B, t, C]
  b, _, c = x.shape
  x = jax.image.resize(x, (b, num_frames, c), method="linear")  # [B, T, C]
  x = jnp.pad(x, ((0, 0), (0, padded_frames - num_frames), (0, 0)), mode="edge")
  pool = padded_frames // level_frames
  return x.reshape(b, level_frames, pool, c).mean(axis=2)  # [B, T_l, C]


class SeparationUNet(nn.Module):
  """u-net: stride-2 conv encoder (BN, LeakyReLU 0.2), transposed-conv decoder, skips.

  Attributes:
    encoder_features: filters of the encoder levels, each halving F and T
      (before `width`); depth = its length. The decoder mirrors it.
    merge_levels: encoder levels (0-based) after which scale1, scale2, scale3
      are concatenated; the authors merge after their 3rd, 4th and 5th convs.
    width: channel multiplier.
    video_norm: BatchNorm (per channel, over batch and time) on each pooled
      feature sequence before it is tiled and concatenated: the sync net's
      features come at whatever scale and offset its training left them,
      the encoder's activations are batch-normalised; this puts the two on
      one footing, so that what differs between videos is not drowned by
      what they share. False: the features as they come (the authors').
    dtype: compute dtype; parameters stay float32; outputs are float32.
  """

  encoder_features: Sequence[int] = (64, 128, 256, 512, 512, 512, 512)
  merge_levels: Sequence[int] = (2, 3, 4)
  width: float = 1.0
  video_norm: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(
      self, spectrogram: jnp.ndarray, scales: Sequence[jnp.ndarray], train: bool
  ) -> dict[str, jnp.ndarray]:
    """spectrogram [B, F, T, C], 3 maps [B, t, h, w, C_i] -> on/off_screen [B, F, T, 1]."""
    if len(scales) != len(self.merge_levels):
      raise ValueError(
          f"{len(scales)} feature maps for merge levels {self.merge_levels}"
      )
    b, f, t, _ = spectrogram.shape
    depth = len(self.encoder_features)
    multiple = 2**depth
    fp, tp = -(-f // multiple) * multiple, -(-t // multiple) * multiple
    x = jnp.pad(spectrogram, ((0, 0), (0, fp - f), (0, tp - t), (0, 0)))
    x = x.astype(self.dtype)  # [B, Fp, Tp, C]

    def norm(y, name):
      return nn.BatchNorm(
          use_running_average=not train,
          momentum=BN_MOMENTUM,
          epsilon=BN_EPSILON,
          dtype=self.dtype,
          param_dtype=jnp.float32,
          name=name,
      )(y)

    skips = []
    for level, filters in enumerate(self.encoder_features):
      x = nn.Conv(
          scaled(filters, self.width),
          (4, 4),
          strides=(2, 2),
          padding="SAME",
          use_bias=False,
          dtype=self.dtype,
          param_dtype=jnp.float32,
          name=f"enc{level + 1}",
      )(x)
      x = nn.leaky_relu(
          norm(x, f"enc{level + 1}_bn"), 0.2
      )  # [B, Fp/2^l, Tp/2^l, c]
      if level in self.merge_levels:
        scale = scales[list(self.merge_levels).index(level)]
        ctx = video_context(scale, t, tp, x.shape[2]).astype(self.dtype)
        if self.video_norm:
          ctx = norm(ctx, f"video{level + 1}_bn")  # [B, T_l, C]
        ctx = jnp.broadcast_to(ctx[:, None], (b, x.shape[1]) + ctx.shape[1:])
        x = jnp.concatenate([x, ctx], axis=-1)
      skips.append(x)

    for level in reversed(range(depth - 1)):
      x = nn.ConvTranspose(
          scaled(self.encoder_features[level], self.width),
          (4, 4),
          strides=(2, 2),
          padding="SAME",
          use_bias=False,
          dtype=self.dtype,
          param_dtype=jnp.float32,
          name=f"dec{level + 1}",
      )(x)
      x = nn.relu(norm(x, f"dec{level + 1}_bn"))
      x = jnp.concatenate([x, skips[level]], axis=-1)  # the u-net's skip

    out = {}
    for name in ("on_screen", "off_screen"):
      y = nn.ConvTranspose(
          1,
          (4, 4),
          strides=(2, 2),
          padding="SAME",
          dtype=self.dtype,
          param_dtype=jnp.float32,
          name=name,
      )(x)
      out[name] = y[:, :f, :t].astype(jnp.float32)  # [B, F, T, 1]
    return out


def _per_example_l1(pred: jnp.ndarray, target: jnp.ndarray) -> jnp.ndarray:
  """Mean |pred - target| over all but the batch axis: [B] float32."""
  diff = jnp.abs(pred.astype(jnp.float32) - target.astype(jnp.float32))
  return jnp.mean(diff.reshape(diff.shape[0], -1), axis=1)


def l1_loss(
    pred_on: jnp.ndarray,
    pred_off: jnp.ndarray,
    target_on: jnp.ndarray,
    target_off: jnp.ndarray,
) -> jnp.ndarray:
  """L1(on) + L1(off) on log-magnitudes, averaged over the batch: scalar float32."""
  return jnp.mean(
      _per_example_l1(pred_on, target_on)
      + _per_example_l1(pred_off, target_off)
  )


def pit_l1_loss(
    pred_on: jnp.ndarray,
    pred_off: jnp.ndarray,
    target_on: jnp.ndarray,
    target_off: jnp.ndarray,
) -> jnp.ndarray:
  """Permutation-invariant L1: per example the better of the two output assignments."""
  # Used where "on screen" is ill-defined (e.g. two on-screen speakers); the
  # minimum is taken per example, before the batch mean.
  kept = _per_example_l1(pred_on, target_on) + _per_example_l1(
      pred_off, target_off
  )
  swapped = _per_example_l1(pred_on, target_off) + _per_example_l1(
      pred_off, target_on
  )
  return jnp.mean(jnp.minimum(kept, swapped))
