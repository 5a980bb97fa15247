"""On/off-screen source separation (Owens & Efros 2018, Sec. 5).

The pipeline's `mixture` mode mixes a clip's audio ("on screen") with the
audio of another random video ("off screen") and keeps both sources. A u-net
(`models/unet.py`) maps the mixture's log-magnitude spectrogram to an on- and
an off-screen log-magnitude spectrogram; the video enters through the
Multisensory net's features at three scales (conv3_2, conv4_2, conv5_2 of the
fused net run on the video and the mixture), each concatenated to the encoder
level after `model.merge_levels`. Loss: L1 between predicted and true
log-magnitudes of both sources (`unet.l1_loss`).

`model.use_video=False` is the audio-only baseline: the same u-net without
video, trained with the permutation-invariant L1 (PIT, Yu et al. 2017),
which separates two sounds but cannot know which one is on screen.

`model.pit_weight` > 0 adds that permutation-invariant L1 to the AV net's
fixed-order L1 (the authors' code adds up whichever of its `fg-bg` and `pit`
losses a run lists; their full model lists `fg-bg` alone). Why: mixtures come in pairs (A on screen with B off, B on with A off)
that share one waveform, so while the video features do not yet say which
source is on screen, the fixed-order L1 of a pair is flat anywhere between
the two sources and its optimum is to predict the mixture for both outputs;
the net can sit there (docs/separation.md). The PIT term rewards separating
the two sounds in either order from the first step, so the u-net learns to
separate whatever the video pathway knows; the fixed-order term then only
has to learn which output is on screen, and for a separated pair the wrong
order costs the whole difference between the sources, not a bin's worth. A
net that puts the on-screen sound in output 0 pays the same for both terms:
at that optimum the PIT term changes nothing.

Spectrograms: `jax.scipy.signal.stft` (periodic Hann window of
`frame_length`, hop `frame_step`, zero-padded ends) of the mono mixture;
log(|STFT| + `log_offset`). The u-net's outputs are added to the mixture's
log-magnitude (a log-domain mask, so training starts from the mixture
baseline); the loss is on the sums, the log-magnitudes themselves. Waveforms come back through
`jax.scipy.signal.istft` with the mixture's phase: the predicted magnitude
over the mixture's is a ratio applied to the STFT of each mixture channel,
which for mono input is exactly magnitude times the mixture's phase, and
for stereo keeps each channel's own phase and level.

Warm start (`init_from`): the sync run's variables fill `sync_net`; with
`model.freeze_video=True` the sync net runs in inference mode (its
BatchNorm statistics kept) behind a stop-gradient, and the config holds its
parameters with `optimizer.freeze=('sync_net',)` (`freeze_config`).
"""

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import jax.scipy.signal as jsignal
import numpy as np
from absl import logging

from avself import config_lib
from avself.models import multisensory
from avself.models import unet

Dtype = Any


def data_mode(config) -> str:
  del config
  return "mixture"


def stft(waveform: jnp.ndarray, frame_length: int, frame_step: int):
  """Complex STFT of [..., n] -> [..., F, T] (scipy's scaling, inverted by `istft`)."""
  _, _, z = jsignal.stft(
      waveform,
      nperseg=frame_length,
      noverlap=frame_length - frame_step,
      boundary="zeros",
      padded=True,
      axis=-1,
  )
  return z


def istft(z: jnp.ndarray, frame_length: int, frame_step: int, num_samples: int):
  """[..., F, T] complex -> waveform [..., num_samples] float32."""
  _, x = jsignal.istft(
      z,
      nperseg=frame_length,
      noverlap=frame_length - frame_step,
      boundary=True,
      time_axis=-1,
      freq_axis=-2,
  )
  return x[..., :num_samples].astype(jnp.float32)


def log_magnitude(waveform: jnp.ndarray, spec) -> jnp.ndarray:
  """Waveform [B, n, C] -> log(|STFT| + log_offset) of its mono mix [B, F, T, 1]."""
  z = stft(
      jnp.mean(waveform.astype(jnp.float32), axis=-1),
      spec.frame_length,
      spec.frame_step,
  )
  return jnp.log(jnp.abs(z) + spec.log_offset)[..., None]


def resynthesize(
    log_mag: jnp.ndarray, mixture_waveform: jnp.ndarray, spec
) -> jnp.ndarray:
  """Predicted log-magnitude [B, F, T, 1] + mixture [B, n, C] -> waveform [B, n, C].

  The magnitude takes the mixture's phase: est = (|S| / |M|) * STFT(mixture
  channel), |M| the mono mixture's magnitude.
  """
  x = mixture_waveform.astype(jnp.float32)
  n = x.shape[1]
  channels = stft(jnp.moveaxis(x, 1, 2), spec.frame_length, spec.frame_step)
  mono = stft(jnp.mean(x, axis=-1), spec.frame_length, spec.frame_step)
  magnitude = jnp.maximum(jnp.exp(log_mag[..., 0]) - spec.log_offset, 0.0)
  ratio = magnitude / jnp.maximum(jnp.abs(mono), 1e-8)  # [B, F, T]
  out = istft(channels * ratio[:, None], spec.frame_length, spec.frame_step, n)
  return jnp.moveaxis(out, 1, 2)  # [B, n, C]


class SeparationNet(nn.Module):
  """Multisensory features (optional) + u-net on the mixture's spectrogram.

  Attributes:
    width, conv5_stride, conv4_strides, stage_kernel: the sync net's (they
      must match the `init_from` run's).
    encoder_features, merge_levels, unet_width: the u-net's.
    frame_length, frame_step, log_offset: the spectrogram (`log_magnitude`).
    use_video: False for the audio-only u-net (no `sync_net`).
    pit_weight: weight of the permutation-invariant L1 added to the AV net's
      fixed-order L1 (0: the fixed-order L1 alone; see the module docstring).
    video_norm: BatchNorm on the pooled sync features before they join the
      u-net (`unet.SeparationUNet.video_norm`).
    freeze_video: the sync net in inference mode, behind a stop-gradient.
    phase_input: the mixture's phase / pi as a second u-net input channel
      (the authors').
    dtype: compute dtype; parameters stay float32.
  """

  width: float = 1.0
  conv5_stride: int = 2
  conv4_strides: Sequence[int] = (2, 2, 2)
  stage_kernel: Sequence[int] = (3, 3, 3)
  encoder_features: Sequence[int] = (64, 128, 256, 512, 512, 512, 512)
  merge_levels: Sequence[int] = (2, 3, 4)
  unet_width: float = 1.0
  frame_length: int = 1022
  frame_step: int = 256
  log_offset: float = 1e-3
  use_video: bool = True
  pit_weight: float = 0.0
  video_norm: bool = False
  freeze_video: bool = False
  phase_input: bool = True
  dtype: Dtype = jnp.float32

  def setup(self):
    if self.use_video:
      self.sync_net = multisensory.MultisensoryNet(
          self.width,
          self.conv5_stride,
          tuple(self.conv4_strides),
          tuple(self.stage_kernel),
          self.dtype,
      )
    self.unet = unet.SeparationUNet(
        encoder_features=tuple(self.encoder_features),
        merge_levels=tuple(self.merge_levels) if self.use_video else (),
        width=self.unet_width,
        video_norm=self.video_norm and self.use_video,
        dtype=self.dtype,
    )

  def __call__(self, video, mixture_waveform, train: bool) -> dict:
    """video [B, N, S, S, 3], mixture [B, n, C] -> on/off_screen, mixture [B, F, T, 1]."""
    x = mixture_waveform.astype(jnp.float32)
    z = stft(jnp.mean(x, axis=-1), self.frame_length, self.frame_step)
    mixture = jnp.log(jnp.abs(z) + self.log_offset)[..., None]  # [B, F, T, 1]
    inputs = mixture
    if self.phase_input:
      inputs = jnp.concatenate(
          [mixture, (jnp.angle(z) / np.pi)[..., None]], axis=-1
      )
    scales = []
    if self.use_video:
      out = self.sync_net(video, x, train and not self.freeze_video)
      scales = [out[k] for k in ("scale1", "scale2", "scale3")]
      if self.freeze_video:
        scales = [jax.lax.stop_gradient(s) for s in scales]
    out = self.unet(inputs, scales, train)
    # The u-net predicts the change from the mixture (a log-domain mask):
    # it starts at the mixture baseline rather than at silence.
    return {
        "on_screen": mixture + out["on_screen"],
        "off_screen": mixture + out["off_screen"],
        "mixture": mixture,
    }


def build_model(config):
  """SeparationNet of `config.model` (see its attributes)."""
  m = config.model
  if m.name != "separation":
    raise ValueError(
        f"config.model.name={m.name!r}: the separation task takes "
        "'separation'"
    )
  return SeparationNet(
      width=m.width,
      conv5_stride=m.get("conv5_stride", 2),
      conv4_strides=tuple(m.get("conv4_strides", (2, 2, 2))),
      stage_kernel=tuple(m.get("stage_kernel", (3, 3, 3))),
      encoder_features=tuple(m.encoder_features),
      merge_levels=tuple(m.merge_levels),
      unet_width=m.unet_width,
      frame_length=m.frame_length,
      frame_step=m.frame_step,
      log_offset=m.log_offset,
      use_video=m.use_video,
      pit_weight=m.get("pit_weight", 0.0),
      video_norm=m.get("video_norm", False),
      freeze_video=m.get("freeze_video", False),
      phase_input=m.get("phase_input", True),
      dtype=config_lib.compute_dtype(m),
  )


def freeze_config(config) -> None:
  """Freezes the video pathway for the whole run: inference-mode sync net, params held."""
  config.model.freeze_video = True
  config.optimizer.freeze = ("sync_net",)
  config.optimizer.freeze_steps = 1 << 30  # held whatever total_steps is


def input_shapes(config) -> dict:
  """Per-example shapes: video [N, S, S, 3] and each waveform [n, C]."""
  d = config.data
  n = int(round(d.mixture.clip_seconds * d.sample_rate))
  channels = int(d.get("channels", 1))
  return {
      "video": (d.mixture.num_frames, d.image_size, d.image_size, 3),
      "mixture_waveform": (n, channels),
      "on_screen_waveform": (n, channels),
      "off_screen_waveform": (n, channels),
  }


def dummy_batch(config, batch_size: int) -> dict:
  """Zeros shaped like a `mixture` batch, for init and compilation."""
  return {
      k: np.zeros((batch_size, *s), np.float32)
      for k, s in input_shapes(config).items()
  }


def init(model, rng, batch):
  from avself.tasks import sync  # pylint: disable=g-import-not-at-top

  return model.init(
      {"params": sync.init_key(rng)},
      batch["video"],
      batch["mixture_waveform"],
      train=False,
  )


def forward(model, variables, batch, train: bool):
  """(outputs, new model state): predicted and true log-magnitudes [B, F, T, 1]."""
  mutable = ["batch_stats"] if train else False
  out = model.apply(
      variables,
      batch["video"],
      batch["mixture_waveform"],
      train,
      mutable=mutable,
  )
  if train:
    out, new_state = out
  else:
    new_state = {k: v for k, v in variables.items() if k != "params"}
  out = dict(  # the model carries the spectrogram's settings
      out,
      true_on_screen=log_magnitude(batch["on_screen_waveform"], model),
      true_off_screen=log_magnitude(batch["off_screen_waveform"], model),
  )
  return out, new_state


def loss_fn(model, params, model_state, batch, rng, train: bool):
  """L1 on both sources' log-magnitudes; audio-only: PIT (the better assignment)."""
  del rng
  out, new_state = forward(
      model, {"params": params, **model_state}, batch, train
  )
  args = (
      out["on_screen"],
      out["off_screen"],
      out["true_on_screen"],
      out["true_off_screen"],
  )
  fixed = unet.l1_loss(*args)
  pit = unet.pit_l1_loss(*args)
  # The model's own loss: L1 when the video says which sound is on screen
  # (plus the PIT term at `pit_weight`); audio only: PIT.
  objective = fixed + model.pit_weight * pit if model.use_video else pit
  mixture = unet.l1_loss(
      out["mixture"], out["mixture"], args[2], args[3]
  )  # the mixture as both estimates
  return objective, (
      {"loss": objective, "l1": fixed, "pit_l1": pit, "mixture_l1": mixture},
      new_state,
  )


def warm_start(config, params, model_state):
  """The sync run in `config.init_from` fills `sync_net` (no-op when empty or audio-only)."""
  from avself.tasks import sync  # pylint: disable=g-import-not-at-top

  workdir = config.get("init_from") or ""
  if not workdir or "sync_net" not in params:
    return params, model_state
  _, step, theirs = sync.restore_run(workdir)
  mine = jax.device_get(
      {
          "params": params["sync_net"],
          **{k: v["sync_net"] for k, v in model_state.items()},
      }
  )
  if jax.tree.structure(mine) != jax.tree.structure(theirs):
    raise ValueError(
        f"config.init_from={workdir!r}: its variables are not this sync net's"
        " (width, strides and stage kernels must match)"
    )
  taken = jax.tree_util.tree_map_with_path(
      lambda path, a, b: sync._take(  # pylint: disable=protected-access
          np.asarray(a), np.asarray(b), jax.tree_util.keystr(path)
      ),
      mine,
      theirs,
  )
  params = dict(params, sync_net=taken["params"])
  model_state = {
      k: dict(v, sync_net=taken[k]) if k in taken else v
      for k, v in model_state.items()
  }
  logging.info(
      "Separation sync_net initialised from %s (step %d)", workdir, step
  )
  return params, model_state
