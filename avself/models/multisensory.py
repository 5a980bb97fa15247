"""Multisensory net (Owens & Efros 2018, "Audio-Visual Scene Analysis with
Self-Supervised Multisensory Features"), Fig. 3 and the authors' `shift_net`.

An early-fusion 3D ResNet that answers: is this clip's sound aligned with its
frames, or shifted in time (the paper's self-supervised task)? As in Fig. 3:

  video [B, N, H, W, 3]                waveform [B, S, C] (C = 1 or 2)
  conv1 64 [5,7,7]/2 -> BN -> ReLU     mu-law compression
  max-pool [1,3,3]/[1,2,2]             conv1 64 [65]/4 -> BN -> ReLU, pool [4]/4
  conv2_1 64 [3,3,3]                   conv2 128 [15]/4, conv3 128 [15]/4,
  conv2_2 64 [3,3,3]/2                 conv4 256 [15]/4   (residual blocks)
        |                              adaptive max-pool to the video's T'
        |                              conv5 128 [3] -> BN -> ReLU
        v                                    v
  [B, T', h, w, 64]   +   audio [B, T', 128] tiled over (h, w)
  fusion: merge (1x1x1 512 -> 128, residual), conv3_x 128,
          conv4_x 256 /[2,2,2], conv5_x 512 /[1,2,2]
  global average pool -> head: Dense 1 -> one logit (aligned vs shifted)

Widths are multiplied by `width` (max(1, round(c * width))).

How audio time maps to video time. Before fusion the video's temporal rate is
1/4 of the frame rate: T' = ceil(ceil(N / 2) / 2) (conv1 and conv2_2 each
stride 2 in time, 'SAME' padding). Fusion needs one audio step per video step,
i.e. a total audio stride of 4 * S / N samples (4 * 21000 / 29.97 ~ 2803 at the
paper's rates). The audio convs have a fixed stride of 4^5 = 1024 samples
(`audio_conv_length`), so their output is ~2.7x longer than T'; a last,
adaptive step max-pools it over T' near-equal bins (`layers.adaptive_max_pool`,
bins as torch's AdaptiveMaxPool) to exactly T'. The authors use
`tf.nn.fractional_max_pool` at this point, which randomises the bin edges; the
deterministic bins here are its test-time behaviour. Where the audio convs give
fewer than T' steps (sample rates below ~1024 * fps / 4 Hz) the bins overlap
and the pool repeats steps, i.e. nearest-neighbour upsampling.

CAM (the paper's sound-source visualisation): the head is a Dense on the
global average of the last conv map, so logit = mean over (t, h, w) of cam +
bias, with cam = features . w (`cam`).
"""

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from avself.models import layers
from avself.models.layers import (
    BN_EPSILON,
    BN_MOMENTUM,
    adaptive_max_pool,
    conv_kernel,
    scaled,
)

Dtype = Any

__all__ = [
    "ActionClassifier",
    "AudioBranch",
    "Conv3D",
    "Fusion",
    "MultisensoryNet",
    "ResidualBlock",
    "ResidualStages",
    "VideoBranch",
    "audio_conv_length",
    "cam",
    "cam_to_frames",
    "compress_waveform",
    "conv3d_by_time_taps",
    "fusion_length",
    "init_from_sync",
]

AUDIO_CONV_STRIDE = 4**5  # conv1 /4, pool /4, conv2-4 /4 each: 1024 samples
MU_LAW_SCALE = 255.0


def _batch_norm(train: bool, dtype: Dtype, name: str) -> nn.BatchNorm:
  return nn.BatchNorm(
      use_running_average=not train,
      momentum=BN_MOMENTUM,
      epsilon=BN_EPSILON,
      dtype=dtype,
      param_dtype=jnp.float32,
      name=name,
  )


def _conv(
    features: int,
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    dtype: Dtype,
    name: str,
) -> nn.Module:
  # No conv bias anywhere: a BatchNorm follows every conv (directly or after
  # the residual sum) and has its own.
  if len(kernel) == 3:
    return Conv3D(features, kernel, strides, dtype=dtype, name=name)
  return nn.Conv(
      features,
      kernel,
      strides=strides,
      padding="SAME",
      use_bias=False,
      dtype=dtype,
      param_dtype=jnp.float32,
      name=name,
  )


def conv3d_by_time_taps(
    x: jnp.ndarray, kernel: jnp.ndarray, strides: tuple[int, int, int]
) -> jnp.ndarray:
  """'SAME' 3D conv [B, T, H, W, Ci] * [kt, kh, kw, Ci, Co] as one 2D conv.

  The kt temporal taps of each output step are stacked on the channel axis
  ([B * T', H, W, kt * Ci]) and convolved with the kernel reshaped to
  [kh, kw, kt * Ci, Co]: the same sums as `lax.conv_general_dilated` in 3D,
  but XLA:CPU's 3D conv kernels (and their gradients) are ~10x slower than
  its 2D ones (conv1 of the tiny sync net, batch 16 x 16 x 32 x 32: 0.9 s vs
  0.06 s forward + kernel gradient). Stride-1 2D convs take the tapped
  kernel gradient of `layers.conv_general_dilated` on CPU.
  """
  b, t, h, w, ci = x.shape
  kt, kh, kw, _, co = kernel.shape
  st, sh, sw = strides
  (lo, hi), pad_h, pad_w = jax.lax.padtype_to_pads(
      (t, h, w), (kt, kh, kw), strides, "SAME"
  )
  t_out = -(-t // st)
  xp = jnp.pad(x, ((0, 0), (lo, hi), (0, 0), (0, 0), (0, 0)))
  taps = [
      xp[:, d : d + st * (t_out - 1) + 1 : st] for d in range(kt)
  ]  # kt x [B, T', H, W, Ci]
  stacked = taps[0] if kt == 1 else jnp.concatenate(taps, axis=-1)
  stacked = stacked.reshape(b * t_out, h, w, kt * ci)
  w2 = jnp.transpose(kernel, (1, 2, 0, 3, 4)).reshape(kh, kw, kt * ci, co)
  pads = (tuple(pad_h), tuple(pad_w))
  dn = jax.lax.conv_dimension_numbers(
      stacked.shape, w2.shape, ("NHWC", "HWIO", "NHWC")
  )
  y = layers.conv_general_dilated(
      stacked, w2, (sh, sw), pads, dimension_numbers=dn
  )
  return y.reshape(b, t_out, *y.shape[1:])


class Conv3D(nn.Module):
  """A bias-free 'SAME' 3D conv with nn.Conv's parameter (`kernel` [kt, kh, kw, Ci, Co],
  same init), computed by `conv3d_by_time_taps` (fast on CPU)."""

  features: int
  kernel_size: tuple[int, int, int]
  strides: tuple[int, int, int] = (1, 1, 1)
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    kernel = conv_kernel(self, (*self.kernel_size, x.shape[-1], self.features))
    return conv3d_by_time_taps(
        x.astype(self.dtype), kernel.astype(self.dtype), tuple(self.strides)
    )


def fusion_length(num_frames: int) -> int:
  """Temporal length T' of the video branch's output (= fusion) for `num_frames` input frames."""
  return -(-(-(-num_frames // 2)) // 2)  # ceil(ceil(N / 2) / 2)


def audio_conv_length(num_samples: int) -> int:
  """Temporal length of the audio convs' output (conv4) before the adaptive pool."""
  n = -(-num_samples // 4)  # conv1 /4, 'SAME'
  n //= 4  # max-pool [4]/4, 'VALID'
  for _ in range(3):  # conv2..conv4 /4, 'SAME'
    n = -(-n // 4)
  return n


def compress_waveform(
    waveform: jnp.ndarray, scale: float = MU_LAW_SCALE
) -> jnp.ndarray:
  """mu-law-style compression sign(x) log(1 + s|x|) / log(1 + s) of a [-1, 1] waveform."""
  # The authors' `normalize_sfs` (mu = 255): compresses the dynamic range, so
  # quiet and loud clips reach the first conv at comparable scales.
  return (
      jnp.sign(waveform)
      * jnp.log1p(scale * jnp.abs(waveform))
      / np.log1p(scale)
  )


class ResidualBlock(nn.Module):
  """Residual block of the authors' code (`block2`/`block3`), 1D or 3D by `kernel_size`.

  conv_1 (stride) -> BN -> ReLU -> conv_2; plus the shortcut; then BN -> ReLU.
  The shortcut is the identity, a strided subsample (same width, stride > 1)
  or a strided 1x..x1 conv -> BN (width changes).

  Attributes:
    features: output channels (already width-scaled).
    kernel_size: (k,) for audio, (kt, kh, kw) for video.
    strides: same length as kernel_size; None for all ones.
    dtype: compute dtype; parameters stay float32.
  """

  features: int
  kernel_size: tuple[int, ...]
  strides: Optional[tuple[int, ...]] = None
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    ndim = len(self.kernel_size)
    strides = tuple(self.strides or (1,) * ndim)
    short = x
    if x.shape[-1] != self.features:
      short = _conv(
          self.features, (1,) * ndim, strides, self.dtype, "short_conv"
      )(x)
      short = _batch_norm(train, self.dtype, "short_bn")(short)
    elif strides != (1,) * ndim:
      # A 1x1 'SAME' conv with stride s reads x[::s]: ceil(L / s) positions.
      short = x[(slice(None),) + tuple(slice(None, None, s) for s in strides)]
    y = _conv(self.features, self.kernel_size, strides, self.dtype, "conv_1")(x)
    y = nn.relu(_batch_norm(train, self.dtype, "bn_1")(y))
    y = _conv(
        self.features, self.kernel_size, (1,) * ndim, self.dtype, "conv_2"
    )(y)
    return nn.relu(_batch_norm(train, self.dtype, "bn_out")(y + short))


def _block(remat: bool):
  """ResidualBlock, or one whose activations are recomputed in the backward
  pass (`nn.remat`): only the block's input is kept, trading one more forward
  pass of the block for its activation memory. Same parameters and values."""
  return (
      nn.remat(ResidualBlock, static_argnums=(2,)) if remat else ResidualBlock
  )


class VideoBranch(nn.Module):
  """The video-only layers before fusion: conv1, pool1, conv2_1, conv2_2 (Fig. 3).

  Shared by MultisensoryNet and ActionClassifier under the name `video_branch`
  so that a sync checkpoint initialises the classifier (`init_from_sync`).

  Attributes:
    width: channel multiplier.
    dtype: compute dtype; parameters stay float32.
    remat: recompute the residual blocks' activations in the backward pass.
  """

  width: float = 1.0
  dtype: Dtype = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, video: jnp.ndarray, train: bool) -> jnp.ndarray:
    """video [B, N, H, W, 3] in [-1, 1] -> [B, ceil(N/4), ceil(H/8), ceil(W/8), 64]."""
    c = scaled(64, self.width)
    x = video.astype(self.dtype)
    x = _conv(c, (5, 7, 7), (2, 2, 2), self.dtype, "conv1")(x)
    x = nn.relu(_batch_norm(train, self.dtype, "bn1")(x))
    x = nn.max_pool(x, (1, 3, 3), strides=(1, 2, 2), padding="SAME")
    block = _block(self.remat)
    x = block(c, (3, 3, 3), dtype=self.dtype, name="conv2_1")(x, train)
    # Second temporal stride: the video reaches 1/4 of the frame rate here.
    return block(c, (3, 3, 3), (2, 2, 2), dtype=self.dtype, name="conv2_2")(
        x, train
    )


class AudioBranch(nn.Module):
  """Strided 1D convs on the raw waveform, down to the video's rate at fusion (Fig. 3).

  Attributes:
    width: channel multiplier.
    dtype: compute dtype; parameters stay float32.
  """

  width: float = 1.0
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(
      self, waveform: jnp.ndarray, num_steps: int, train: bool
  ) -> jnp.ndarray:
    """waveform [B, S, C] -> [B, num_steps, 128]; see the module docstring for the time map."""
    x = compress_waveform(waveform.astype(jnp.float32)).astype(self.dtype)
    x = _conv(scaled(64, self.width), (65,), (4,), self.dtype, "conv1")(x)
    x = nn.relu(_batch_norm(train, self.dtype, "bn1")(x))
    x = nn.max_pool(x, (4,), strides=(4,), padding="VALID")  # [B, S/16, 64]
    for name, filters in (("conv2", 128), ("conv3", 128), ("conv4", 256)):
      x = ResidualBlock(
          scaled(filters, self.width), (15,), (4,), dtype=self.dtype, name=name
      )(x, train)
    # [B, audio_conv_length(S), 256] -> [B, num_steps, 256]: the adaptive step.
    x = adaptive_max_pool(x[:, :, None, :], (num_steps, 1))[:, :, 0, :]
    x = _conv(scaled(128, self.width), (3,), (1,), self.dtype, "conv5")(x)
    return nn.relu(_batch_norm(train, self.dtype, "bn5")(x))  # [B, T', 128]


class ResidualStages(nn.Module):
  """conv3_x 128, conv4_x 256 /[2,2,2], conv5_x 512 /[1,s,s]: two blocks each (Fig. 3).

  Attributes:
    width: channel multiplier.
    conv5_stride: spatial stride of conv5_1; 2 in the paper's sync net, 1 in
      the authors' CAM net (`cam_v1`: a 14x14 rather than 7x7 map at 224).
    conv4_strides: (t, h, w) stride of conv4_1; (2, 2, 2) in the paper. Tiny
      clips need (1, 1, 1) for a CAM as fine, relative to the frame and the
      clip, as the paper's (see configs/multisensory_synthetic.py).
    kernel: (t, h, w) kernel of every conv in the stages; (3, 3, 3) in the
      paper. (3, 1, 1) keeps each cell of the last map to its own patch of
      the frame (the video branch's receptive field), so the CAM cannot
      spread one cell's evidence over the map: for frames so small that a
      3 x 3 x 3 cell sees all of the frame.
    dtype: compute dtype; parameters stay float32.
    remat: recompute the blocks' activations in the backward pass.
  """

  width: float = 1.0
  conv5_stride: int = 2
  conv4_strides: tuple[int, int, int] = (2, 2, 2)
  kernel: tuple[int, int, int] = (3, 3, 3)
  dtype: Dtype = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> dict[str, jnp.ndarray]:
    """x [B, T', h, w, C] -> scale1 [B,T',h,w,128], scale2 [B,T'/2,h/2,w/2,256], scale3 .."""
    out = {}
    s = self.conv5_stride
    stages = (
        (3, 128, None),
        (4, 256, tuple(self.conv4_strides)),
        (5, 512, (1, s, s)),
    )
    for stage, filters, strides in stages:
      c = scaled(filters, self.width)
      x = _block(self.remat)(
          c,
          tuple(self.kernel),
          strides,
          dtype=self.dtype,
          name=f"conv{stage}_1",
      )(x, train)
      x = _block(self.remat)(
          c, tuple(self.kernel), dtype=self.dtype, name=f"conv{stage}_2"
      )(x, train)
      out[f"scale{stage - 2}"] = x
    return out


class Fusion(nn.Module):
  """Early fusion: audio tiled over space, concatenated with video, then the 3D ResNet stages.

  Attributes:
    width: channel multiplier.
    conv5_stride, conv4_strides, stage_kernel: see ResidualStages (`kernel`).
    dtype: compute dtype; parameters stay float32.
    remat: recompute the residual blocks' activations in the backward pass.
  """

  width: float = 1.0
  conv5_stride: int = 2
  conv4_strides: tuple[int, int, int] = (2, 2, 2)
  stage_kernel: tuple[int, int, int] = (3, 3, 3)
  dtype: Dtype = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(
      self, video: jnp.ndarray, audio: jnp.ndarray, train: bool
  ) -> dict[str, jnp.ndarray]:
    """video [B, T', h, w, Cv], audio [B, T', Ca] -> ResidualStages' scale1..3."""
    b, t, h, w, cv = video.shape
    ca = audio.shape[-1]
    tiled = jnp.broadcast_to(audio[:, :, None, None, :], (b, t, h, w, ca))
    x = jnp.concatenate([video, tiled], axis=-1)  # [B, T', h, w, Cv + Ca]
    # The authors' merge block: a 1x1x1 bottleneck whose shortcut keeps all
    # video channels and the last (128 - 64) audio channels.
    m = scaled(128, self.width)
    short = jnp.concatenate(
        [video, tiled[..., ca - (m - cv) :]], axis=-1
    )  # [.., m]
    y = _conv(
        scaled(512, self.width), (1, 1, 1), (1, 1, 1), self.dtype, "merge_1"
    )(x)
    y = nn.relu(_batch_norm(train, self.dtype, "merge_1_bn")(y))
    y = _conv(m, (1, 1, 1), (1, 1, 1), self.dtype, "merge_2")(y)
    x = nn.relu(_batch_norm(train, self.dtype, "merge_bn")(y + short))
    return ResidualStages(
        self.width,
        self.conv5_stride,
        tuple(self.conv4_strides),
        tuple(self.stage_kernel),
        self.dtype,
        self.remat,
        name="stages",
    )(x, train)


class MultisensoryNet(nn.Module):
  """Audio-visual alignment net: one logit, aligned (1) vs shifted (0).

  Attributes:
    width: channel multiplier of every conv (the 1-logit head keeps its size).
    conv5_stride, conv4_strides, stage_kernel: see ResidualStages (`kernel`).
    dtype: compute dtype; parameters stay float32. The pooled features, head
      and logit are float32 (full-precision sigmoid loss and CAM identity).
    remat: recompute the video residual blocks' activations in the backward
      pass (less memory, one more forward pass of those blocks).

  Audio channels (mono or stereo) are taken from the input.
  """

  width: float = 1.0
  conv5_stride: int = 2
  conv4_strides: tuple[int, int, int] = (2, 2, 2)
  stage_kernel: tuple[int, int, int] = (3, 3, 3)
  dtype: Dtype = jnp.float32
  remat: bool = False

  def setup(self):
    self.video_branch = VideoBranch(self.width, self.dtype, self.remat)
    self.audio_branch = AudioBranch(self.width, self.dtype)
    self.fusion = Fusion(
        self.width,
        self.conv5_stride,
        tuple(self.conv4_strides),
        tuple(self.stage_kernel),
        self.dtype,
        self.remat,
    )
    self.head = nn.Dense(
        1,
        dtype=jnp.float32,
        param_dtype=jnp.float32,
        precision=jax.lax.Precision.HIGHEST,
    )

  def __call__(
      self, video: jnp.ndarray, waveform: jnp.ndarray, train: bool
  ) -> dict[str, jnp.ndarray]:
    """video [B, N, H, W, 3] in [-1, 1], waveform [B, S, C] -> dict (see below).

    Returns:
      logit: [B] float32.
      features: [B, t, h, w, 512] last conv map (conv5_2; CAM input).
      scale1, scale2, scale3: conv3_2 [B,T',h',w',128], conv4_2
        [B,T'/2,..,256], conv5_2 (= features), for the separation u-net.
      video_features: [B, T', h', w', 64] video branch output (pre-fusion).
      audio_features: [B, T', 128] audio branch output.
      pooled: [B, 512] float32 global average of `features`.
    """
    video_features = self.video_branch(video, train)
    audio_features = self.audio_branch(waveform, video_features.shape[1], train)
    scales = self.fusion(video_features, audio_features, train)
    features = scales["scale3"]
    pooled = jnp.mean(features.astype(jnp.float32), axis=(1, 2, 3))  # [B, 512]
    logit = self.head(pooled)[:, 0]
    return {
        "logit": logit,
        "features": features,
        **scales,
        "video_features": video_features,
        "audio_features": audio_features,
        "pooled": pooled,
    }

  def video_embedding(
      self, video: jnp.ndarray, train: bool = False
  ) -> jnp.ndarray:
    """Video branch output averaged over (t, h, w): [B, 64] float32."""
    return jnp.mean(
        self.video_branch(video, train).astype(jnp.float32), axis=(1, 2, 3)
    )


class ActionClassifier(nn.Module):
  """Action recognition from video only, fine-tuned from a sync checkpoint.

  `video_branch` (same class and name as in MultisensoryNet) -> 3D ResNet
  stages -> global average pool -> Dense num_classes. The stages are either
    trunk='fusion': the sync net's own `fusion` (merge block and conv3..conv5,
      same names, so `init_from_sync` copies the whole visual pathway, as the
      paper fine-tunes the whole net), fed zeros for audio: video only,
      since many action videos (half of UCF-101) have no sound; or
    trunk='fresh': own conv3..conv5 stages (`trunk`, always random init);
      only the video branch can come from the sync net.

  Attributes:
    num_classes: number of action classes.
    width: channel multiplier (must match the sync net's to copy weights).
    trunk: 'fusion' or 'fresh' (see above).
    conv5_stride, conv4_strides, stage_kernel: as the sync net's (ResidualStages).
    dtype: compute dtype; parameters stay float32, logits are float32.
    remat: recompute the residual blocks' activations in the backward pass.
  """

  num_classes: int
  width: float = 1.0
  trunk: str = "fresh"
  conv5_stride: int = 2
  conv4_strides: tuple[int, int, int] = (2, 2, 2)
  stage_kernel: tuple[int, int, int] = (3, 3, 3)
  dtype: Dtype = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, video: jnp.ndarray, train: bool) -> dict[str, jnp.ndarray]:
    """video [B, N, H, W, 3] -> logits [B, K], pooled [B, 512], video_embedding [B, 64]."""
    v = VideoBranch(self.width, self.dtype, self.remat, name="video_branch")(
        video, train
    )
    if self.trunk == "fusion":
      silence = jnp.zeros((*v.shape[:2], scaled(128, self.width)), v.dtype)
      x = Fusion(
          self.width,
          self.conv5_stride,
          tuple(self.conv4_strides),
          tuple(self.stage_kernel),
          self.dtype,
          self.remat,
          name="fusion",
      )(v, silence, train)["scale3"]
    elif self.trunk == "fresh":
      x = ResidualStages(
          self.width,
          self.conv5_stride,
          tuple(self.conv4_strides),
          tuple(self.stage_kernel),
          self.dtype,
          self.remat,
          name="trunk",
      )(v, train)["scale3"]
    else:
      raise ValueError(f"trunk={self.trunk!r}: 'fusion' or 'fresh'")
    pooled = jnp.mean(x.astype(jnp.float32), axis=(1, 2, 3))
    logits = nn.Dense(
        self.num_classes,
        dtype=jnp.float32,
        param_dtype=jnp.float32,
        name="classifier",
    )(pooled)
    return {
        "logits": logits,
        "pooled": pooled,
        "video_embedding": jnp.mean(v.astype(jnp.float32), axis=(1, 2, 3)),
    }


SYNC_TRANSFERRED = ("video_branch", "fusion")


def init_from_sync(variables: dict, sync_variables: dict) -> dict:
  """Classifier variables with the sync net's `video_branch` (and `fusion`, when the
  classifier has one) params and batch stats; the rest keeps its own init."""
  out = dict(variables)
  for collection in ("params", "batch_stats"):
    copied = dict(variables[collection])
    for name in SYNC_TRANSFERRED:
      if name not in variables[collection]:
        continue
      mine = variables[collection][name]
      theirs = sync_variables[collection][name]
      if jax.tree_util.tree_map(jnp.shape, mine) != jax.tree_util.tree_map(
          jnp.shape, theirs
      ):
        raise ValueError(
            f"{name} {collection} differ in layout (same width and strides?)"
        )
      copied[name] = theirs
    out[collection] = copied
  return out


def cam(features: jnp.ndarray, dense_params: dict) -> jnp.ndarray:
  """Class activation map of the alignment logit: features . w, [B, t, h, w] float32.

  The bias is left out, so logit == cam.mean(axis=(1, 2, 3)) + bias (the head
  is linear in the average-pooled features). Pass params['head'].
  """
  w = jnp.asarray(dense_params["kernel"], jnp.float32)[:, 0]  # [C]
  return jnp.einsum(
      "bthwc,c->bthw",
      features.astype(jnp.float32),
      w,
      precision=jax.lax.Precision.HIGHEST,
  )


def cam_to_frames(
    cam_map: jnp.ndarray, num_frames: int, height: int, width: int
) -> jnp.ndarray:
  """Upsamples a CAM [B, t, h, w] to per-frame heatmaps [B, N, H, W] in [0, 1].

  Linear interpolation over time, rows and columns (jax.image.resize), then
  min-max normalisation per clip (over all its frames, so heat is comparable
  across a clip's frames). A constant map carries no location: it becomes all
  zeros, not NaN.
  """
  b = cam_map.shape[0]
  x = jax.image.resize(
      cam_map.astype(jnp.float32),
      (b, num_frames, height, width),
      method="linear",
  )
  lo = jnp.min(x, axis=(1, 2, 3), keepdims=True)
  span = jnp.max(x, axis=(1, 2, 3), keepdims=True) - lo
  return jnp.where(span > 0, (x - lo) / jnp.where(span > 0, span, 1.0), 0.0)
