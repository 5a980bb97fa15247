"""The content world: a second synthetic world, matched by content, as mp4."""

import csv
import os

import numpy as np
from PIL import Image
import pytest

from avself.data import media
from avself.data.content_world import render
from avself.data.content_world import write

TINY = dict(seconds=1.5, size=32, fps=10.0, sample_rate=16000)


def _band_energy(audio, sample_rate):
  """Share of a sound's energy below 500 Hz, 500-2500 Hz and above."""
  power = np.abs(np.fft.rfft(audio)) ** 2
  f = np.fft.rfftfreq(len(audio), 1.0 / sample_rate)
  bands = [power[f < 500].sum(), power[(f >= 500) & (f < 2500)].sum()]
  bands.append(power[f >= 2500].sum())
  return np.array(bands) / power.sum()


def test_clips_are_reproducible_labelled_and_split_within_each_class():
  options = render.Options(**TINY)
  frames, audio, truth = render.render_clip(13, 0, options)
  assert frames.shape == (15, 32, 32, 3) and frames.dtype == np.uint8
  assert audio.shape == (24000,) and audio.dtype == np.float32
  assert np.abs(audio).max() <= 1.0
  again = render.render_clip(13, 0, options)
  np.testing.assert_array_equal(frames, again[0])
  np.testing.assert_array_equal(audio, again[1])
  assert not np.array_equal(audio, render.render_clip(13, 1, options)[1])
  assert truth["label"] == render.CLASSES[3][0] and truth["label_index"] == 3
  splits = [render.split_of(i) for i in range(100)]
  labels = [render.label_of(i) for i in range(100)]
  for k in range(10):  # 2 of each class's 10 clips are 'test'
    assert sum(s == "test" for s, y in zip(splits, labels) if y == k) == 2


def test_sound_has_silences_and_off_screen_sound_in_about_half_the_clips():
  rng = np.random.default_rng(0)
  silent = [
      1 - render.gate(rng, 48000 * 4, 48000, 0.35).mean() for _ in range(200)
  ]
  assert 0.25 <= np.mean(silent) <= 0.45, np.mean(silent)
  assert max(silent) > 0.5  # some clips are mostly silent
  options = render.Options(**TINY)
  offscreen = [
      render.render_clip(i, 0, options)[2]["offscreen"] for i in range(40)
  ]
  assert 10 <= sum(offscreen) <= 30
  quiet = render.Options(**dict(TINY, offscreen_prob=0.0))
  assert not any(
      render.render_clip(i, 0, quiet)[2]["offscreen"] for i in range(10)
  )


def test_offscreen_level_sets_how_much_of_a_clip_the_off_screen_sound_is():
  # With or without the off-screen sound, a clip's own sound is drawn alike:
  # the louder the off-screen sound may be, the less the clip is its own.
  alone = render.Options(**dict(TINY, offscreen_prob=0.0))

  def own_share(level):
    options = render.Options(
        **dict(TINY, offscreen_prob=1.0, offscreen_level=level)
    )
    return np.mean(
        [
            np.corrcoef(
                render.render_clip(i, 0, alone)[1],
                render.render_clip(i, 0, options)[1],
            )[0, 1]
            for i in range(10)
        ]
    )

  quiet, default, loud = own_share(0.31), own_share(0.8), own_share(1.6)
  assert quiet > default > loud, (quiet, default, loud)


def _object_hue(frames):
  """Circular mean hue (0-1) of a clip's brightest, most saturated pixels."""
  hsv = (
      np.asarray(
          Image.fromarray(frames.reshape(-1, frames.shape[2], 3)).convert(
              "HSV"
          ),
          np.float32,
      ).reshape(-1, 3)
      / 255.0
  )
  vivid = hsv[:, 1] * hsv[:, 2]
  hue = hsv[vivid >= np.quantile(vivid, 0.97), 0]
  return np.angle(np.mean(np.exp(2j * np.pi * hue))) / (2 * np.pi) % 1.0


def test_hue_spread_takes_colour_away_as_a_class_cue():
  def hue_spread_within_class(spread):
    options = render.Options(**dict(TINY, size=64, hue_spread=spread))
    hues = [  # 8 clips of class 3 (indices 3, 13, ...)
        _object_hue(render.render_clip(3 + 10 * i, 0, options)[0])
        for i in range(8)
    ]
    return 1.0 - np.abs(np.mean(np.exp(2j * np.pi * np.array(hues))))

  assert hue_spread_within_class(0.0) < 0.05  # one hue per class
  assert hue_spread_within_class(1.0) > 0.3  # hues all round the circle


def test_a_class_sounds_alike_across_clips_and_unlike_other_classes():
  # Sound matches picture by content: each class's sound keeps its place in
  # the spectrum whatever its drawn pitch or rate. Band shares of hum (low),
  # trill (middle) and hiss (high) over 5 clips each.
  rng = np.random.default_rng(1)
  kinds = {"hum": 0, "trill": 1, "hiss": 2}
  for kind, band in kinds.items():
    for _ in range(5):
      shares = _band_energy(render.class_sound(rng, kind, 16000, 16000), 16000)
      assert np.argmax(shares) == band and shares[band] > 0.6, (kind, shares)


def test_each_class_looks_different():
  # Mean colour and texture energy differ between the classes' objects.
  options = render.Options(**dict(TINY, size=64))
  means = []
  for k in range(10):
    frames = render.render_frames(np.random.default_rng(k), options, k)
    means.append(frames.reshape(-1, 3).mean(0))
  distances = np.linalg.norm(np.array(means)[:, None] - means, axis=-1)
  assert np.all(distances + np.eye(10) * 1e3 > 1.0)


def test_written_world_goes_through_prepare_with_its_labels(tmp_path):
  from avself.data import prepare  # pylint: disable=g-import-not-at-top

  videos = str(tmp_path / "videos")
  summary = write.main(
      [f"--output={videos}", "--num_videos=10", "--workers=1"]
      + [f"--{k}={v}" for k, v in TINY.items()]
  )
  assert summary["num_train"] == 10 and summary["num_test"] == 0
  with open(os.path.join(videos, "labels.csv")) as f:
    rows = list(csv.DictReader(f))
  assert [r["label"] for r in rows] == [c[0] for c in render.CLASSES]
  # Real H.264 + AAC that the media reader decodes back.
  clip = media.load_video(os.path.join(videos, rows[0]["file"]), 10, 32, 16000)
  assert clip.has_audio and clip.frames.shape[1:] == (32, 32, 3)
  assert abs(clip.duration - 1.5) < 0.1
  manifest = prepare.prepare(
      videos,
      str(tmp_path / "records"),
      os.path.join(videos, "labels.csv"),
      workers=1,
      progress=False,
      sample_rate=16000,
      shorter_side=32,
      fps=10,
  )
  assert manifest["splits"]["train"]["num_videos"] == 10
  assert sorted(manifest["label_names"]) == sorted(c[0] for c in render.CLASSES)


@pytest.mark.parametrize("bad", ["--num_videos=3", "--output=/tmp/x"])
def test_cli_requires_output_and_num_videos(bad):
  with pytest.raises(SystemExit):
    write.main([bad])
