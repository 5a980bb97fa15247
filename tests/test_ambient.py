"""Ambient sound: texture statistics, their clustering, a tiny run and the cluster picture."""

import ml_collections
import numpy as np
import pytest

import tiny
from avself import sharding
from avself import state as state_lib
from avself.data import targets
from avself.data import texture
from avself.evaluators import ambient_clusters
from avself.tasks import ambient

RATE = 16000


def _tone(hz, seconds=2.0, am_hz=0.0):
  t = np.arange(int(seconds * RATE)) / RATE
  wave = np.sin(2 * np.pi * hz * t)
  if am_hz:
    wave *= 1.0 + 0.9 * np.sin(2 * np.pi * am_hz * t)
  return 0.5 * wave


def _parts(stats, bands=32):
  mean, cv = stats[:bands], stats[bands : 2 * bands]
  corr = stats[2 * bands : 2 * bands + bands * (bands - 1) // 2]
  modulation = stats[2 * bands + len(corr) :].reshape(bands, -1)
  return mean, cv, corr, modulation


def test_statistics_size_and_filterbank_covers_the_spectrum():
  stats = texture.texture_statistics(_tone(1000.0), RATE)
  assert stats.shape == (32 + 32 + 496 + 32 * texture.MODULATION_BANDS,)
  bank = texture.erb_filterbank(32, RATE, 512)
  freqs = np.fft.rfftfreq(512, 1 / RATE)
  inner = (freqs > 100) & (freqs < 7000)
  # Half-cosine filters overlapping by half: squares sum to 1 inside the range.
  np.testing.assert_allclose((bank**2).sum(0)[inner], 1.0, atol=0.02)


def test_pure_tone_is_one_steady_band():
  mean, cv, _, _ = _parts(texture.texture_statistics(_tone(1000.0), RATE))
  bank = texture.erb_filterbank(32, RATE, 512)
  freqs = np.fft.rfftfreq(512, 1 / RATE)
  peak = int(np.argmax(mean))
  # The loudest band is one whose filter passes 1 kHz best (or its neighbour).
  best = int(np.argmax(bank[:, np.argmin(np.abs(freqs - 1000.0))]))
  assert abs(peak - best) <= 1
  assert cv[peak] < 0.05  # a steady envelope
  # Far bands see (almost) nothing.
  assert mean[0] < 0.05 * mean[peak] and mean[-1] < 0.05 * mean[peak]


def test_amplitude_modulated_tone_puts_modulation_power_at_its_rate():
  *_, modulation = _parts(
      texture.texture_statistics(_tone(1000.0, am_hz=5.0), RATE)
  )
  peak = int(
      np.argmax(_parts(texture.texture_statistics(_tone(1000.0), RATE))[0])
  )
  # Octave bands from 0.5 Hz: 5 Hz lies in 4-8 Hz, the 4th (index 3).
  assert int(np.argmax(modulation[peak])) == 3
  assert modulation[peak, 3] > 0.8


def test_white_noise_is_broadband_and_uncorrelated_across_distant_bands():
  noise = np.random.default_rng(0).normal(scale=0.1, size=2 * RATE)
  mean, cv, corr, _ = _parts(texture.texture_statistics(noise, RATE))
  # ERB bands widen with frequency: a flat spectrum gives rising band means.
  assert np.corrcoef(np.arange(32), mean)[0, 1] > 0.9
  # Noise envelopes fluctuate (less in wide bands, which average more bins):
  # every band's is above the pure tone's steady 0.05.
  assert np.all(cv > 0.03) and cv.mean() > 0.08
  matrix = np.zeros((32, 32))
  matrix[np.triu_indices(32, k=1)] = corr
  distant = matrix[np.triu_indices(32, k=3)]
  assert np.abs(distant).mean() < 0.1


def test_clustering_is_deterministic_under_a_seed_and_refuses_too_many_clusters():
  rng = np.random.default_rng(0)
  stats = np.concatenate([rng.normal(c, 1.0, size=(20, 8)) for c in (0, 5, 10)])
  a = texture.fit_clusters(stats, 3, seed=1)[1]
  b = texture.fit_clusters(stats, 3, seed=1)[1]
  np.testing.assert_array_equal(a.labels_, b.labels_)
  np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
  # The three blobs are found.
  assert (
      len(
          {
              tuple(np.bincount(a.labels_[i : i + 20], minlength=3))
              for i in (0, 20, 40)
          }
      )
      == 3
  )
  with pytest.raises(ValueError, match="larger than the 60 clips"):
    texture.fit_clusters(stats, 61)


def tiny_ambient_config(records_dir: str) -> ml_collections.ConfigDict:
  c = tiny.tiny_config(records_dir)
  c.task = "ambient"
  c.model = ml_collections.ConfigDict(
      dict(
          name="ambient",
          width=0.125,
          dtype="float32",
          num_clusters=4,
          spectrogram_shape=None,
      )
  )
  c.data.spectrogram.kind = "waveform"
  c.ambient = ml_collections.ConfigDict(
      dict(audio_seconds=1.0, hop_seconds=0.5, num_bands=16, seed=0)
  )
  c.evals = ml_collections.ConfigDict()
  c.optimizer.learning_rate = 3e-3
  return c


def test_tiny_ambient_run_makes_clusters_and_lowers_loss(
    tmp_path, tiny_records
):
  from test_soundnet import _fit_one_batch  # pylint: disable=g-import-not-at-top

  config = ambient.prepare_data(
      tiny_ambient_config(tiny_records), str(tmp_path)
  )
  table = targets.load_table(config.data.frame_targets.path)
  assert table["rows"].shape[1] == 4
  np.testing.assert_array_equal(table["rows"].sum(1), 1.0)  # one-hot
  with np.load(tmp_path / "ambient" / "clusters.npz") as z:
    assert z["centres"].shape[0] == 4 and z["sizes"].sum() > 0
    first = z["centres"].copy()
  # Reproducible: clustering again in another workdir gives the same centres.
  again = ambient.prepare_data(
      tiny_ambient_config(tiny_records), str(tmp_path / "b")
  )
  with np.load(tmp_path / "b" / "ambient" / "clusters.npz") as z:
    np.testing.assert_array_equal(z["centres"], first)
  assert again.data.frame_targets.path != config.data.frame_targets.path
  losses = _fit_one_batch(ambient, config, steps=15)
  assert losses[-1] < 0.5 * losses[0], losses


def test_more_clusters_than_clips_is_a_clear_error(tmp_path, tiny_records):
  config = tiny_ambient_config(tiny_records)
  config.model.num_clusters = 100_000
  with pytest.raises(ValueError, match="larger than the"):
    ambient.prepare_data(config, str(tmp_path))


def test_cluster_rows_pick_the_populated_clusters_and_one_frame_per_video():
  probability = np.array(
      [[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.7, 0.3, 0.0], [0.2, 0.8, 0.0]]
  )
  rows = ambient_clusters.cluster_rows(
      probability, np.array([0, 0, 1, 2]), num_rows=3, per_row=5
  )
  # Cluster 0 has 3 frames (2 videos), cluster 1 one; cluster 2 none.
  assert rows == [(0, [0, 2]), (1, [3])]


def test_cluster_picture_evaluator(tmp_path, tiny_records):
  config = tiny_ambient_config(tiny_records)
  config.data.frame_targets.path = "unused.npz"
  task, model, state = state_lib.random_init(config)
  evaluator = ambient_clusters.Evaluator(
      config,
      ml_collections.ConfigDict(
          dict(num_rows=3, per_row=4, thumbnail=16, picture_dir=str(tmp_path))
      ),
      task=task,
      model=model,
      mesh=sharding.make_mesh(),
  )
  out = dict(evaluator.run(state))
  assert 0.0 <= out["cluster_entropy"] <= np.log2(4) + 1e-9
  picture = out["picture"]
  assert picture.dtype == np.uint8 and picture.shape[1] == 4 * 16 + 3 * 2
  assert (tmp_path / "ambient_clusters_step_0.png").exists()
