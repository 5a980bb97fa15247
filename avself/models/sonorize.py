"""The sonorization net (Owens et al. 2016, "Visually Indicated Sounds").

Per video frame, two streams: the RGB frame and a spatio-temporal image (the
grayscale previous, current and next frames as three channels), each
through its own VGG trunk (`vgg.VGGTrunk`, global max-pooled). Their
concatenation goes through a temporal layer over the clip, then a linear
head regresses `steps_per_frame` steps of `num_bands` log mel bands per
frame. The temporal layer is 1-D convolutions over frames ('conv', both
sides of each frame: a hit's sound starts when the stick lands, which the
next frame shows) or an LSTM as the paper's ('lstm', causal).

The RGB trunk is L3-Net's, so its frozen features go through the same
linear probe (`embed_vision`) as L3-Net's and the ambient net's.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from avself import synthesis
from avself.models.vgg import VGGTrunk

Dtype = Any
_GRAY = (0.299, 0.587, 0.114)


def spacetime_images(video: jnp.ndarray) -> jnp.ndarray:
  """[B, T, H, W, 3] RGB -> [B, T, H, W, 3]: grayscale frames t-1, t, t+1.

  The clip's first and last frames stand in for the missing neighbours.
  """
  gray = (video * jnp.asarray(_GRAY, video.dtype)).sum(-1)  # [B, T, H, W]
  prev = jnp.concatenate([gray[:, :1], gray[:, :-1]], axis=1)
  nxt = jnp.concatenate([gray[:, 1:], gray[:, -1:]], axis=1)
  return jnp.stack([prev, gray, nxt], axis=-1)


class SonorizeNet(nn.Module):
  """Two-stream frame encoder, temporal layer, per-step band regression.

  Attributes:
    num_bands: log mel bands per step.
    steps_per_frame: feature steps regressed per video frame.
    width: channel multiplier of both VGG trunks.
    hidden: width of the temporal layer.
    temporal: 'conv' (1-D convs over frames) or 'lstm'.
    temporal_layers: number of temporal convs (or LSTM layers).
    temporal_kernel: frames each temporal conv sees.
    sample_rate, fps: the clips' audio rate and frame rate, which with
      num_bands and steps_per_frame fix the target features
      (`feature_spec`).
    loss: 'l2' or 'l1' (`avself.tasks.sonorize.regression_loss`).
    dtype: compute dtype; parameters stay float32.
    pack_columns: the trunks' block 1 on column pairs (`vgg.VGGTrunk`).
  """

  num_bands: int
  steps_per_frame: int
  sample_rate: int = 16000
  fps: float = 10.0
  loss: str = "l2"
  width: float = 0.125
  hidden: int = 128
  temporal: str = "conv"
  temporal_layers: int = 2
  temporal_kernel: int = 5
  dtype: Dtype = jnp.float32
  pack_columns: bool = False

  def setup(self):
    self.vision_trunk = VGGTrunk(
        width=self.width, dtype=self.dtype, pack_columns=self.pack_columns
    )
    self.motion_trunk = VGGTrunk(
        width=self.width, dtype=self.dtype, pack_columns=self.pack_columns
    )
    self.project = nn.Dense(self.hidden, dtype=self.dtype, name="project")
    if self.temporal == "conv":
      self.temporal_stack = [
          nn.Conv(
              self.hidden,
              (self.temporal_kernel,),
              padding="SAME",
              dtype=self.dtype,
              name=f"temporal_{i}",
          )
          for i in range(self.temporal_layers)
      ]
    elif self.temporal == "lstm":
      self.temporal_stack = [
          nn.RNN(nn.OptimizedLSTMCell(self.hidden), name=f"lstm_{i}")
          for i in range(self.temporal_layers)
      ]
    else:
      raise ValueError(f"temporal must be 'conv' or 'lstm': {self.temporal!r}")
    self.head = nn.Dense(
        self.num_bands * self.steps_per_frame,
        dtype=self.dtype,
        param_dtype=jnp.float32,
        # Starts at silence (the features' floor), not at 0 dB.
        bias_init=nn.initializers.constant(float(np.log(synthesis.LOG_FLOOR))),
        name="head",
    )

  @property
  def feature_spec(self) -> synthesis.FeatureSpec:
    return synthesis.FeatureSpec(
        self.sample_rate, self.fps, self.steps_per_frame, self.num_bands
    )

  def frame_features(self, video: jnp.ndarray, train: bool) -> jnp.ndarray:
    """[B, T, S, S, 3] in [-1, 1] -> per-frame features [B, T, 2 C]."""
    b, t = video.shape[:2]
    flat = lambda x: x.reshape((b * t,) + x.shape[2:])
    rgb = self.vision_trunk(flat(video), train=train)["pooled"]
    motion = self.motion_trunk(flat(spacetime_images(video)), train=train)
    both = jnp.concatenate([rgb, motion["pooled"]], axis=-1)
    return both.reshape(b, t, -1)

  def __call__(self, video: jnp.ndarray, train: bool) -> dict:
    """video [B, T, S, S, 3] -> {'features': [B, T * steps_per_frame, num_bands] f32}."""
    b, t = video.shape[:2]
    h = nn.relu(self.project(self.frame_features(video, train)))
    for layer in self.temporal_stack:
      h = nn.relu(layer(h)) if self.temporal == "conv" else layer(h)
    out = self.head(h).astype(jnp.float32)
    return {
        "features": out.reshape(b, t * self.steps_per_frame, self.num_bands)
    }

  def embed_vision(self, image: jnp.ndarray, train: bool = False) -> dict:
    """The RGB stream's trunk dict for image [B, H, W, 3]."""
    return self.vision_trunk(image, train=train)
