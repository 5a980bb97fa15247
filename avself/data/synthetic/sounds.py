"""Sounds: each source's audio (stems) and the clip's mix."""

import math

import numpy as np

from avself.data.synthetic import scene as scene_lib

_MIX_PEAK = 0.8  # the mix is scaled to this peak, leaving AAC headroom
_TABLE = 4096  # wavetable length, a power of 2


def _periodic(table_fn, f0, num_samples, sample_rate, phase=0.0):
  """table_fn's period played at f0 Hz, offset by phase (cycles): [S]."""
  # A table lookup is ~8x cheaper than np.sin over the whole clip.
  table = table_fn(np.arange(_TABLE) / _TABLE)  # one period, [_TABLE]
  idx = np.arange(num_samples) * (f0 * _TABLE / sample_rate) + phase * _TABLE
  return table[idx.astype(np.int64) & (_TABLE - 1)]


def _class_wave(cls, f0, num_samples, sample_rate, rng):
  """The class's steady sound at fundamental f0: [S] float32, RMS ~0.7."""
  nyquist = 0.45 * sample_rate
  t = np.arange(num_samples) / sample_rate
  if cls.timbre in ("harmonic", "odd_harmonic"):
    ns = range(1, 7) if cls.timbre == "harmonic" else range(1, 9, 2)
    ns = [n for n in ns if n * f0 < nyquist]
    amps = [1 / n**2 if cls.timbre == "harmonic" else 1 / n for n in ns]
    phases = rng.uniform(0, 1, len(ns))

    def period(p):
      return sum(
          a * np.sin(2 * np.pi * (n * p + q))
          for n, a, q in zip(ns, amps, phases)
      )

    wave = _periodic(period, f0, num_samples, sample_rate, rng.uniform())
  elif cls.timbre == "tremolo":  # 7 Hz amplitude modulation, 50% deep
    wave = _periodic(
        lambda p: np.sin(2 * np.pi * p),
        f0,
        num_samples,
        sample_rate,
        rng.uniform(),
    )
    wave = wave * (1 - 0.5 * (0.5 + 0.5 * np.sin(2 * np.pi * 7 * t)))
  elif cls.timbre == "vibrato":  # 5 Hz frequency modulation, +-3%
    mod = 0.03 * f0 / (2 * np.pi * 5) * np.sin(2 * np.pi * 5 * t)
    wave = _periodic(
        lambda p: np.sin(2 * np.pi * p),
        f0,
        num_samples,
        sample_rate,
        mod + rng.uniform(),
    )
  elif cls.timbre == "noise_band":
    # Complex noise, smooth at a rate of 10% of f0, shifted up to f0: a band
    # of noise around f0 without an FFT of the whole clip.
    rate = 0.1 * f0
    knots = int(math.ceil(num_samples / sample_rate * rate)) + 2
    z = rng.normal(size=knots) + 1j * rng.normal(size=knots)
    at = t * rate
    z = np.interp(at, np.arange(knots), z.real) + 1j * np.interp(
        at, np.arange(knots), z.imag
    )
    carrier = _periodic(
        lambda p: np.exp(2j * np.pi * p), f0, num_samples, sample_rate
    )
    wave = (z * carrier).real
  else:
    raise ValueError(cls.timbre)
  wave = wave.astype(np.float32)
  return wave * np.float32(0.7071 / max(np.sqrt(np.mean(wave**2)), 1e-8))


def _envelope(events, num_samples, sample_rate, hum_level):
  """Loudness: a hum plus a 3 ms attack / 80 ms decay burst per event. [S]."""
  env = np.full(num_samples, hum_level, np.float32)
  tail = np.arange(int(0.6 * sample_rate)) / sample_rate
  burst = ((1 - np.exp(-tail / 0.003)) * np.exp(-tail / 0.08)).astype(
      np.float32
  )
  for t in events:
    start = int(round(t * sample_rate))
    n = min(len(burst), num_samples - start)
    env[start : start + n] += burst[:n]
  return env


def _pan(mono, position):
  """Equal-power pan of [S] by position in [0, 1] (scalar or [S]): [S, 2]."""
  angle = np.asarray(position, np.float32) * (np.pi / 2)
  return np.stack([mono * np.cos(angle), mono * np.sin(angle)], axis=-1)


def background_noise(rng, options):
  """Off-screen noise [S] whose level and colour wander, or None.

  Two noises, one dark (-6 dB/octave) and one bright (+3 dB/octave), each
  with its own loudness drawn afresh every 0.5 s (uniform in [0,
  background_noise] RMS, linearly interpolated), so the noise changes within
  a clip and tells nothing about which clip it is in.
  """
  if options.background_noise <= 0:
    return None
  n, sr = options.num_samples, options.sample_rate
  freqs = np.maximum(np.fft.rfftfreq(n, 1 / sr), 50.0) / 1000.0
  knots = np.arange(int(math.ceil(options.duration / 0.5)) + 1) * 0.5
  times = np.arange(n) / sr
  noise = np.zeros(n, np.float32)
  for tilt_db in (-6.0, 3.0):
    spectrum = rng.normal(size=freqs.size) + 1j * rng.normal(size=freqs.size)
    colored = np.fft.irfft(spectrum * freqs ** (tilt_db / 6.02), n)
    colored /= max(float(np.sqrt(np.mean(colored**2))), 1e-8)
    level = np.interp(
        times, knots, rng.uniform(0, options.background_noise, knots.size)
    )
    noise += (level * colored).astype(np.float32)
  return noise


def render_audio(rng, options, objects, offscreen, noise=None):
  """Stems at the mix's gain: dict of float32 [S] or [S, C], and that gain."""
  sr, n = options.sample_rate, options.num_samples
  stems = {}

  def source(spec):
    wave = _class_wave(spec["cls"], scene_lib.fundamental(spec), n, sr, rng)
    envelope = _envelope(spec["events"], n, sr, options.hum_level)
    envelope += np.float32(options.voice) * scene_lib.voice(
        spec, np.arange(n) / sr
    )
    return np.float32(spec["gain"]) * envelope * wave

  for i, obj in enumerate(objects):
    sound = source(obj) if obj["sounding"] else np.zeros(n, np.float32)
    if options.channels == 2:  # pan by where the object is on screen
      cx, _ = scene_lib.centres(obj, np.arange(0, n, 64) / sr)
      pos = np.interp(np.arange(n), np.arange(0, n, 64), cx / options.size)
      sound = _pan(sound, pos)
    stems[f"object_{i}"] = sound.astype(np.float32)
  shape = (n,) if options.channels == 1 else (n, 2)
  off = np.zeros(shape, np.float32)
  if offscreen is not None:
    off = source(offscreen)
    if options.channels == 2:
      off = _pan(off, offscreen["pan"])
  if noise is not None:  # diffuse: the same in both channels
    off = off + (noise if options.channels == 1 else noise[:, None])
  on = sum(stems[f"object_{i}"] for i in range(len(objects)))
  peak = float(np.abs(on + off).max())
  gain = _MIX_PEAK / peak if peak > 0 else 1.0
  stems = {
      k: (v * np.float32(gain)).astype(np.float32) for k, v in stems.items()
  }
  stems["on_screen"] = sum(stems[f"object_{i}"] for i in range(len(objects)))
  stems["off_screen"] = (off * np.float32(gain)).astype(np.float32)
  return stems, gain
