"""The audio front end against NumPy/SciPy references."""

import numpy as np
import pytest
import scipy.signal
import tensorflow as tf

from avself.data import audio


def _signal(num_samples, seed=0, batch=()):
  """Broadband test audio: a few tones plus noise, so no bin is near zero."""
  rng = np.random.default_rng(seed)
  t = np.arange(num_samples) / 48000.0
  tones = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (440.0, 1234.5, 7000.0))
  return (tones + 0.05 * rng.standard_normal(batch + (num_samples,))).astype(
      np.float32
  )


def _reference_magnitude(x, frame_length, frame_step, fft_length):
  """|STFT| [F, T] by hand: periodic Hann-windowed frames, zero-padded rfft (float64)."""
  count = 1 + (len(x) - frame_length) // frame_step
  n = np.arange(frame_length)
  window = 0.5 - 0.5 * np.cos(2 * np.pi * n / frame_length)  # periodic Hann
  frames = np.stack(
      [x[i * frame_step : i * frame_step + frame_length] for i in range(count)]
  )
  return np.abs(np.fft.rfft(frames.astype(np.float64) * window, n=fft_length)).T


def _assert_log_magnitude_close(got, magnitude, log_offset=1e-6):
  """got = log(magnitude + offset) up to float32 FFT rounding (relative to the peak)."""
  np.testing.assert_allclose(
      np.exp(got) - log_offset,
      magnitude,
      rtol=1e-4,
      atol=1e-6 * magnitude.max(),
  )


def test_l3_shape_is_257_by_199_for_one_second_at_48k():
  x = _signal(48000)
  spec = audio.log_spectrogram(x)
  assert spec.shape == (257, 199)
  assert audio.spectrogram_shape(audio.spectrogram_config("log"), 48000) == (
      257,
      199,
  )


def test_openl3_variant_has_197_frames():
  config = audio.spectrogram_config("openl3")
  assert (config.frame_length, config.frame_step) == (512, 242)
  assert audio.spectrogram(_signal(48000), config).shape == (257, 197)
  assert audio.spectrogram_shape(config, 48000) == (257, 197)


def test_log_spectrogram_matches_numpy_and_scipy():
  x = _signal(48000)
  got = audio.log_spectrogram(x).numpy()
  _assert_log_magnitude_close(got, _reference_magnitude(x, 480, 240, 512))
  # scipy's 'spectrum' scaling divides by the window sum; undo it.
  _, _, z = scipy.signal.stft(
      x.astype(np.float64),
      window="hann",
      nperseg=480,
      noverlap=240,
      nfft=512,
      boundary=None,
      padded=False,
      detrend=False,
  )
  window_sum = scipy.signal.get_window("hann", 480).sum()
  _assert_log_magnitude_close(got, np.abs(z) * window_sum)


def test_offset_keeps_silence_finite():
  spec = audio.log_spectrogram(
      np.zeros(4800, np.float32), log_offset=1e-6
  ).numpy()
  np.testing.assert_allclose(spec, np.log(1e-6), rtol=1e-6)


def test_center_pads_by_reflection():
  x = _signal(4800)
  got = audio.log_spectrogram(x, center=True).numpy()
  padded = np.pad(x, 240, mode="reflect")
  _assert_log_magnitude_close(got, _reference_magnitude(padded, 480, 240, 512))
  config = audio.spectrogram_config("log")
  config.center = True
  assert (
      got.shape
      == audio.spectrogram_shape(config, 4800)
      == (257, 1 + 4800 // 240)
  )


def test_openl3_decibels_match_kapre_formula():
  x = _signal(48000, seed=1)
  got = audio.spectrogram(x, audio.spectrogram_config("openl3")).numpy()
  decibels = 10 * np.log10(
      np.maximum(_reference_magnitude(x, 512, 242, 512), 1e-10)
  )
  want = np.maximum(decibels - decibels.max(), -80.0)
  loud = want > -60.0  # float32 FFT rounding dominates the quietest bins
  np.testing.assert_allclose(got[loud], want[loud], atol=2e-3)
  np.testing.assert_allclose(got, want, atol=0.1)
  assert got.max() == pytest.approx(0.0, abs=1e-6)


def test_mel_is_log_of_mel_weighted_magnitude():
  config = audio.spectrogram_config("mel")
  config.num_mel_bins = 64
  x = _signal(16000, seed=2)
  got = audio.spectrogram(x, config, sample_rate=16000).numpy()
  weights = tf.signal.linear_to_mel_weight_matrix(
      64, 257, 16000, 0.0, 8000.0
  ).numpy()
  _assert_log_magnitude_close(
      got, weights.T @ _reference_magnitude(x, 480, 240, 512)
  )
  assert got.shape == audio.spectrogram_shape(config, 16000) == (64, 65)


@pytest.mark.parametrize("kind", audio.KINDS)
def test_batched_equals_one_by_one_and_gain_equals_scaled_waveform(kind):
  config = audio.spectrogram_config(kind)
  x = _signal(9600, seed=3, batch=(3,))
  gain = np.array([0.9, 1.0, 1.1], np.float32)
  batched = audio.spectrogram(x, config, gain=gain).numpy()
  for i in range(3):
    one = audio.spectrogram(x[i] * gain[i], config).numpy()
    np.testing.assert_allclose(batched[i], one, atol=1e-3)


def test_to_mono_averages_channels():
  x = np.stack([np.ones(10), 3 * np.ones(10)], -1).astype(np.float32)
  np.testing.assert_allclose(audio.to_mono(x), 2 * np.ones(10))
  np.testing.assert_allclose(audio.to_mono(x[:, :1]), np.ones(10))


def test_shape_rejects_unknown_kind_and_too_short_audio():
  config = audio.spectrogram_config("log")
  with pytest.raises(ValueError, match="shorter than one frame"):
    audio.spectrogram_shape(config, 100)
  config.kind = "cqt"
  with pytest.raises(ValueError, match="kind"):
    audio.spectrogram_shape(config, 48000)
  with pytest.raises(ValueError, match="kind"):
    audio.spectrogram_config("cqt")
