r"""Sound-texture statistics and their k-means clusters: ambient-sound targets.

Owens, Wu, McDermott, Freeman & Torralba (ECCV 2016, Sec. 3) summarise a
clip's sound by the statistics of McDermott & Simoncelli's texture model
(Neuron 2011) and train a vision net to predict the k-means cluster of a
frame's sound. Here, in NumPy/SciPy:

  cochleagram  |STFT|^2 (scipy.signal.stft, 25 ms Hann windows, 10 ms hop)
               summed through `num_bands` half-cosine filters evenly spaced on
               the ERB-number scale between 20 Hz and Nyquist (the texture
               model's filter shape; on the STFT instead of a time-domain
               filterbank, which is ~50x cheaper and gives the same subband
               power envelopes at a 100 Hz envelope rate), then the square
               root (subband amplitude envelopes) compressed by ^0.3.
  statistics   per band: mean, coefficient of variation (std / mean);
               between bands: correlations of the envelopes (upper triangle);
               per band: modulation power in octave bands from 0.5 Hz up
               (the envelope's power spectrum, as a fraction of its variance).

32 bands give 32 + 32 + 496 + 32 * 6 = 752 numbers per clip. Statistics are
z-scored over the training clips before clustering (scikit-learn
StandardScaler + KMeans, `n_init` restarts, seeded): reproducible for a seed.

  python -m avself.data.texture --records=/data/records --workdir=/runs/ambient \
      --num_clusters=30 [--audio_seconds=3.75]

writes WORKDIR/ambient/clusters.npz (centres, scaler, options) and the
per-frame targets (`avself.data.targets`), which the `ambient` task makes on
its own when they are absent.
"""

import json
import os

from absl import app
from absl import flags
from absl import logging
import numpy as np
from scipy import signal
from sklearn import cluster
from sklearn import preprocessing

from avself.data import targets

MODULATION_BANDS = 6  # octaves from 0.5 Hz: 0.5-1, 1-2, ..., 16-32 Hz


def erb_number(hz):
  """Glasberg & Moore's ERB-number scale (Cams)."""
  return 21.4 * np.log10(1.0 + 0.00437 * np.asarray(hz, np.float64))


def erb_filterbank(
    num_bands: int, sample_rate: int, fft_length: int, low_hz: float = 20.0
) -> np.ndarray:
  """Half-cosine filters evenly spaced in ERB number: [num_bands, fft_length // 2 + 1].

  Each filter spans its two neighbours' centres (as in McDermott & Simoncelli
  2011), so adjacent filters overlap by half and their squares sum to ~1.
  """
  freqs = np.fft.rfftfreq(fft_length, 1.0 / sample_rate)
  lo, hi = erb_number(low_hz), erb_number(sample_rate / 2)
  edges = np.linspace(
      lo, hi, num_bands + 2
  )  # band k spans edges[k]..edges[k+2]
  cams = erb_number(freqs)
  bank = np.zeros((num_bands, len(freqs)))
  for k in range(num_bands):
    a, b = edges[k], edges[k + 2]
    inside = (cams > a) & (cams < b)
    bank[k, inside] = np.cos((cams[inside] - (a + b) / 2) / (b - a) * np.pi)
  return bank


def cochleagram(
    waveform: np.ndarray, sample_rate: int, num_bands: int = 32
) -> np.ndarray:
  """Compressed subband envelopes [num_bands, T] at a 100 Hz frame rate."""
  window = int(round(0.025 * sample_rate))
  hop = int(round(0.010 * sample_rate))
  fft_length = int(2 ** np.ceil(np.log2(window)))
  _, _, spec = signal.stft(
      np.asarray(waveform, np.float64),
      sample_rate,
      window="hann",
      nperseg=window,
      noverlap=window - hop,
      nfft=fft_length,
      boundary=None,
      padded=False,
  )
  power = np.abs(spec) ** 2  # [F, T]
  bank = erb_filterbank(num_bands, sample_rate, fft_length)
  return np.sqrt(bank**2 @ power) ** 0.3


def texture_statistics(
    waveform: np.ndarray, sample_rate: int, num_bands: int = 32
) -> np.ndarray:
  """The texture statistics of one mono clip: [2B + B(B-1)/2 + 6B] float64."""
  env = cochleagram(waveform, sample_rate, num_bands)  # [B, T]
  mean = env.mean(axis=1)
  std = env.std(axis=1)
  eps = 1e-8
  cv = std / (mean + eps)
  centred = env - mean[:, None]
  cov = centred @ centred.T / env.shape[1]
  corr = cov / (np.outer(std, std) + eps)
  upper = corr[np.triu_indices(num_bands, k=1)]
  # Modulation power: the envelope's power spectrum, summed in octave bands,
  # as a fraction of the envelope's variance.
  frame_rate = 100.0
  spectrum = np.abs(np.fft.rfft(centred, axis=1)) ** 2
  mod_freqs = np.fft.rfftfreq(env.shape[1], 1.0 / frame_rate)
  total = spectrum[:, 1:].sum(axis=1) + eps
  modulation = np.stack(
      [
          spectrum[:, (mod_freqs >= lo) & (mod_freqs < 2 * lo)].sum(axis=1)
          / total
          for lo in 0.5 * 2.0 ** np.arange(MODULATION_BANDS)
      ],
      axis=1,
  ).ravel()
  return np.concatenate([mean, cv, upper, modulation])


def fit_clusters(statistics: np.ndarray, num_clusters: int, seed: int = 0):
  """(scaler, KMeans) fitted on z-scored statistics [N, D]; refuses k > N."""
  n = len(statistics)
  if num_clusters > n:
    raise ValueError(
        f"num_clusters={num_clusters} is larger than the {n} clips to cluster"
    )
  if num_clusters < 2:
    raise ValueError(f"num_clusters must be at least 2, got {num_clusters}")
  scaler = preprocessing.StandardScaler().fit(statistics)
  kmeans = cluster.KMeans(n_clusters=num_clusters, n_init=10, random_state=seed)
  kmeans.fit(scaler.transform(statistics))
  return scaler, kmeans


def _window_centres(num_samples, sample_rate, window, hop_seconds):
  """Centres (samples) of windows every `hop_seconds` that fit in the audio."""
  hop = int(round(hop_seconds * sample_rate))
  starts = np.arange(0, num_samples - window + 1, hop)
  return starts + window // 2


def build_targets(
    records_dir: str,
    out_dir: str,
    *,
    split: str = "train",
    num_clusters: int = 30,
    audio_seconds: float = 3.75,
    hop_seconds: float = 0.5,
    num_bands: int = 32,
    seed: int = 0,
) -> dict:
  """Clusters the texture statistics of `split`'s windows; writes centres and per-frame targets.

  Windows of `audio_seconds` every `hop_seconds` (only the span both audio and
  frames cover); every frame's target is the one-hot cluster of the window
  whose centre is nearest its time. Returns the paths written.
  """
  videos = []
  stats = []
  for video in targets.read_videos(records_dir, split):
    rate = int(video["sample_rate"])
    wave = video["waveform"].mean(axis=1)
    num_frames = len(video["frames"])
    usable = min(len(wave), int(num_frames * rate / float(video["fps"])))
    window = int(round(audio_seconds * rate))
    centres = _window_centres(usable, rate, window, hop_seconds)
    if not len(centres):
      logging.warning(
          "texture: %s is shorter than one %.2f s window: skipped",
          video["video_id"],
          audio_seconds,
      )
      continue
    for c in centres:
      stats.append(
          texture_statistics(
              wave[c - window // 2 : c - window // 2 + window], rate, num_bands
          )
      )
    videos.append((video, centres / rate, len(stats) - len(centres)))
  if not videos:
    raise ValueError(f"no {split} video in {records_dir} is long enough")
  stats = np.stack(stats)
  logging.info(
      "texture: %d windows of %d videos, %d statistics each",
      len(stats),
      len(videos),
      stats.shape[1],
  )
  scaler, kmeans = fit_clusters(stats, num_clusters, seed)
  labels = kmeans.labels_
  ids, prints, rows = [], [], []
  for video, centre_seconds, first in videos:
    frame_times = (np.arange(len(video["frames"])) + 0.5) / float(video["fps"])
    nearest = np.abs(frame_times[:, None] - centre_seconds[None, :]).argmin(1)
    rows.append(np.eye(num_clusters, dtype=np.float32)[labels[first + nearest]])
    ids.append(video["video_id"])
    prints.append(int(video["fingerprint"]))
  options = dict(
      records=os.path.abspath(records_dir),
      split=split,
      num_clusters=num_clusters,
      audio_seconds=audio_seconds,
      hop_seconds=hop_seconds,
      num_bands=num_bands,
      seed=seed,
  )
  os.makedirs(out_dir, exist_ok=True)
  centres_path = os.path.join(out_dir, "clusters.npz")
  np.savez(
      centres_path,
      centres=kmeans.cluster_centers_,
      scaler_mean=scaler.mean_,
      scaler_scale=scaler.scale_,
      sizes=np.bincount(labels, minlength=num_clusters),
      options=np.array(json.dumps(options)),
  )
  table = targets.save_table(
      os.path.join(out_dir, f"{split}.targets.npz"),
      ids,
      prints,
      rows,
      dict(options, kind="ambient clusters"),
  )
  return {"clusters": centres_path, "targets": table}


FLAGS = flags.FLAGS


def _define_flags():
  """Command-line flags (defined only when run as a command: the library
  modules are imported together)."""
  flags.DEFINE_string("records", None, "Records folder (avself.data.prepare).")
  flags.DEFINE_string(
      "workdir", None, "The run's folder: writes WORKDIR/ambient."
  )
  flags.DEFINE_string("split", "train", "Split whose windows are clustered.")
  flags.DEFINE_integer("num_clusters", 30, "k of k-means.")
  flags.DEFINE_float("audio_seconds", 3.75, "Window per statistic.")
  flags.DEFINE_float("hop_seconds", 0.5, "Between windows.")
  flags.DEFINE_integer("num_bands", 32, "Cochlear bands.")
  flags.DEFINE_integer("seed", 0, "KMeans seed.")


def main(argv):
  del argv
  if not FLAGS.records or not FLAGS.workdir:
    raise app.UsageError("--records and --workdir are required")
  paths = build_targets(
      FLAGS.records,
      os.path.join(FLAGS.workdir, "ambient"),
      split=FLAGS.split,
      num_clusters=FLAGS.num_clusters,
      audio_seconds=FLAGS.audio_seconds,
      hop_seconds=FLAGS.hop_seconds,
      num_bands=FLAGS.num_bands,
      seed=FLAGS.seed,
  )
  print(json.dumps(paths, indent=2))


if __name__ == "__main__":
  _define_flags()
  app.run(main)
