"""The tf.data pipeline on tiny records whose content says where it came from.

Frames are solid colours: red = 30 * video + 20, green = 8 * frame index.
Audio is a ramp: 0.05 + 0.1 * video + 0.02 * seconds, so any sample tells its
video and its time.
"""

import platform

import numpy as np
import pytest
import tensorflow as tf

from avself.data import audio, ops, pipeline, reading, records

FPS, SAMPLE_RATE = 10, 8000
DURATIONS = (
    3.0,
    2.0,
    2.5,
    3.5,
    0.5,
    3.0,
    2.0,
    3.0,
)  # video 4 is shorter than 1 s
VALID = [v for v, d in enumerate(DURATIONS) if d >= 1.0]
STFT_FRAME = (
    800  # 0.1 s frames: the DC bin of frame 0 is 400 x the ramp 0.05 s in
)


def _video(vid, seconds, audio_format="pcm_s16le"):
  frames = [
      tf.io.encode_jpeg(
          np.full((40, 48, 3), [30 * vid + 20, 8 * i, 128], np.uint8),
          quality=100,
      ).numpy()
      for i in range(int(seconds * FPS))
  ]
  t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
  return records.make_sequence_example(
      filename=f"v{vid}.mp4",
      jpeg_frames=frames,
      waveform=0.05 + 0.1 * vid + 0.02 * t,
      sample_rate=SAMPLE_RATE,
      fps=FPS,
      label_index=[vid],
      audio_format=audio_format,
  )


@pytest.fixture(scope="module")
def records_dir(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("records"))
  videos = [_video(v, d) for v, d in enumerate(DURATIONS)]
  for i in range(4):
    records.write_records(
        records.shard_path(directory, "train", i, 4), videos[i::4]
    )
  return directory


def _config(path, **overrides):
  cfg = pipeline.default_data_config()
  cfg.update(
      path=path,
      sample_rate=SAMPLE_RATE,
      default_sample_rate=SAMPLE_RATE,
      default_fps=FPS,
      resize_shorter=40,
      image_size=32,
      samples_per_video=2,
      shuffle_buffer=64,
      cycle_length=4,
      cache=True,
  )
  cfg.spectrogram.update(
      frame_length=STFT_FRAME, frame_step=STFT_FRAME, fft_length=STFT_FRAME
  )
  cfg.augment.update(flip=False, brightness=0.0, saturation=0.0, audio_gain=0.0)
  cfg.sync.update(num_frames=4, clip_seconds=1.0, min_shift=0.5, max_shift=1.0)
  cfg.mixture.update(num_frames=4, clip_seconds=1.0)
  cfg.update(overrides)
  return cfg


def _batches(cfg, mode, count=None, batch_size=8, train=True, seed=0, **kwargs):
  ds = pipeline.make_dataset(
      cfg,
      mode=mode,
      split="train",
      batch_size=batch_size,
      train=train,
      seed=seed,
      **kwargs,
  )
  ds = ds if count is None else ds.take(count)
  return list(ds.as_numpy_iterator())


def _stack(batches):
  if not batches:  # e.g. a host whose only record is too short
    return {"label": np.zeros([0], np.int64), "mask": np.zeros([0], np.int32)}
  return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def _frame_colour(image):
  """(video, frame index) from a [..., S, S, 3] image in [-1, 1]."""
  rgb = (image.mean(axis=(-3, -2)) + 1) * 127.5
  return np.round((rgb[..., 0] - 20) / 30).astype(int), np.round(
      rgb[..., 1] / 8
  ).astype(int)


def _ramp(value):
  """(video, seconds) from ramp samples."""
  vid = np.floor((value - 0.05 + 1e-3) / 0.1).astype(int)
  return vid, (value - 0.05 - 0.1 * vid) / 0.02


def _spectrogram_start(spec):
  """(video, window start in seconds) from a [..., F, T, 1] log spectrogram's DC bin."""
  mean = (np.exp(spec[..., 0, 0, 0]) - 1e-6) / (
      STFT_FRAME / 2
  )  # Hann sum = N / 2
  vid, seconds = _ramp(mean)
  return vid, seconds - STFT_FRAME / 2 / SAMPLE_RATE


def test_avc_shapes_ranges_and_honest_labels(records_dir):
  cfg = _config(records_dir)
  out = _stack(_batches(cfg, "avc", count=50))  # 400 examples
  assert set(out) == {"image", "audio", "label", "class_label"}
  assert (
      out["image"].shape == (400, 32, 32, 3)
      and out["image"].dtype == np.float32
  )
  assert out["image"].min() >= -1 and out["image"].max() <= 1
  assert out["audio"].shape == (400,) + audio.spectrogram_shape(
      cfg.spectrogram, 8000
  ) + (1,)
  assert out["label"].dtype == np.int32 and out["class_label"].dtype == np.int32
  frame_vid, frame = _frame_colour(out["image"])
  audio_vid, start = _spectrogram_start(out["audio"])
  assert set(frame_vid) <= set(VALID) and set(audio_vid) <= set(VALID)
  np.testing.assert_array_equal(
      out["label"], frame_vid == audio_vid
  )  # negatives: two videos
  np.testing.assert_array_equal(out["class_label"], frame_vid)
  assert 0.4 < out["label"].mean() < 0.65
  # Positives mostly keep their own audio, whose window holds the frame (the
  # rest drew a partner from the same video).
  inside = (frame / FPS >= start - 1e-3) & (frame / FPS < start + 1 + 1e-3)
  assert inside[out["label"] == 1].mean() > 0.75


def test_pairs_audio_window_contains_the_frame(records_dir):
  out = _stack(_batches(_config(records_dir), "pairs", count=10))
  assert set(out) == {
      "image",
      "audio",
      "label",
      "class_label",
      "audio_class_label",
  }
  frame_vid, frame = _frame_colour(out["image"])
  audio_vid, start = _spectrogram_start(out["audio"])
  np.testing.assert_array_equal(frame_vid, audio_vid)
  np.testing.assert_array_equal(out["audio_class_label"], out["class_label"])
  assert (out["label"] == 1).all()
  assert (
      (frame / FPS >= start - 1e-3) & (frame / FPS < start + 1 + 1e-3)
  ).all()
  assert (start >= -1e-3).all() and (
      start + 1 <= np.array(DURATIONS)[audio_vid] + 1e-3
  ).all()


def _check_clip_frames(video, start):
  """Clip frames k sit at start + k * clip / N seconds (clip 1 s, N = 4)."""
  vid, frame = _frame_colour(video)  # [B, N]
  times = start[:, None] + np.arange(4) * 0.25
  assert (
      (frame / FPS <= times + 2e-3) & ((frame + 1) / FPS > times - 2e-3)
  ).all()
  return vid[:, 0]


def test_sync_paired_shift_in_range_and_really_offset(records_dir):
  out = _stack(_batches(_config(records_dir), "sync", count=16))
  assert set(out) == {
      "video",
      "waveform",
      "shifted_waveform",
      "shift_seconds",
      "class_label",
  }
  assert out["video"].shape == (128, 4, 32, 32, 3) and out[
      "waveform"
  ].shape == (128, 8000, 1)
  vid, start = _ramp(out["waveform"][:, 0, 0])
  np.testing.assert_array_equal(_check_clip_frames(out["video"], start), vid)
  np.testing.assert_array_equal(out["class_label"], vid)
  shift = out["shift_seconds"]
  assert ((np.abs(shift) >= 0.5 - 1e-4) & (np.abs(shift) <= 1.0 + 1e-4)).all()
  assert (shift < 0).any() and (shift > 0).any()
  # Every shifted sample is the ramp at (aligned time + shift), wrapping in the video.
  # (16-bit audio quantises the ramp: the decoded start is good to ~2 ms, so
  # samples that close to the wrap point are left out.)
  duration = np.array(DURATIONS)[vid][:, None]
  times = start[:, None] + shift[:, None] + np.arange(8000) / SAMPLE_RATE
  near_wrap = np.abs(times - duration) < 3e-3
  want = 0.05 + 0.1 * vid[:, None] + 0.02 * np.mod(times, duration)
  np.testing.assert_allclose(
      out["shifted_waveform"][..., 0][~near_wrap], want[~near_wrap], atol=2e-4
  )
  wrapped = start + shift + 1 > duration[:, 0] + 1e-3
  assert wrapped.any(), "the 2 s videos should need the circular edge rule"
  assert not (start + shift < -1e-3).any()


def test_sync_unpaired_labels_aligned_or_shifted(records_dir):
  cfg = _config(records_dir)
  cfg.sync.paired = False
  out = _stack(_batches(cfg, "sync", count=16))
  assert set(out) == {
      "video",
      "waveform",
      "label",
      "shift_seconds",
      "class_label",
  }
  assert 0.3 < out["label"].mean() < 0.7
  assert (out["shift_seconds"][out["label"] == 1] == 0).all()
  assert (np.abs(out["shift_seconds"][out["label"] == 0]) >= 0.5 - 1e-4).all()
  _, frame = _frame_colour(out["video"][:, 0])
  _, heard = _ramp(out["waveform"][:, 0, 0])
  duration = np.array(DURATIONS)[out["class_label"]]
  seen = np.mod(heard - out["shift_seconds"], duration)  # undo the shift
  assert (
      (frame / FPS <= seen + 2e-3) & ((frame + 1) / FPS > seen - 2e-3)
  ).all()


def test_mixture_is_on_plus_off_from_another_video(records_dir):
  out = _stack(_batches(_config(records_dir), "mixture", count=8))
  assert set(out) == {
      "video",
      "mixture_waveform",
      "on_screen_waveform",
      "off_screen_waveform",
      "class_label",
  }
  np.testing.assert_array_equal(
      out["mixture_waveform"],
      out["on_screen_waveform"] + out["off_screen_waveform"],
  )
  on_vid, start = _ramp(out["on_screen_waveform"][:, 0, 0])
  off_vid, _ = _ramp(out["off_screen_waveform"][:, 0, 0])
  np.testing.assert_array_equal(_check_clip_frames(out["video"], start), on_vid)
  np.testing.assert_array_equal(out["class_label"], on_vid)
  assert (on_vid != off_vid).all()


def _clips(cfg, train=False, **kwargs):
  batches = _batches(cfg, "clips", train=train, **kwargs)
  return batches, _stack(batches)


def test_clips_cover_every_window_once_with_padding(records_dir):
  batches, out = _clips(_config(records_dir))
  windows = sorted(
      (v, k) for v in VALID for k in range(int(DURATIONS[v]))
  )  # 18 windows
  assert len(batches) == 3 and [b["mask"].sum() for b in batches] == [8, 8, 2]
  np.testing.assert_array_equal(batches[-1]["mask"], [1, 1, 0, 0, 0, 0, 0, 0])
  real = out["mask"] == 1
  got = sorted(
      zip(out["label"][real], np.round(out["window_start"][real]).astype(int))
  )
  assert got == windows
  frame_vid, frame = _frame_colour(out["image"][real])
  np.testing.assert_array_equal(frame_vid, out["label"][real])
  np.testing.assert_array_equal(
      frame, out["window_start"][real] * FPS + 5
  )  # centre frame
  audio_vid, start = _spectrogram_start(out["audio"][real])
  np.testing.assert_array_equal(audio_vid, out["label"][real])
  np.testing.assert_allclose(start, out["window_start"][real], atol=2e-3)
  # video_index numbers this host's videos 0..V-1, one per video.
  pairs = set(zip(out["video_index"][real], out["label"][real]))
  assert sorted(i for i, _ in pairs) == list(range(len(VALID)))
  # Finite and deterministic: a second pass, even asked with train=True, is the same.
  again = _clips(_config(records_dir), train=True)[1]
  for key in out:
    np.testing.assert_array_equal(again[key], out[key])


def test_clips_per_video_caps_and_spreads_windows(records_dir):
  _, out = _clips(_config(records_dir, clips_per_video=2))
  real = out["mask"] == 1
  for v in VALID:
    starts = sorted(out["window_start"][real][out["label"][real] == v])
    assert starts == ([0.0, 2.0] if int(DURATIONS[v]) == 3 else [0.0, 1.0])


@pytest.mark.parametrize("process_count", [1, 2, 3, 7])
def test_hosts_read_disjoint_complete_shards(records_dir, process_count):
  cfg = _config(records_dir)
  seen = []
  for index in range(process_count):
    _, out = _clips(cfg, process_index=index, process_count=process_count)
    seen.append(set(out["label"][out["mask"] == 1]))
  assert set.union(*seen) == set(VALID)
  assert sum(len(s) for s in seen) == len(VALID)  # disjoint


def test_host_shards_split_files_or_share_them_when_too_few():
  shards = [f"s{i}" for i in range(5)]
  assert reading.host_shards(shards, 1, 2) == ["s1", "s3"]
  # Fewer shards than processes: every host reads all, keeping every 6th record.
  assert reading.host_shards(shards, 0, 6) == shards


def test_same_seed_same_batches_other_seed_other_batches(records_dir):
  cfg = _config(records_dir, cache=False)
  cfg.augment.update(flip=True, brightness=0.2, saturation=0.2, audio_gain=0.1)
  first = _batches(cfg, "avc", count=3, seed=7)
  again = _batches(cfg, "avc", count=3, seed=7)
  other = _batches(cfg, "avc", count=3, seed=8)
  for a, b in zip(first, again):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])
  assert any(
      not np.array_equal(a["audio"], c["audio"]) for a, c in zip(first, other)
  )
  assert all(np.abs(b["image"]).max() <= 1 for b in first)


def test_dmvr_record_with_float_audio_and_no_avself_keys(tmp_path):
  examples = [_video(v, 2.0, audio_format="floats") for v in (1, 2)]
  for ex in examples:
    for key in (records.FPS_KEY, records.SAMPLE_RATE_KEY, records.CHANNELS_KEY):
      del ex.context.feature[key]
  records.write_records(
      records.shard_path(str(tmp_path), "train", 0, 1), examples
  )
  _, out = _clips(_config(str(tmp_path)))
  real = out["mask"] == 1
  assert sorted(zip(out["label"][real], out["window_start"][real])) == [
      (1, 0.0),
      (1, 1.0),
      (2, 0.0),
      (2, 1.0),
  ]
  audio_vid, start = _spectrogram_start(out["audio"][real])
  np.testing.assert_array_equal(audio_vid, out["label"][real])
  np.testing.assert_allclose(start, out["window_start"][real], atol=1e-4)


def test_stereo_kept_for_waveforms_and_averaged_or_kept_for_spectrograms(
    tmp_path,
):
  t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
  frames = (
      [tf.io.encode_jpeg(np.zeros((40, 48, 3), np.uint8)).numpy()] * 2 * FPS
  )
  stereo = np.stack([0.1 + 0.02 * t, 0.3 + 0.02 * t], -1)  # left, right
  example = records.make_sequence_example(
      filename="s.mp4",
      jpeg_frames=frames,
      waveform=stereo,
      sample_rate=SAMPLE_RATE,
      fps=FPS,
      label_index=[0],
  )
  records.write_records(
      records.shard_path(str(tmp_path), "train", 0, 1), [example] * 4
  )
  cfg = _config(str(tmp_path))
  sync = _batches(cfg, "sync", count=1, batch_size=4)[0]
  assert sync["waveform"].shape == (4, 8000, 2)
  np.testing.assert_allclose(
      sync["waveform"][..., 1] - sync["waveform"][..., 0], 0.2, atol=1e-4
  )
  mono = _clips(cfg)[1]["audio"]
  cfg.spectrogram.mono = False
  both = _clips(cfg)[1]["audio"]
  assert mono.shape[-1] == 1 and both.shape == mono.shape[:-1] + (2,)
  dc = (
      np.exp(
          np.stack([mono[..., 0, 0, 0], both[..., 0, 0, 0], both[..., 0, 0, 1]])
      )
      - 1e-6
  ) / 400
  np.testing.assert_allclose(
      dc[0], (dc[1] + dc[2]) / 2, rtol=1e-3
  )  # mono = mean of channels
  np.testing.assert_allclose(dc[2] - dc[1], 0.2, atol=1e-3)


def test_corrupt_records_are_skipped_or_fatal(tmp_path):
  path = records.shard_path(str(tmp_path), "train", 0, 1)
  with tf.io.TFRecordWriter(path) as writer:
    writer.write(_video(1, 1.0).SerializeToString())
    writer.write(b"not a SequenceExample")
    writer.write(_video(2, 1.0).SerializeToString())
  _, out = _clips(_config(str(tmp_path)))
  assert sorted(out["label"][out["mask"] == 1]) == [1, 2]
  with pytest.raises(tf.errors.InvalidArgumentError):
    _clips(_config(str(tmp_path), on_corrupt="fail"))


def test_keep_freed_memory_sets_glibc_malloc():
  if platform.libc_ver()[0] != "glibc":
    pytest.skip("glibc only")
  assert pipeline.keep_freed_memory()


def test_sample_rate_mismatch_names_both_rates(records_dir):
  cfg = _config(records_dir, sample_rate=16000)
  with pytest.raises(
      tf.errors.InvalidArgumentError, match="sample rate"
  ) as error:
    _clips(cfg)
  assert "16000" in str(error.value) and "8000" in str(error.value)


def test_missing_shards_and_unknown_mode_raise(tmp_path, records_dir):
  with pytest.raises(FileNotFoundError, match="No record shards"):
    pipeline.make_dataset(
        _config(str(tmp_path)),
        mode="avc",
        split="train",
        batch_size=2,
        train=True,
        seed=0,
    )
  with pytest.raises(ValueError, match="mode"):
    pipeline.make_dataset(
        _config(records_dir),
        mode="l3",
        split="train",
        batch_size=2,
        train=True,
        seed=0,
    )


# ### ops ######################################################################


def _gradient_jpeg(height=40, width=48):
  y, x = np.mgrid[0:height, 0:width]
  image = np.stack([4 * x + 20, 5 * y + 10, np.full_like(x, 100)], -1).astype(
      np.uint8
  )
  return tf.io.encode_jpeg(image, quality=100), image


def test_decode_crop_window_follows_the_draws():
  jpeg, _ = _gradient_jpeg()
  full = tf.io.decode_jpeg(jpeg).numpy().astype(int)
  offsets = [(y, x) for y in range(9) for x in range(17)]
  for u_y, u_x, want in [
      (0.0, 0.0, (0, 0)),
      (0.999, 0.999, (8, 16)),
      (0.5, 0.25, (4, 4)),
      (None, None, (4, 8)),
  ]:
    crop = ops.decode_crop(
        jpeg, size=32, resize_shorter=40, u_y=u_y, u_x=u_x
    ).numpy()
    # Cropped decoding may differ from full decoding by a few levels at the
    # edges (chroma upsampling), so find the best-matching window.
    errors = [
        np.abs(crop.astype(int) - full[y : y + 32, x : x + 32]).mean()
        for y, x in offsets
    ]
    assert offsets[int(np.argmin(errors))] == want and min(errors) < 0.5


def test_decode_crop_resizes_when_the_shorter_side_differs():
  jpeg, _ = _gradient_jpeg()
  clip = tf.stack([jpeg, jpeg])
  got = ops.decode_crop(
      clip, size=16, resize_shorter=20
  ).numpy()  # 40x48 -> 20x24
  resized = tf.image.resize(tf.io.decode_jpeg(jpeg), [20, 24], antialias=True)
  want = tf.cast(tf.round(resized), tf.uint8).numpy()[2:18, 4:20]
  assert got.shape == (2, 16, 16, 3)
  np.testing.assert_array_equal(got[0], want)
  np.testing.assert_array_equal(got[1], want)


def test_finish_images_scales_and_jitters():
  grey = np.full((2, 4, 4, 3), 127, np.uint8)
  np.testing.assert_allclose(
      ops.finish_images(grey, None, None), 127 / 127.5 - 1, atol=1e-6
  )
  brighter = ops.finish_images(grey, tf.constant([0.1, -0.1]), None).numpy()
  np.testing.assert_allclose(
      brighter[:, 0, 0, 0],
      [2 * (127 / 255 + 0.1) - 1, 2 * (127 / 255 - 0.1) - 1],
      atol=1e-5,
  )
  colour = np.broadcast_to(np.array([200, 50, 50], np.uint8), (2, 4, 4, 3))
  desaturated = ops.finish_images(colour, None, tf.constant([0.0, 1.0])).numpy()
  assert np.ptp(desaturated[0, 0, 0]) < 1e-6  # factor 0: grey
  np.testing.assert_allclose(
      desaturated[1], ops.finish_images(colour[1:], None, None)[0], atol=1e-6
  )
  extreme = ops.finish_images(
      colour, tf.constant([0.9, -0.9]), tf.constant([3.0, 3.0])
  )
  assert np.abs(extreme.numpy()).max() <= 1.0


def test_flip_slice_mono_and_pad():
  image = np.arange(12, dtype=np.uint8).reshape(1, 2, 2, 3)
  np.testing.assert_array_equal(ops.maybe_flip(image, 0.2), image[:, :, ::-1])
  np.testing.assert_array_equal(ops.maybe_flip(image, 0.7), image)
  waveform = np.arange(20, dtype=np.float32).reshape(10, 2)
  windows = ops.slice_windows(
      waveform, tf.constant([0, 3], tf.int64), 4
  ).numpy()
  np.testing.assert_array_equal(windows, [waveform[0:4], waveform[3:7]])
  np.testing.assert_array_equal(ops.mono(windows)[..., 0], windows.mean(-1))
  looped = ops.circular(waveform, 8, 4).numpy()
  np.testing.assert_array_equal(looped[8:], waveform[:4])
  padded = ops.pad_batch({"x": tf.ones([3, 2])}, 5)
  np.testing.assert_array_equal(padded["mask"], [1, 1, 1, 0, 0])
  np.testing.assert_array_equal(padded["x"].numpy().sum(1), [2, 2, 2, 0, 0])


def test_clips_batches_have_static_shapes(records_dir):
  # Evaluators pad hosts with fewer (or no) batches with zeros of these shapes.
  ds = pipeline.make_dataset(
      _config(records_dir),
      mode="clips",
      split="train",
      batch_size=8,
      train=False,
      seed=0,
      process_index=4,
      process_count=7,
  )
  assert all(spec.shape.is_fully_defined() for spec in ds.element_spec.values())
  assert (
      list(ds.as_numpy_iterator()) == []
  )  # this host's only record is too short


def test_clip_mode_gives_consecutive_frames_and_audio_from_the_first_frame(
    records_dir,
):
  cfg = _config(records_dir)
  cfg.clip.update(num_frames=10, clip_seconds=1.0)
  out = _stack(_batches(cfg, "clip", count=8))
  assert set(out) == {"video", "waveform", "class_label"}
  assert out["video"].shape == (64, 10, 32, 32, 3)
  assert out["waveform"].shape == (64, 8000, 1)
  vid, frame = _frame_colour(out["video"])
  assert (vid == out["class_label"][:, None]).all()
  # Consecutive (green = 8 * frame wraps at frame 32 in the 3.5 s video).
  np.testing.assert_array_equal(np.mod(np.diff(frame, axis=1), 32), 1)
  heard_vid, heard = _ramp(out["waveform"][:, 0, 0])
  np.testing.assert_array_equal(heard_vid, out["class_label"])
  # The sound starts where the first frame starts (16-bit audio: ~2 ms).
  apart = np.mod(heard * FPS - frame[:, 0], 32)  # in frames, modulo the wrap
  assert (np.minimum(apart, 32 - apart) < 3e-3 * FPS).all()


def test_audible_windows_skip_silence_and_leave_audible_draws_alone():
  from avself.data import sampling  # pylint: disable=g-import-not-at-top

  # 4 s at 1 kHz: silent but for 1.5-2.5 s; 1 s windows (n = 1000).
  rng = np.random.default_rng(0)
  waveform = np.zeros((4000, 1), np.float32)
  waveform[1500:2500, 0] = rng.standard_normal(1000)
  video = {
      "waveform": tf.constant(waveform),
      "frames": tf.constant([b""] * 40),
      "fps": tf.constant(10.0),
      "sample_rate": tf.constant(1000),
  }
  u = tf.constant(rng.uniform(size=200), tf.float32)
  plain = sampling.audible_starts(video, u, 1000, 1, 0.1).numpy()
  np.testing.assert_array_equal(plain, ops.uniform_int(u, 3001).numpy())

  def heard(starts):  # share of each window's samples that carry sound
    return np.array([np.mean(waveform[s : s + 1000, 0] != 0) for s in starts])

  # The clip's mean power is 1/4: a window is audible at min_energy 0.1 when
  # 2.5 % of it sounds, at 2.0 when half of it does.
  assert np.mean(heard(plain) < 0.025) > 0.3  # many plain draws are silent
  picked = sampling.audible_starts(video, u, 1000, 4, 0.1).numpy()
  assert np.mean(heard(picked) < 0.025) < 0.05
  # A draw that was audible is kept as it was.
  audible = heard(plain) >= 0.05  # clear of the threshold
  np.testing.assert_array_equal(picked[audible], plain[audible])
  loud = sampling.audible_starts(video, u, 1000, 4, 2.0).numpy()
  assert np.mean(heard(loud) >= 0.4) > 0.9 > np.mean(heard(plain) >= 0.4)
  # A clip with no sound at all: the first draw's start is as good as any.
  video["waveform"] = tf.zeros((4000, 1))
  assert sampling.audible_starts(video, u, 1000, 4, 0.1).shape == (200,)
