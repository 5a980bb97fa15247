"""The embedding CLI: shapes and timestamps, and the stored-checkpoint regression test."""

import os

import numpy as np
import pytest

from avself import config_lib
from avself import embed

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
CHECKPOINT = os.path.join(DATA, "regression")


def _regression_module():
  """tests/data/make_regression_data.py (its EMBED_ARGS are the test's)."""
  return config_lib.load_file(os.path.join(DATA, "make_regression_data.py"))


@pytest.fixture(scope="module")
def loaded():
  return embed.load(CHECKPOINT)


def test_cut_windows_hops_pads_the_end_and_keeps_short_inputs():
  wave = np.arange(23, dtype=np.float32) + 1  # 2.3 "seconds" at 10 Hz
  windows, starts = embed.cut_windows(wave, 10, 5, pad_end=True)
  np.testing.assert_array_equal(starts, [0, 5, 10, 15])
  np.testing.assert_array_equal(windows[1], wave[5:15])
  np.testing.assert_array_equal(windows[3], np.r_[wave[15:], np.zeros(2)])
  _, starts = embed.cut_windows(wave, 10, 5, pad_end=False)
  np.testing.assert_array_equal(starts, [0, 5, 10])  # complete windows only
  windows, starts = embed.cut_windows(wave[:4], 10, 5, pad_end=False)
  assert windows.shape == (1, 10) and starts.tolist() == [0]


def test_embed_cli_writes_shapes_and_timestamps_for_mp4_and_wav(
    tmp_path, loaded
):
  regression = _regression_module()
  from avself.data import media_encode  # pylint: disable=g-import-not-at-top
  from avself.data.synthetic import clip as synthetic_clip  # pylint: disable=g-import-not-at-top
  from avself.data.synthetic import options as synthetic_options  # pylint: disable=g-import-not-at-top
  from avself.datasets import files  # pylint: disable=g-import-not-at-top

  options = synthetic_options.as_options(
      size=48, fps=10, duration=3.0, sample_rate=16000
  )
  frames, audio, _, _ = synthetic_clip.render_clip(1, 0, options)
  video = str(tmp_path / "movie.mp4")
  media_encode.write_mp4(video, frames, audio, 10, 16000)
  wav = files.write_int16(
      str(tmp_path / "sound.wav"),
      16000,
      0.3 * np.sin(np.arange(36000) * 0.05).astype(np.float32),
  )
  out = tmp_path / "out"
  written = embed.main(
      [
          video,
          wav,
          f"--workdir={CHECKPOINT}",
          f"--output={out}",
          "--hop=0.25",
          "--fps=2",
      ]
  )
  assert written == [str(out / "movie.npz"), str(out / "sound.npz")]
  channels = 32  # conv4 of L3-Net at width 1/16
  movie = np.load(out / "movie.npz")
  # 3 s with 1 s windows every 0.25 s: starts 0, 0.25, ..., 2.0 (9 windows).
  assert movie["audio_embedding"].shape == (9, 4 * 3 * channels)
  np.testing.assert_allclose(movie["audio_timestamps"], np.arange(9) * 0.25)
  # 2 frames a second over 3 s.
  assert movie["vision_embedding"].shape == (6, 4 * 4 * channels)
  np.testing.assert_allclose(movie["vision_timestamps"], np.arange(6) / 2)
  assert np.all(np.isfinite(movie["audio_embedding"]))
  assert np.ptp(movie["audio_embedding"], axis=0).max() > 0  # windows differ
  sound = np.load(out / "sound.npz")
  # 2.25 s: starts 0 .. 1.25 (6 windows), the last one zero-padded.
  assert set(sound.files) == {"audio_embedding", "audio_timestamps"}
  np.testing.assert_allclose(sound["audio_timestamps"], np.arange(6) * 0.25)
  # The pooled trunk output instead: C-D per window.
  pooled = embed.embed_file(loaded, wav, hop=0.25, feature="pooled")
  assert pooled["audio_embedding"].shape == (6, channels)
  # Same inputs, same preprocessing: the first window equals the 0.5 s-hop run's.
  coarse = embed.embed_file(loaded, wav, **regression.EMBED_ARGS)
  np.testing.assert_allclose(
      coarse["audio_embedding"][0],
      sound["audio_embedding"][0],
      rtol=1e-5,
      atol=1e-6,
  )


def test_embeddings_of_stored_checkpoint_have_not_moved(loaded):
  """Fails when a change moves embeddings (OpenL3 #80).

  If that change is intended, regenerate with
  `python tests/data/make_regression_data.py` and say so in the change.
  """
  regression = _regression_module()
  assert loaded.step == 2
  for name in ("clip.mp4", "tone.wav"):
    got = embed.embed_file(
        loaded, os.path.join(CHECKPOINT, name), **regression.EMBED_ARGS
    )
    expected = np.load(
        os.path.join(CHECKPOINT, f"expected_{os.path.splitext(name)[0]}.npz")
    )
    assert set(got) == set(expected.files), name
    for key in expected.files:
      np.testing.assert_allclose(
          got[key],
          expected[key],
          rtol=1e-5,
          atol=1e-5,
          err_msg=f"{name}: {key}",
      )


def test_embed_keeps_same_named_inputs_apart_and_skips_a_bad_file(
    tmp_path, capsys
):
  from avself.datasets import files  # pylint: disable=g-import-not-at-top

  tone = 0.3 * np.sin(np.arange(20000) * 0.05).astype(np.float32)
  inputs = []
  for folder in ("a", "b"):
    (tmp_path / folder).mkdir()
    inputs.append(
        files.write_int16(str(tmp_path / folder / "x.wav"), 16000, tone)
    )
  bad = tmp_path / "a" / "broken.wav"
  bad.write_bytes(b"RIFF not really a wav file" * 10)
  inputs.insert(1, str(bad))
  inputs.append(files.write_int16(str(tmp_path / "b" / "y.wav"), 16000, tone))
  out = tmp_path / "out"
  with pytest.raises(SystemExit) as e:
    embed.main([*inputs, f"--workdir={CHECKPOINT}", f"--output={out}"])
  # The bad file is reported last, with exit status 1; the files after it ran.
  assert "1 of 4 files failed" in str(e.value) and str(bad) in str(e.value)
  assert "embed: skipped" in capsys.readouterr().err
  written = sorted(
      os.path.relpath(os.path.join(d, f), out)
      for d, _, fs in os.walk(out)
      for f in fs
  )
  assert written == ["a/x.npz", "b/x.npz", "b/y.npz"]


def test_embed_refuses_missing_files_and_clashing_names_up_front(tmp_path):
  missing = str(tmp_path / "nope.mp4")
  with pytest.raises(SystemExit, match="embed: error: no such file: .*nope"):
    embed.main([missing, f"--workdir={tmp_path}"])
  for name in ("x.mp4", "x.wav"):
    (tmp_path / name).write_bytes(b"")
  with pytest.raises(SystemExit, match="would write the same output"):
    embed.main(
        [str(tmp_path / "x.mp4"), str(tmp_path / "x.wav"), "--workdir=W"]
    )
