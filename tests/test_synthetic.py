"""Tests for the synthetic audio-visual world (tiny clips: 64 px, 2 s)."""

import csv
import json
import os

import av
import numpy as np
import pytest

from avself.data import media_encode
from avself.data.synthetic import cache as synthetic_cache
from avself.data.synthetic import cli as synthetic_cli
from avself.data.synthetic import clip as synthetic_clip
from avself.data.synthetic import options as synthetic_options

SEED = 3
SMALL = dict(
    size=64, duration=2.0, sample_rate=16000, fps=15, offscreen_prob=0.5
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
  """Four clips written by two worker processes; (folder, summary)."""
  out = str(tmp_path_factory.mktemp("world"))
  summary = synthetic_cache.generate(
      out, num_videos=4, seed=SEED, workers=2, **SMALL
  )
  return out, summary


def _truths(out):
  with open(os.path.join(out, "ground_truth.jsonl")) as f:
    return [json.loads(line) for line in f]


def _decode(path):
  """Decoded (frames [T, H, W, 3] uint8, audio [S] float32, codec names)."""
  with av.open(path) as container:
    codecs = (
        container.streams.video[0].codec_context.name,
        container.streams.audio[0].codec_context.name,
    )
    frames = np.stack(
        [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    )
  with av.open(path) as container:
    audio = np.concatenate(
        [f.to_ndarray()[0] for f in container.decode(audio=0)]
    )
  return frames, audio, codecs


def _loudness(audio, sample_rate, hop_s=0.01):
  """RMS over 10 ms frames: [N]."""
  hop = int(hop_s * sample_rate)
  n = len(audio) // hop
  return np.sqrt((audio[: n * hop].reshape(n, hop) ** 2).mean(axis=1))


def test_mp4s_decode_as_h264_and_aac_with_right_sizes(world):
  out, summary = world
  options = synthetic_options.as_options(**SMALL)
  assert not summary["cached"]
  for truth in _truths(out):
    frames, audio, codecs = _decode(os.path.join(out, truth["file"]))
    assert codecs == ("h264", "aac")
    assert frames.shape == (options.num_frames, 64, 64, 3)
    assert abs(len(audio) / 16000 - options.duration) < 0.05


def test_decoded_clip_matches_render_and_is_loud_at_events(world):
  out, _ = world
  for truth in _truths(out):
    frames, audio, _ = _decode(os.path.join(out, truth["file"]))
    rendered, mix, _, _ = synthetic_clip.render_clip(
        truth["index"], SEED, SMALL
    )
    # H.264 at crf 20 stays close to what was drawn.
    assert np.abs(frames.astype(float) - rendered).mean() < 6
    n = min(len(audio), len(mix))
    assert np.corrcoef(audio[:n], mix[:n])[0, 1] > 0.9  # aligned, AAC-coded
    loud = _loudness(audio, 16000)
    events = [t for o in truth["objects"] for t in o["event_times"]]
    if truth["offscreen"]:
      events += truth["offscreen"]["event_times"]
    for t in events:  # a burst peaks within ~60 ms after each event
      near = loud[int(t * 100) : int(t * 100) + 6]
      assert near.max() > 1.8 * np.median(loud), (truth["file"], t)


def test_labels_csv_ground_truth_and_stems_agree(world):
  out, _ = world
  names = [c.name for c in synthetic_options.class_table(10)]
  with open(os.path.join(out, "labels.csv")) as f:
    rows = list(csv.reader(f))
  assert rows[0] == ["file", "label", "split"]
  truths = _truths(out)
  assert [r[0] for r in rows[1:]] == [
      f"videos/clip_{i:05d}.mp4" for i in range(4)
  ]
  assert [r[1:] for r in rows[1:]] == [[t["label"], t["split"]] for t in truths]
  assert sorted(r[2] for r in rows[1:]) == ["test", "train", "train", "train"]
  for t in truths:
    assert (
        t["label"] == t["objects"][0]["class_name"] == names[t["label_index"]]
    )
    stems = np.load(os.path.join(out, t["stems"]))
    _, mix, _, _ = synthetic_clip.render_clip(t["index"], SEED, SMALL)
    np.testing.assert_array_equal(stems["on_screen"] + stems["off_screen"], mix)
    objects = sum(stems[o["stem"]] for o in t["objects"])
    np.testing.assert_allclose(objects, stems["on_screen"], atol=1e-6)
    assert (t["offscreen"] is None) == (not stems["off_screen"].any())
    assert np.abs(mix).max() <= 0.8 + 1e-6  # normalised, no clipping


def test_same_seed_same_bytes_any_worker_count(world, tmp_path):
  out, _ = world
  again = synthetic_cache.generate(
      str(tmp_path), num_videos=4, seed=SEED, workers=1, **SMALL
  )
  assert not again["cached"]
  for name in ["labels.csv", "ground_truth.jsonl"] + [
      f"videos/clip_{i:05d}.mp4" for i in range(4)
  ]:
    with (
        open(os.path.join(out, name), "rb") as a,
        open(os.path.join(tmp_path, name), "rb") as b,
    ):
      assert a.read() == b.read(), name


def test_different_seed_different_clip():
  frames_a, audio_a, truth_a, _ = synthetic_clip.render_clip(0, 1, SMALL)
  frames_b, audio_b, truth_b, _ = synthetic_clip.render_clip(0, 2, SMALL)
  assert truth_a["label"] == truth_b["label"]  # labels go round robin
  assert np.abs(frames_a.astype(int) - frames_b).mean() > 5
  assert not np.allclose(audio_a, audio_b, atol=1e-3)


def test_boxes_hold_their_objects_colour_and_flash_at_bounces():
  size = 64
  for index in range(6):
    frames, _, truth, _ = synthetic_clip.render_clip(index, SEED, SMALL)
    boxes = np.array([o["boxes"] for o in truth["objects"]])  # [O, T, 4]
    assert boxes.min() >= 0 and boxes.max() <= size
    assert (boxes[..., 2] > boxes[..., 0]).all()
    assert (boxes[..., 3] > boxes[..., 1]).all()
    for i, obj in enumerate(truth["objects"]):
      color = np.array(obj["color"], float)
      flash_color = color + (255 - color) * 0.6
      events = np.array(obj["event_times"] + [1e9])
      for t in range(len(frames)):
        x0, y0, x1, y1 = boxes[i, t]
        others = np.delete(boxes[:, t], i, axis=0)
        overlaps = (
            (others[:, 0] < x1)
            & (others[:, 2] > x0)
            & (others[:, 1] < y1)
            & (others[:, 3] > y0)
        ).any()
        inside = np.zeros((size, size), bool)
        inside[int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))] = True
        gap = np.abs(events - t / 15).min() * 15  # frames to nearest bounce
        match = np.abs(frames[t] - color).max(axis=-1) < 40
        flashing = np.abs(frames[t] - flash_color).max(axis=-1) < 40
        if not overlaps and gap > 2:
          assert match[inside].mean() > 0.25, (index, i, t)
        if not overlaps and gap < 0.25:
          assert flashing[inside].mean() > 0.2, (index, i, t)
        assert not match[~inside].any(), (index, i, t)  # nowhere else


def test_each_class_sounds_at_its_own_pitch_and_looks_distinct():
  classes = synthetic_options.class_table(10)
  options = dict(SMALL, size=32, duration=1.0)
  fundamentals = [c.fundamental_hz for c in classes]
  assert fundamentals[0] == pytest.approx(200) and fundamentals[-1] == (
      pytest.approx(4000)
  )
  for cls in classes:  # clip k's first object is of class k
    _, _, truth, stems = synthetic_clip.render_clip(cls.index, SEED, options)
    sound = stems["object_0"]
    spectrum = np.abs(np.fft.rfft(sound * np.hanning(len(sound))))
    peak = np.fft.rfftfreq(len(sound), 1 / 16000)[spectrum.argmax()]
    # Classes are 39% apart in pitch; the peak sits within 8% of its own.
    assert abs(np.log(peak / truth["objects"][0]["fundamental_hz"])) < 0.08
  colors = np.array([c.color for c in classes], float)
  gaps = np.linalg.norm(colors[:, None] - colors[None], axis=-1)
  assert gaps[~np.eye(10, dtype=bool)].min() > 80
  assert len({c.name for c in classes}) == 10


def test_every_second_of_audio_carries_each_visible_class():
  # What makes L3 correspondence learnable: the hum, not only the bursts.
  options = dict(size=32, duration=3.0, sample_rate=16000)
  fundamentals = np.array(
      [c.fundamental_hz for c in synthetic_options.class_table(10)]
  )
  freqs = np.fft.rfftfreq(16000, 1 / 16000)
  bands = [(freqs > f * 0.95) & (freqs < f * 1.05) for f in fundamentals]
  for index in range(6):
    _, mix, truth, _ = synthetic_clip.render_clip(index, SEED, options)
    heard = {o["class_index"] for o in truth["objects"] if o["sounding"]}
    if truth["offscreen"]:
      heard.add(truth["offscreen"]["class_index"])
    for second in range(3):
      window = mix[second * 16000 : (second + 1) * 16000] * np.hanning(16000)
      power = np.abs(np.fft.rfft(window)) ** 2
      energy = np.array([power[b].sum() for b in bands])  # [K]
      silent = np.median(energy[[k for k in range(10) if k not in heard]])
      for obj in truth["objects"]:
        assert energy[obj["class_index"]] > 100 * silent, (index, second)


def test_offscreen_source_in_about_offscreen_prob_of_clips():
  options = dict(size=32, duration=0.5, sample_rate=8000, offscreen_prob=0.3)
  present = 0
  for index in range(50):
    _, _, truth, stems = synthetic_clip.render_clip(index, SEED, options)
    off = truth["offscreen"]
    assert (off is not None) == bool(stems["off_screen"].any())
    if off is not None:
      present += 1
      assert off["event_times"]
      assert off["class_index"] not in [
          o["class_index"] for o in truth["objects"]
      ]
  assert 7 <= present <= 23  # Binomial(50, 0.3): 15 +- 3.2


def test_stereo_pans_each_object_by_its_position(tmp_path):
  options = dict(SMALL, channels=2)
  _, audio, truth, stems = synthetic_clip.render_clip(1, SEED, options)
  assert audio.shape == (32000, 2)
  sound = stems["object_0"]  # [S, 2]
  centre = np.array(truth["objects"][0]["boxes"])[:, [0, 2]].mean(1) / 64
  per_frame = sound[: len(centre) * 1066].reshape(len(centre), 1066, 2)
  energy = (per_frame**2).mean(axis=1)  # [T, 2]
  left = centre < 0.4
  right = centre > 0.6
  assert left.any() or right.any()
  assert (energy[left, 0] > energy[left, 1]).all()
  assert (energy[right, 1] > energy[right, 0]).all()
  path = str(tmp_path / "stereo.mp4")
  media_encode.write_mp4(
      path, np.zeros((30, 64, 64, 3), np.uint8), audio, 15, 16000
  )
  with av.open(path) as container:
    decoded = np.concatenate(
        [f.to_ndarray() for f in container.decode(audio=0)], axis=1
    )
  assert decoded.shape[0] == 2 and abs(decoded.shape[1] - 32000) < 800
  # This mix is ~7x louder on the right before coding; so it stays after AAC.
  assert (decoded[1] ** 2).sum() > (decoded[0] ** 2).sum()


def test_write_mp4_pads_odd_sides_and_writes_video_alone_when_silent(tmp_path):
  frames = np.full((5, 21, 33, 3), 200, np.uint8)
  path = str(tmp_path / "odd.mp4")
  media_encode.write_mp4(path, frames, None, 12.5)
  with av.open(path) as container:
    assert not container.streams.audio
    stream = container.streams.video[0]
    assert (stream.width, stream.height) == (34, 22)
    assert float(stream.average_rate) == 12.5
    decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
  assert len(decoded) == 5
  assert abs(int(decoded[0][10, 16, 0]) - 200) < 8  # the picture, not the pad
  assert decoded[0][21, 33].max() < 40  # the pad is black


def test_splits_are_exact_stratified_and_seeded():
  splits = synthetic_options.assign_splits(100, 0, 10, 0.2)
  labels = np.arange(100) % 10
  test = np.array(splits) == "test"
  assert test.sum() == 20
  assert (np.bincount(labels[test], minlength=10) == 2).all()
  assert synthetic_options.assign_splits(100, 0, 10, 0.2) == splits
  assert synthetic_options.assign_splits(100, 1, 10, 0.2) != splits


def test_cli_skips_a_complete_folder_and_redoes_a_changed_one(tmp_path, capsys):
  args = [
      "--output",
      str(tmp_path),
      "--num_videos",
      "2",
      "--seed",
      "1",
      "--size",
      "32",
      "--duration",
      "0.5",
      "--sample_rate",
      "8000",
      "--workers",
      "1",
  ]
  first = synthetic_cli.main(args)
  assert "wrote 2 clips" in capsys.readouterr().out
  video = tmp_path / "videos" / "clip_00001.mp4"
  stamp = video.stat().st_mtime_ns
  second = synthetic_cli.main(args)
  assert second["cached"] and "skipped" in capsys.readouterr().out
  assert video.stat().st_mtime_ns == stamp
  assert second["num_videos"] == first["num_videos"] == 2
  changed = synthetic_cli.main(args + ["--num_videos", "1"])  # last one wins
  assert not changed["cached"]
  assert not video.exists()  # the stale clip went with the old world
  with open(tmp_path / "labels.csv") as f:
    assert len(f.readlines()) == 2


def test_pitch_spread_moves_each_source_within_its_range():
  options = dict(
      size=32,
      duration=1.0,
      sample_rate=16000,
      pitch_spread=2.0,
      offscreen_prob=0.5,
  )
  classes = synthetic_options.class_table(10)
  moves = []
  for index in range(12):
    _, _, truth, stems = synthetic_clip.render_clip(index, SEED, options)
    _, _, plain, _ = synthetic_clip.render_clip(
        index, SEED, dict(options, pitch_spread=0.0)
    )
    for obj, before in zip(truth["objects"], plain["objects"]):
      octaves = np.log2(obj["fundamental_hz"] / before["fundamental_hz"])
      assert -1.0 - 1e-6 <= octaves <= 1.0 + 1e-6
      assert obj["fundamental_hz"] < 0.45 * 16000  # never aliased
      moves.append(octaves)
      # The class's own pitch, before detuning, is where pitch_spread=0 puts it.
      base = classes[obj["class_index"]].fundamental_hz
      assert abs(np.log(before["fundamental_hz"] / base)) < 0.016
    sound = stems["object_0"]  # its spectral peak follows the moved pitch
    spectrum = np.abs(np.fft.rfft(sound * np.hanning(len(sound))))
    peak = np.fft.rfftfreq(len(sound), 1 / 16000)[spectrum.argmax()]
    assert abs(np.log(peak / truth["objects"][0]["fundamental_hz"])) < 0.08
  assert np.std(moves) > 0.3  # uniform over 2 octaves: std 0.58


def test_background_noise_is_off_screen_and_leaves_the_sources_alone():
  options = dict(size=32, duration=1.0, sample_rate=16000, offscreen_prob=0.0)
  levels = []
  for index in range(6):
    _, audio, truth, stems = synthetic_clip.render_clip(
        index, SEED, dict(options, background_noise=0.5)
    )
    _, _, plain, plain_stems = synthetic_clip.render_clip(index, SEED, options)
    assert truth["offscreen"] is None and plain["offscreen"] is None
    np.testing.assert_allclose(
        stems["on_screen"] / truth["gain"],
        plain_stems["on_screen"] / plain["gain"],
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(audio, stems["on_screen"] + stems["off_screen"])
    noise = stems["off_screen"] / truth["gain"]
    levels.append(_loudness(noise, 16000, hop_s=0.25))  # 4 quarter seconds
    assert not plain_stems["off_screen"].any()
  levels = np.array(levels)  # [clips, 4]; two noises of RMS <= 0.5 each
  assert (levels <= 0.5 * np.sqrt(2) * 1.2).all() and levels.max() > 0.2
  # It wanders within a clip, and differs between clips.
  assert (levels.max(axis=1) / levels.min(axis=1) > 1.1).all()
  assert len(np.unique(np.round(levels[:, 0], 4))) == len(levels)


def test_hum_level_sets_the_sound_between_bursts():
  options = dict(
      size=32,
      duration=2.0,
      sample_rate=16000,
      offscreen_prob=0.0,
      max_objects=1,
  )
  for index in range(4):
    quiet = []
    for hum in (0.0, 0.2):
      _, _, truth, stems = synthetic_clip.render_clip(
          index, SEED, dict(options, hum_level=hum)
      )
      loud = _loudness(stems["object_0"] / truth["gain"], 16000)
      times = (np.arange(len(loud)) + 0.5) * 0.01
      events = np.array(truth["objects"][0]["event_times"] or [-10.0])
      far = np.abs(times[:, None] - events[None]).min(axis=1) > 0.6
      quiet.append(loud[far].mean() if far.any() else None)
    if quiet[0] is not None:
      assert quiet[0] < 1e-4 and quiet[1] > 0.05, (index, quiet)


def test_motion_cue_one_look_and_each_class_its_own_speed():
  options = dict(
      size=64,
      duration=2.0,
      sample_rate=8000,
      fps=15,
      offscreen_prob=0.0,
      class_cue="motion",
  )
  classes = synthetic_options.class_table(10, "motion")
  assert [c.name for c in classes] == [f"speed_{k:02d}" for k in range(10)]
  speeds = {}
  for index in range(20):  # two clips of each class
    _, _, truth, _ = synthetic_clip.render_clip(index, SEED, options)
    for obj in truth["objects"]:
      assert obj["shape"] == "disc" and obj["color"] == list(classes[0].color)
      boxes = np.array(obj["boxes"])
      centres = (boxes[:, :2] + boxes[:, 2:]) / 2
      steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
      # Frames away from a wall move by the full speed; a bounce frame less.
      measured = np.percentile(steps, 90) * 15 / 64  # frame sizes per second
      lo, hi = classes[obj["class_index"]].speed
      assert lo - 0.01 <= measured <= hi + 0.01, (index, measured, lo, hi)
      speeds.setdefault(obj["class_index"], []).append(measured)
  means = [np.mean(speeds[k]) for k in sorted(speeds)]
  assert np.all(np.diff(means) > 0) and means[-1] / means[0] > 6
  # The look world is untouched by the option's existence: same key, same clip.
  default = synthetic_options.as_options()
  assert (
      "class_cue"
      not in synthetic_cache._cache_key(4, 0, default, False)["options"]
  )
  assert (
      synthetic_cache._cache_key(
          4, 0, synthetic_options.as_options(class_cue="motion"), False
      )["options"]["class_cue"]
      == "motion"
  )
  look = synthetic_options.class_table(10)
  assert len({c.color for c in look}) == 10 and look[0].speed == (0.25, 0.6)


def test_flash_zero_hides_the_bounce_flash_and_changes_nothing_else():
  options = dict(
      size=64,
      duration=2.0,
      sample_rate=8000,
      fps=15,
      offscreen_prob=0.0,
      max_objects=1,
  )
  seen_bounce = False
  for index in range(4):
    frames, audio, truth, _ = synthetic_clip.render_clip(index, SEED, options)
    plain, plain_audio, plain_truth, _ = synthetic_clip.render_clip(
        index, SEED, dict(options, flash=0.0)
    )
    np.testing.assert_array_equal(audio, plain_audio)  # the sound is the same
    obj, plain_obj = truth["objects"][0], plain_truth["objects"][0]
    assert obj["event_times"] == plain_obj["event_times"]
    color = np.array(obj["color"], float)
    whitened = color + (255 - color) * 0.6
    for t, (x0, y0, x1, y1) in enumerate(plain_obj["boxes"]):
      region = (
          slice(int(y0), int(np.ceil(y1))),
          slice(int(x0), int(np.ceil(x1))),
      )
      white = lambda f: (np.abs(f[region] - whitened).max(axis=-1) < 40).mean()
      gap = np.abs(np.array(obj["event_times"]) - t / 15).min(initial=1e9) * 15
      if gap < 0.25:  # a bounce frame: flashes with flash=1, not with 0
        seen_bounce = True
        assert white(frames[t]) > 0.2 and white(plain[t]) == 0, (index, t)
      # Same path and size away from bounces; at one, the box does not grow.
      box, plain_box = np.array(obj["boxes"][t]), np.array(
          plain_obj["boxes"][t]
      )
      if gap > 2:
        np.testing.assert_allclose(plain_box, box, atol=1e-6)
      assert (plain_box[:2] >= box[:2] - 1e-6).all() and (
          plain_box[2:] <= box[2:] + 1e-6
      ).all()
  assert seen_bounce
  key = synthetic_cache._cache_key(4, 0, synthetic_options.as_options(), False)[
      "options"
  ]
  assert "flash" not in key
  assert (
      synthetic_cache._cache_key(
          4, 0, synthetic_options.as_options(flash=0.0), False
      )["options"]["flash"]
      == 0.0
  )


def test_voice_sound_and_look_follow_one_envelope_only_when_set():
  options = dict(
      size=64,
      duration=4.0,
      sample_rate=8000,
      fps=10,
      offscreen_prob=0.0,
      max_objects=1,
      hum_level=0.05,
  )
  aligned, shifted = [], []
  for index in range(4):
    frames, audio, truth, _ = synthetic_clip.render_clip(index, SEED, options)
    spoken, spoken_audio, spoken_truth, _ = synthetic_clip.render_clip(
        index, SEED, dict(options, voice=0.5)
    )
    obj, spoken_obj = truth["objects"][0], spoken_truth["objects"][0]
    assert obj["event_times"] == spoken_obj["event_times"]  # same scene

    # Brightness of the object's box (min over RGB: whitening raises it) and
    # the loudness of each frame's 0.1 s of sound.
    def brightness(f, boxes):
      return np.array(
          [
              f[t, int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))]
              .min(axis=-1)
              .mean()
              for t, (x0, y0, x1, y1) in enumerate(boxes)
          ]
      )

    rms = lambda a: _loudness(
        a, 8000, hop_s=0.1
    )  # one value per frame (10 fps)
    bright, loud = brightness(spoken, spoken_obj["boxes"]), rms(spoken_audio)
    aligned.append(np.corrcoef(bright, loud)[0, 1])
    shifted.append(np.corrcoef(bright, np.roll(loud, 15))[0, 1])
    # Speaking makes the sound louder between bursts and the object brighter.
    assert rms(spoken_audio).mean() > 1.5 * rms(audio).mean()
    assert bright.mean() > brightness(frames, obj["boxes"]).mean() + 5
  assert min(aligned) > 0.6 and max(np.abs(shifted)) < 0.4, (aligned, shifted)
  key = synthetic_cache._cache_key(4, 0, synthetic_options.as_options(), False)[
      "options"
  ]
  assert "voice" not in key  # worlds made before the option keep their caches
  assert (
      synthetic_cache._cache_key(
          4, 0, synthetic_options.as_options(voice=0.5), False
      )["options"]["voice"]
      == 0.5
  )


@pytest.mark.parametrize(
    "bad",
    [
        dict(pitch_spread=-1.0),
        dict(background_noise=-0.1),
        dict(hum_level=-0.2),
        dict(silent_prob=1.5),
        dict(offscreen_prob=-0.1),
        dict(class_cue="colour"),
        dict(flash=1.5),
        dict(voice=-0.5),
    ],
)
def test_bad_world_options_are_refused_by_name(bad):
  name = next(iter(bad))
  with pytest.raises(ValueError, match=name):
    synthetic_options.as_options(**bad)
