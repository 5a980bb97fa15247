"""Sampling: one parsed video -> K undecoded examples, and pairing them.

Each example comes from one row of uniform draws (its random state: window,
frame, crop, flip, jitter, gain, pairing, shift), so a clip's frames and its
sound stay aligned.
"""

import os

import tensorflow as tf

from avself.data import ops, reading

# ### Sampling: one video -> K examples (vectorised over K) ####################


def seconds_to_samples(seconds: float, cfg) -> int:
  return int(round(seconds * cfg.sample_rate))


def _rate(video, key) -> tf.Tensor:
  return tf.cast(video[key], tf.float64)


def _frame_at(video, seconds: tf.Tensor) -> tf.Tensor:
  """Index of the frame showing time `seconds` (clipped to the last frame)."""
  index = tf.cast(tf.floor(seconds * _rate(video, "fps") + 1e-6), tf.int64)
  return tf.minimum(index, tf.size(video["frames"], out_type=tf.int64) - 1)


def _shared_fields(video, k: int, rand) -> dict:
  """Per-example fields every mode carries: identity, class and random state."""
  video_id = tf.strings.join(
      [video["filename"], tf.strings.as_string(video["start_us"])], "@"
  )
  return dict(
      video_id=tf.fill([k], video_id),
      class_label=tf.fill([k], tf.cast(video["label"], tf.int32)),
      rand=rand,
  )


def _maybe_mono(waveform, cfg):
  """[K, n, C] -> [K, n, 1] when the spectrogram is mono (smaller shuffle buffer)."""
  return ops.mono(waveform) if cfg.spectrogram.mono else waveform


# Candidate window draws after the first: u + j * (golden ratio) mod 1 are
# spread over the clip and leave the first draw (and with it every example
# whose first window is audible) as without the check.
_GOLDEN = 0.6180339887498949


def audible_starts(video, u, n: int, tries: int, min_energy: float):
  """Window starts [K]: the first of `tries` draws whose sound is audible.

  `u` [K] uniform draws. Draw j starts at `uniform_int(u + j * golden mod 1)`.
  A window is audible when its mean power is at least `min_energy` times the
  clip's mean power (relative: any recording level); where none of the draws
  is, the loudest is taken. `tries` 1: the first draw, as ever.
  """
  usable = reading.usable_samples(video)
  offsets = tf.range(tries, dtype=tf.float32)[:, None] * _GOLDEN
  u = tf.math.floormod(u[None, :] + offsets, 1.0)  # [tries, K]
  starts = ops.uniform_int(u, usable - n + 1)  # [tries, K]
  if tries == 1:
    return starts[0]
  power = tf.reduce_mean(
      tf.square(tf.cast(video["waveform"][:usable], tf.float64)), axis=1
  )
  cumulative = tf.concat([tf.zeros([1], tf.float64), tf.cumsum(power)], 0)
  energy = (
      tf.gather(cumulative, starts + n) - tf.gather(cumulative, starts)
  ) / float(n)
  clip = cumulative[-1] / tf.cast(tf.maximum(usable, 1), tf.float64)
  audible = energy >= min_energy * clip  # [tries, K]
  first = tf.argmax(tf.cast(audible, tf.int32), axis=0)
  pick = tf.where(
      tf.reduce_any(audible, axis=0), first, tf.argmax(energy, axis=0)
  )
  return tf.reduce_sum(
      starts * tf.one_hot(pick, tries, axis=0, dtype=tf.int64), 0
  )


def sample_frame_and_audio(video, cfg, k: int, tries: int = 1) -> dict:
  """K (frame, audio window) pairs; each frame lies inside its audio window.

  `tries` > 1: each window is the first audible one of that many draws
  (`audible_starts`, `cfg.audible_window.min_energy`).
  """
  rand = ops.draw_random_state(video["seed"], k)  # [K, P]
  n = seconds_to_samples(cfg.audio_seconds, cfg)
  starts = audible_starts(
      video,
      ops.random_field(rand, "window"),
      n,
      tries,
      cfg.get("audible_window", {}).get("min_energy", 0.0),
  )  # [K]
  per_frame = _rate(video, "fps") / _rate(video, "sample_rate")
  first = tf.cast(
      tf.math.ceil(tf.cast(starts, tf.float64) * per_frame), tf.int64
  )
  last = (
      tf.cast(
          tf.math.ceil(tf.cast(starts + n, tf.float64) * per_frame), tf.int64
      )
      - 1
  )
  last = tf.minimum(last, tf.size(video["frames"], out_type=tf.int64) - 1)
  first = tf.minimum(first, last)
  frame = first + ops.uniform_int(
      ops.random_field(rand, "frame"), last - first + 1
  )
  out = _shared_fields(video, k, rand)
  waveform = _maybe_mono(ops.slice_windows(video["waveform"], starts, n), cfg)
  out.update(jpeg=tf.gather(video["frames"], frame), waveform=waveform)
  return out


def sample_clip(video, cfg, k: int, clip) -> tuple[dict, tf.Tensor]:
  """K clips of `clip.num_frames` frames over `clip.clip_seconds` with aligned audio."""
  rand = ops.draw_random_state(video["seed"], k)
  n = seconds_to_samples(clip.clip_seconds, cfg)
  starts = ops.uniform_int(
      ops.random_field(rand, "window"), reading.usable_samples(video) - n + 1
  )
  offsets = tf.range(clip.num_frames, dtype=tf.float64) * (
      clip.clip_seconds / clip.num_frames
  )
  times = (
      tf.cast(starts, tf.float64)[:, None] / _rate(video, "sample_rate")
      + offsets
  )
  out = _shared_fields(video, k, rand)
  out.update(
      jpeg=tf.gather(video["frames"], _frame_at(video, times)),  # [K, N]
      waveform=ops.slice_windows(video["waveform"], starts, n),
  )  # [K, n, C]
  return out, starts


def sample_frame_aligned_clip(video, cfg, k: int) -> dict:
  """K runs of `clip.num_frames` consecutive frames and the audio they span.

  Each window starts at a frame's start (sample round(first * rate / fps)), so
  audio step j of frame i lies inside frame i: what sonorization regresses
  per step. `clip.clip_seconds` is `num_frames` / the records' fps.
  """
  rand = ops.draw_random_state(video["seed"], k)
  n = seconds_to_samples(cfg.clip.clip_seconds, cfg)
  per_frame = _rate(video, "sample_rate") / _rate(video, "fps")
  usable = reading.usable_samples(video)
  last_first = tf.cast(
      tf.floor(tf.cast(usable - n, tf.float64) / per_frame), tf.int64
  )
  last_first = tf.minimum(
      last_first,
      tf.size(video["frames"], out_type=tf.int64) - int(cfg.clip.num_frames),
  )
  first = ops.uniform_int(
      ops.random_field(rand, "window"), tf.maximum(last_first, 0) + 1
  )  # [K]
  starts = tf.cast(tf.round(tf.cast(first, tf.float64) * per_frame), tf.int64)
  starts = tf.minimum(starts, usable - n)
  frames = first[:, None] + tf.range(int(cfg.clip.num_frames), dtype=tf.int64)
  frames = tf.minimum(frames, tf.size(video["frames"], out_type=tf.int64) - 1)
  out = _shared_fields(video, k, rand)
  out.update(
      jpeg=tf.gather(video["frames"], frames),  # [K, N]
      waveform=_maybe_mono(
          ops.slice_windows(video["waveform"], starts, n), cfg
      ),
  )
  return out


def _shift(starts, rand, usable, n: int, sync, sample_rate: int):
  """Signed shifts (samples) with |shift| in [min_shift, max_shift] seconds.

  Edge rule: the sign is random when both shifted windows fit in the video,
  forced when only one fits, and + with circular wrap-around (sample indices
  modulo the usable length) when neither does, which happens only in videos
  shorter than clip + 2 * shift (e.g. 10 s videos, 4.2 s clips, shifts > 2.9 s).
  """
  seconds = sync.min_shift + ops.random_field(rand, "shift") * (
      sync.max_shift - sync.min_shift
  )
  size = tf.cast(tf.round(tf.cast(seconds, tf.float64) * sample_rate), tf.int64)
  up_fits = starts + size <= usable - n
  down_fits = starts - size >= 0
  go_down = tf.logical_and(
      down_fits,
      tf.logical_or(
          tf.logical_not(up_fits), ops.random_field(rand, "shift_sign") < 0.5
      ),
  )
  return tf.where(go_down, -size, size)


def sample_sync(video, cfg, k: int) -> dict:
  """K sync examples: aligned and shifted audio for one clip of frames."""
  out, starts = sample_clip(video, cfg, k, cfg.sync)
  n = seconds_to_samples(cfg.sync.clip_seconds, cfg)
  usable = reading.usable_samples(video)
  shift = _shift(starts, out["rand"], usable, n, cfg.sync, cfg.sample_rate)
  looped = ops.circular(video["waveform"], usable, n)
  shifted = ops.slice_windows(
      looped, tf.math.floormod(starts + shift, usable), n
  )
  if not cfg.sync.paired:
    aligned = ops.random_field(out["rand"], "pair") < 0.5  # [K]
    out["waveform"] = tf.where(aligned[:, None, None], out["waveform"], shifted)
    shift = tf.where(aligned, tf.zeros_like(shift), shift)
    out["label"] = tf.cast(aligned, tf.int32)
  else:
    out["shifted_waveform"] = shifted
  out["shift_seconds"] = tf.cast(
      tf.cast(shift, tf.float64) / cfg.sample_rate, tf.float32
  )
  return out


def sample_clip_windows(video, cfg) -> dict:
  """Non-overlapping windows (all, or `clips_per_video` spread out) with their centre frames."""
  n = seconds_to_samples(cfg.audio_seconds, cfg)
  total = reading.usable_samples(video) // n
  count = (
      total
      if not cfg.clips_per_video
      else tf.minimum(total, cfg.clips_per_video)
  )
  # M window numbers, evenly spread: (2j + 1) W // 2M is j itself when M = W.
  chosen = (2 * tf.range(count, dtype=tf.int64) + 1) * total // (2 * count)
  starts = chosen * n
  centres = (tf.cast(starts, tf.float64) + n / 2) / _rate(video, "sample_rate")
  channels = tf.shape(video["waveform"], out_type=tf.int64)[1]
  flat = tf.reshape(video["waveform"], [-1])[: total * n * channels]
  windows = tf.reshape(flat, tf.stack([total, n, channels]))  # [W, n, C]
  return dict(
      jpeg=tf.gather(video["frames"], _frame_at(video, centres)),
      waveform=_maybe_mono(tf.gather(windows, chosen), cfg),
      label=tf.fill([count], tf.cast(video["label"], tf.int32)),
      video_index=tf.fill([count], tf.cast(video["index"], tf.int32)),
      window_start=tf.cast(
          tf.cast(starts, tf.float64) / _rate(video, "sample_rate"), tf.float32
      ),
  )


# ### Pairing ################################################################


def frame_targets_path(cfg) -> str:
  """`frame_targets.path`, relative to the records folder unless absolute."""
  path = cfg.frame_targets.path
  if not path:
    raise ValueError(
        "mode 'frame_targets' needs data.frame_targets.path (a table made by "
        "avself.data.teacher or avself.data.texture)"
    )
  return path if os.path.isabs(path) else os.path.join(cfg.path, path)


def sample_frame_targets(video, cfg, k: int, rows_of) -> dict:
  """K audio windows, each with its centre frame and the targets of `steps` frames in it."""
  rand = ops.draw_random_state(video["seed"], k)
  n = seconds_to_samples(cfg.audio_seconds, cfg)
  starts = ops.uniform_int(
      ops.random_field(rand, "window"), reading.usable_samples(video) - n + 1
  )
  steps = int(cfg.frame_targets.steps)
  seconds = tf.cast(starts, tf.float64)[:, None] / _rate(video, "sample_rate")
  parts = (tf.range(steps, dtype=tf.float64) + 0.5) * (
      cfg.audio_seconds / steps
  )
  out = _shared_fields(video, k, rand)
  out.update(
      jpeg=tf.gather(
          video["frames"],
          _frame_at(video, seconds[:, 0] + cfg.audio_seconds / 2),
      ),
      waveform=_maybe_mono(
          ops.slice_windows(video["waveform"], starts, n), cfg
      ),
      target=tf.gather(rows_of(video), _frame_at(video, seconds + parts)),
  )  # target [K, steps, K_classes]
  return out


def pair_in_batch(batch: dict) -> dict:
  """AVC: example i keeps its frame with probability 1/2, else shows example i^1's.

  Each example keeps its audio; neighbours in a shuffled batch are as random as
  pairs drawn by batch(2), and swapping JPEG strings before decoding moves no
  samples or pixels. `label` is the truth: 1 iff frame and audio share a video.
  """
  size = batch["jpeg"].shape[0]
  own = tf.range(size)
  source = tf.where(
      ops.random_field(batch["rand"], "pair") < 0.5,
      own,
      tf.bitwise.bitwise_xor(own, 1),
  )
  out = dict(batch)
  out["jpeg"] = tf.gather(batch["jpeg"], source)
  out["class_label"] = tf.gather(
      batch["class_label"], source
  )  # the frame's video
  out["label"] = tf.cast(
      tf.gather(batch["video_id"], source) == batch["video_id"], tf.int32
  )
  return out


def add_off_screen(pair: dict) -> dict:
  """Separation: the off-screen audio is the partner's on-screen audio (pair: [2, ...])."""
  return {**pair, "off_screen_waveform": tf.reverse(pair["waveform"], [0])}
