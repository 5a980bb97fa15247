"""The audio front end: waveforms to spectrograms with tf.signal.

All spectrograms are frequency first, `[..., F, T]`, the layout of the papers'
figures and of the audio trunk's input `[B, F, T, 1]`. Framing never pads
(unless `center=True`), so 1 s at 48 kHz with a 480-sample Hann window, hop 240
and a 512-point FFT gives exactly 257 x 199, the L3-Net input (Sec. 3 of
Arandjelović & Zisserman 2017).

Kinds (`spectrogram_config(kind)` gives each one's presets):
  'log':    log(|STFT| + log_offset), natural log of the magnitude (L3-Net).
  'openl3': OpenL3's kapre-0.1.4 front end: window 512, hop 242 (257 x 197),
            10 * log10(max(|STFT|, 1e-10)) minus the example's maximum,
            floored at -80 dB, so weights imported from OpenL3 see their input.
  'mel':    log(mel(|STFT|) + log_offset) with `num_mel_bins` triangular
            filters from 0 Hz to Nyquist (tf.signal.linear_to_mel_weight_matrix).
  'waveform': no spectrogram: the raw mono waveform [..., N] itself (SoundNet
            and other nets on raw audio), gain applied.
"""

import ml_collections
import tensorflow as tf

KINDS = ("log", "openl3", "mel", "waveform")
_OPENL3_AMIN = 1e-10
_OPENL3_DYNAMIC_RANGE_DB = 80.0


def spectrogram_config(kind: str = "log") -> ml_collections.ConfigDict:
  """Presets of `kind`; every field may be overridden afterwards."""
  if kind not in KINDS:
    raise ValueError(f"spectrogram kind must be one of {KINDS}, got {kind!r}")
  frame_length, frame_step = (512, 242) if kind == "openl3" else (480, 240)
  return ml_collections.ConfigDict(
      dict(
          kind=kind,
          frame_length=frame_length,  # window, samples (10 ms at 48 kHz)
          frame_step=frame_step,  # hop, samples
          fft_length=512,  # F = fft_length // 2 + 1 = 257 for 'log'/'openl3'
          num_mel_bins=128,  # F for 'mel'
          log_offset=1e-6,  # 'log'/'mel': keeps log finite on digital silence
          center=False,  # True: reflect-pad frame_length // 2 each side (librosa)
          mono=True,  # average channels before the spectrogram
      )
  )


def to_mono(waveform: tf.Tensor) -> tf.Tensor:
  """Averages channels: [..., N, C] -> [..., N]."""
  if waveform.shape[-1] == 1:
    return waveform[..., 0]  # a view: no pass over the samples
  return tf.reduce_mean(waveform, axis=-1)


# Framing, the window and the zero padding to fft_length are XLA-compiled into
# one pass; the FFT itself stays TensorFlow's (DUCC) rfft.
@tf.function(jit_compile=True)
def _windowed_frames(
    waveform, frame_length: int, frame_step: int, fft_length: int
):
  """Hann-windowed frames zero-padded to fft_length: [..., N] -> [..., T, fft_length]."""
  frames = tf.signal.frame(waveform, frame_length, frame_step)
  frames *= tf.signal.hann_window(
      frame_length
  )  # periodic, as tf.signal.stft's default
  rank = frames.shape.rank
  return tf.pad(
      frames, [[0, 0]] * (rank - 1) + [[0, fft_length - frame_length]]
  )


def _stft(waveform, frame_length, frame_step, fft_length, center):
  """Complex STFT of [..., N] with a periodic Hann window, no end padding -> [..., T, F]."""
  waveform = tf.convert_to_tensor(waveform, tf.float32)
  if center:
    pad = frame_length // 2
    rank = waveform.shape.rank
    waveform = tf.pad(
        waveform, [[0, 0]] * (rank - 1) + [[pad, pad]], mode="REFLECT"
    )
  return tf.signal.rfft(
      _windowed_frames(waveform, frame_length, frame_step, fft_length)
  )


def _gain(gain) -> tf.Tensor:
  """Amplitude factors shaped [..., 1, 1] to scale a [..., F, T] magnitude."""
  gain = tf.convert_to_tensor(1.0 if gain is None else gain, tf.float32)
  return gain[..., None, None] if gain.shape.rank else gain


# The element-wise tail after the FFT is XLA-compiled: fusing |.|, the gain,
# the log and the transpose into one pass halves the CPU cost of a batch.
@tf.function(jit_compile=True)
def _magnitude(stft, gain):
  """gain * |stft|: [..., T, F] complex -> [..., F, T] (sqrt(re^2 + im^2), cheaper than hypot)."""
  power = tf.math.square(tf.math.real(stft)) + tf.math.square(
      tf.math.imag(stft)
  )
  return tf.linalg.matrix_transpose(tf.sqrt(power)) * gain


@tf.function(jit_compile=True)
def _log_magnitude(stft, gain, log_offset):
  return tf.math.log(_magnitude(stft, gain) + log_offset)


@tf.function(jit_compile=True)
def _openl3_decibels(stft, gain):
  magnitude = tf.maximum(_magnitude(stft, gain), _OPENL3_AMIN)
  decibels = 10.0 / tf.math.log(10.0) * tf.math.log(magnitude)
  peak = tf.reduce_max(decibels, axis=[-2, -1], keepdims=True)
  return tf.maximum(decibels - peak, -_OPENL3_DYNAMIC_RANGE_DB)


# `gain` (per waveform, shape waveform.shape[:-1]) gives exactly the spectrogram
# of waveform * gain, as the STFT is linear, without a pass over the samples.


def log_spectrogram(
    waveform,
    *,
    frame_length: int = 480,
    frame_step: int = 240,
    fft_length: int = 512,
    log_offset: float = 1e-6,
    center: bool = False,
    gain=None,
) -> tf.Tensor:
  """log(|STFT(waveform)| + log_offset): mono [..., N] -> [..., F, T]."""
  stft = _stft(waveform, frame_length, frame_step, fft_length, center)
  return _log_magnitude(stft, _gain(gain), tf.constant(log_offset, tf.float32))


def openl3_spectrogram(
    waveform,
    *,
    frame_length: int = 512,
    frame_step: int = 242,
    fft_length: int = 512,
    center: bool = False,
    gain=None,
) -> tf.Tensor:
  """OpenL3's decibel magnitude, relative to each example's maximum: [..., N] -> [..., F, T]."""
  stft = _stft(waveform, frame_length, frame_step, fft_length, center)
  return _openl3_decibels(stft, _gain(gain))


def log_mel_spectrogram(
    waveform,
    *,
    sample_rate: int,
    num_mel_bins: int = 128,
    frame_length: int = 480,
    frame_step: int = 240,
    fft_length: int = 512,
    log_offset: float = 1e-6,
    center: bool = False,
    gain=None,
) -> tf.Tensor:
  """log(mel(|STFT|) + log_offset): mono [..., N] -> [..., num_mel_bins, T]."""
  stft = _stft(waveform, frame_length, frame_step, fft_length, center)
  magnitude = _magnitude(stft, _gain(gain))  # [..., F, T]
  mel_matrix = tf.signal.linear_to_mel_weight_matrix(
      num_mel_bins=num_mel_bins,
      num_spectrogram_bins=fft_length // 2 + 1,
      sample_rate=float(sample_rate),
      lower_edge_hertz=0.0,
      upper_edge_hertz=sample_rate / 2.0,
  )  # [F, M]
  mel = tf.linalg.matmul(mel_matrix, magnitude, transpose_a=True)  # [..., M, T]
  return tf.math.log(mel + log_offset)


def spectrogram(
    waveform, spec_config, *, sample_rate: int = 48000, gain=None
) -> tf.Tensor:
  """The configured spectrogram of mono [..., N] -> [..., F, T] float32.

  `gain` (optional, shape [...]) scales each waveform's amplitude.
  """
  c = spec_config
  framing = dict(
      frame_length=c.frame_length,
      frame_step=c.frame_step,
      fft_length=c.fft_length,
      center=c.center,
      gain=gain,
  )
  if c.kind == "log":
    return log_spectrogram(waveform, log_offset=c.log_offset, **framing)
  if c.kind == "openl3":
    return openl3_spectrogram(waveform, **framing)
  if c.kind == "waveform":
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    if gain is None:
      return waveform
    gain = tf.convert_to_tensor(gain, tf.float32)
    return waveform * (gain[..., None] if gain.shape.rank else gain)
  if c.kind == "mel":
    return log_mel_spectrogram(
        waveform,
        sample_rate=sample_rate,
        num_mel_bins=c.num_mel_bins,
        log_offset=c.log_offset,
        **framing,
    )
  raise ValueError(f"spectrogram kind must be one of {KINDS}, got {c.kind!r}")


def spectrogram_shape(spec_config, num_samples: int) -> tuple[int, int]:
  """(F, T) of the spectrogram of `num_samples` samples, without TensorFlow."""
  c = spec_config
  if c.kind not in KINDS:
    raise ValueError(f"spectrogram kind must be one of {KINDS}, got {c.kind!r}")
  if c.kind == "waveform":
    raise ValueError("spectrogram kind 'waveform' has no (F, T) shape")
  length = num_samples + (2 * (c.frame_length // 2) if c.center else 0)
  if length < c.frame_length:
    raise ValueError(
        f"{num_samples} samples are shorter than one frame ({c.frame_length})"
    )
  num_bins = c.num_mel_bins if c.kind == "mel" else c.fft_length // 2 + 1
  return num_bins, 1 + (length - c.frame_length) // c.frame_step
