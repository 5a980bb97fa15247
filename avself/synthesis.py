"""Sound features per video step and waveforms from them (sonorization).

Features: log mel band energies, `steps_per_frame` steps per video frame,
each step `hop` = sample_rate / (fps * steps_per_frame) samples, a Hann
window of 2 * hop centred on the step's middle. Log mel rather than
cochleagram envelopes (Owens et al. 2016): both are smooth band energies on a
perceptual frequency scale, but a mel power spectrogram has a maintained
inverse (`librosa.feature.inverse.mel_to_audio`, Griffin-Lim), so the
parametric waveform inverts exactly the features the net predicts.

Waveforms, both from the predicted features [T, M]:
  example-based  `ExampleIndex`: the training sound whose features are
                 nearest (L2), per segment of `segment_steps` steps, every
                 step of every training video a candidate; crossfaded.
  parametric     `griffin_lim`: librosa's mel inverse and Griffin-Lim.

`onsets` detects onsets in a feature sequence (positive spectral flux,
peak-picked); `onset_f1` scores them against true onsets within a tolerance.
"""

import dataclasses
import functools
import os

import numpy as np

LOG_FLOOR = 1e-4  # mel power floor (-40 dB re a full-scale sine's band)


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
  """The feature geometry a run regresses (from its config)."""

  sample_rate: int
  fps: float
  steps_per_frame: int
  num_bands: int

  @property
  def hop(self) -> int:
    hop = self.sample_rate / (self.fps * self.steps_per_frame)
    if abs(hop - round(hop)) > 1e-6:
      raise ValueError(
          f"sample_rate {self.sample_rate} is not a whole number of samples "
          f"per step at {self.fps:g} fps x {self.steps_per_frame} steps"
      )
    return int(round(hop))

  @property
  def window(self) -> int:
    return 2 * self.hop

  @property
  def fft_length(self) -> int:
    return int(2 ** np.ceil(np.log2(self.window)))

  @property
  def step_seconds(self) -> float:
    return self.hop / self.sample_rate


def feature_spec(config) -> FeatureSpec:
  """The run's FeatureSpec: `config.sonorize` and the data's rates."""
  s, d = config.sonorize, config.data
  return FeatureSpec(
      sample_rate=int(d.sample_rate),
      fps=float(d.clip.num_frames) / float(d.clip.clip_seconds),
      steps_per_frame=int(s.steps_per_frame),
      num_bands=int(s.num_bands),
  )


@functools.lru_cache(maxsize=8)
def mel_matrix(spec: FeatureSpec) -> np.ndarray:
  """librosa's (Slaney) mel filterbank [fft_length // 2 + 1, M], float32."""
  import librosa  # pylint: disable=g-import-not-at-top

  return librosa.filters.mel(
      sr=spec.sample_rate, n_fft=spec.fft_length, n_mels=spec.num_bands
  ).T.astype(np.float32)


def log_mel(waveform, spec: FeatureSpec, xp=np):
  """waveform [..., n] (mono) -> log mel power [..., n // hop, M].

  `xp` is numpy or jax.numpy (the loss computes targets on the device).
  Step j is centred on sample j * hop + hop / 2: the middle of its step.
  """
  hop, win = spec.hop, spec.window
  steps = waveform.shape[-1] // hop
  pad = [(0, 0)] * (waveform.ndim - 1) + [(hop // 2, hop // 2 + win)]
  padded = xp.pad(waveform[..., : steps * hop], pad)
  index = np.arange(steps)[:, None] * hop + np.arange(win)[None, :]
  frames = padded[..., index] * np.hanning(win + 1)[:-1].astype(np.float32)
  power = xp.abs(xp.fft.rfft(frames, n=spec.fft_length, axis=-1)) ** 2
  return xp.log(power @ mel_matrix(spec) + LOG_FLOOR)


# ### Onsets ##################################################################


def onset_strength(features: np.ndarray) -> np.ndarray:
  """[T, M] -> [T]: the mean over bands of the rise of each band since the last step."""
  rise = np.maximum(np.diff(features, axis=0, prepend=features[:1]), 0.0)
  return rise.mean(-1)


def onsets(
    features: np.ndarray, spec: FeatureSpec, threshold: float, gap: float = 0.1
) -> np.ndarray:
  """Onset times (s, step starts) of [T, M]: flux peaks above `threshold`, `gap` s apart."""
  flux = onset_strength(features)
  radius = max(1, int(round(gap / spec.step_seconds / 2)))
  padded = np.pad(flux, radius, constant_values=-np.inf)
  window = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)
  peaks = np.flatnonzero((flux >= window.max(-1)) & (flux > threshold))
  keep, last = [], -np.inf
  for p in peaks:
    if (p - last) * spec.step_seconds >= gap:
      keep.append(p)
      last = p
  return np.asarray(keep, np.float64) * spec.step_seconds


def match_onsets(
    predicted: np.ndarray, true: np.ndarray, tolerance: float
) -> int:
  """How many predicted onsets lie within `tolerance` s of a true one (each used once)."""
  used = np.zeros(len(true), bool)
  hits = 0
  for t in np.sort(predicted):
    free = np.flatnonzero(~used & (np.abs(true - t) <= tolerance))
    if free.size:
      used[free[np.argmin(np.abs(true[free] - t))]] = True
      hits += 1
  return hits


def f1(hits: int, num_predicted: int, num_true: int) -> float:
  """F1 of `hits` matches among `num_predicted` predictions and `num_true` truths."""
  if num_predicted + num_true == 0:
    return 1.0
  return 2.0 * hits / (num_predicted + num_true)


def envelope(features: np.ndarray) -> np.ndarray:
  """Loudness per step [T]: the log of the total mel power."""
  return np.log(np.exp(features).sum(-1))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
  """Pearson correlation; 0 where either is constant."""
  a, b = a - a.mean(), b - b.mean()
  norm = np.sqrt((a * a).sum() * (b * b).sum())
  return float((a * b).sum() / norm) if norm > 1e-12 else 0.0


# ### Parametric: Griffin-Lim #################################################


def griffin_lim(
    features: np.ndarray, spec: FeatureSpec, iterations: int = 32
) -> np.ndarray:
  """Log mel [T, M] -> waveform [T * hop] (librosa mel inverse, Griffin-Lim)."""
  import librosa  # pylint: disable=g-import-not-at-top

  power = np.maximum(np.exp(features.astype(np.float64)) - LOG_FLOOR, 0.0)
  magnitude = librosa.feature.inverse.mel_to_stft(
      power.T, sr=spec.sample_rate, n_fft=spec.fft_length, power=2.0
  )
  # librosa's centred frames: one more than our steps (the end's).
  magnitude = np.concatenate([magnitude, magnitude[:, -1:]], axis=1)
  wave = librosa.griffinlim(
      magnitude,
      n_iter=iterations,
      hop_length=spec.hop,
      win_length=spec.window,
      window="hann",
      center=True,
      length=len(features) * spec.hop,
      random_state=0,
  )
  # librosa centres step j on j * hop; ours is centred on j * hop + hop / 2.
  wave = np.concatenate([np.zeros(spec.hop // 2), wave])[
      : len(features) * spec.hop
  ]
  return np.clip(wave, -1.0, 1.0).astype(np.float32)


# ### Example-based: the nearest training sound ###############################


class ExampleIndex:
  """Every training video's features and sound; nearest segments by L2.

  Attributes:
    features: [S, M] the training videos' features, end to end.
    waveform: [S * hop] float32 their sound (int16 on disk).
    starts: [V + 1] each video's first step in `features` (and the end).
    labels: [V] their class (-1: none).
  """

  def __init__(self, features, waveform, starts, labels, spec: FeatureSpec):
    self.features = np.asarray(features, np.float32)
    self.waveform = np.asarray(waveform, np.float32)
    self.starts = np.asarray(starts, np.int64)
    self.labels = np.asarray(labels, np.int64)
    self.spec = spec

  def save(self, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez(
        tmp,
        features=self.features.astype(np.float16),
        waveform=np.round(np.clip(self.waveform, -1, 1) * 32767).astype(
            np.int16
        ),
        starts=self.starts,
        labels=self.labels,
        spec=np.asarray(
            [
                self.spec.sample_rate,
                self.spec.fps,
                self.spec.steps_per_frame,
                self.spec.num_bands,
            ],
            np.float64,
        ),
    )
    os.replace(tmp, path)
    return path

  @classmethod
  def load(cls, path: str) -> "ExampleIndex":
    with np.load(path) as z:
      sr, fps, spf, bands = z["spec"]
      spec = FeatureSpec(int(sr), float(fps), int(spf), int(bands))
      return cls(
          z["features"].astype(np.float32),
          z["waveform"].astype(np.float32) / 32767.0,
          z["starts"],
          z["labels"],
          spec,
      )

  @property
  def num_videos(self) -> int:
    return len(self.labels)

  def video_features(self, v: int) -> np.ndarray:
    return self.features[self.starts[v] : self.starts[v + 1]]

  def candidates(self, length: int) -> np.ndarray:
    """Every first step from which `length` steps stay inside one video."""
    out = [
        np.arange(a, b - length + 1)
        for a, b in zip(self.starts[:-1], self.starts[1:])
        if b - a >= length
    ]
    return np.concatenate(out) if out else np.zeros(0, np.int64)

  def nearest(self, query: np.ndarray) -> int:
    """First step of the training segment nearest (L2) to `query` [L, M]."""
    length = len(query)
    firsts = self.candidates(length)
    if not firsts.size:
      raise ValueError(f"no training video has {length} steps")
    # |F[c:c+L] - q|^2 = sum |F[c+l]|^2 - 2 sum F[c+l].q[l] + const, for
    # every c at once: O(S L M) without copying the S windows.
    f = self.features
    products = f @ query.T  # [S, L]
    count = len(f) - length + 1
    cross = np.zeros(count, np.float64)
    for l in range(length):
      cross += products[l : l + count, l]
    energy = np.concatenate(
        [[0.0], np.cumsum((f.astype(np.float64) ** 2).sum(-1))]
    )
    distance = energy[length:] - energy[:-length] - 2.0 * cross
    return int(firsts[np.argmin(distance[firsts])])

  def synthesize(
      self, features: np.ndarray, segment_steps: int, fade_steps: int = 1
  ) -> tuple[np.ndarray, np.ndarray]:
    """Predicted [T, M] -> (waveform [T * hop], first training step per segment).

    Consecutive segments of `segment_steps` (the last one shorter) each take
    the nearest training segment's sound; neighbours overlap by a linear
    crossfade of `fade_steps` steps (taken from the training sound after
    the segment), so no click is heard where they meet.
    """
    hop = self.spec.hop
    total = len(features) * hop
    out = np.zeros(total + fade_steps * hop, np.float32)
    fade = fade_steps * hop
    ramp = np.linspace(0.0, 1.0, fade, endpoint=False, dtype=np.float32)
    chosen = []
    for begin in range(0, len(features), segment_steps):
      query = features[begin : begin + segment_steps]
      first = self.nearest(query)
      chosen.append(first)
      piece = self.waveform[first * hop : (first + len(query)) * hop + fade]
      piece = np.pad(piece, (0, len(query) * hop + fade - len(piece)))
      if begin and fade:
        piece = piece.copy()
        piece[:fade] *= ramp
        out[begin * hop : begin * hop + fade] *= 1.0 - ramp
      out[begin * hop : begin * hop + len(piece)] += piece
    return out[:total], np.asarray(chosen, np.int64)
