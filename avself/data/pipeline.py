"""The tf.data input pipeline: record shards -> per-host batches of tensors.

    shards[process_index::process_count] -> interleave (records, checked to fill
      each shard) -> records.parse (a corrupt record: skipped and counted, or fatal)
      -> skip videos too short for the mode -> [cache] -> [repeat]
      -> enumerate: video seed = fold_in((seed, process_index), video counter)
      -> sample `samples_per_video` examples per video, each from one row of
         uniform draws (its random state: window, frame, crop, flip, jitter,
         gain, pairing, shift), so a clip's frames and its sound stay aligned
      -> shuffle -> [mixture: pair neighbours] -> batch
      -> per batch: [avc: pair neighbours] -> decode one crop per frame
         -> colour jitter, audio gain, STFT -> prefetch

Output keys per mode (B = batch_size, S = image_size, N = num_frames,
n = samples of the clip, C = stored channels, (F, T) = spectrogram_shape):
  'avc'     image f32 [B,S,S,3] in [-1,1], audio f32 [B,F,T,1], label i32 [B]
            (1 iff frame and audio come from the same video), class_label i32 [B]
  'pairs'   as 'avc' (label always 1) plus audio_class_label i32 [B]
  'sync'    video f32 [B,N,S,S,3], waveform f32 [B,n,C], shift_seconds f32 [B],
            class_label; paired: shifted_waveform f32 [B,n,C];
            unpaired: label i32 [B] (1 aligned, shift_seconds 0 / 0 shifted)
  'mixture' video, mixture_waveform = on_screen_waveform + off_screen_waveform
            (each f32 [B,n,C]), class_label
  'clips'   audio, image (centre crop), label (class), video_index i32,
            window_start f32 seconds, mask i32 (0 on the last batch's padding)
  'frame_targets'  image (the frame at the window's centre), audio, and
            target f32 [B,steps,K]: the rows of `frame_targets.path` (a
            `avself.data.targets` table) for the frames at the centres of
            `steps` equal parts of the audio window (no labels)

Time: frame i shows [i/fps, (i+1)/fps); audio sample j is at j/sample_rate,
both from the record's start. Only the span both streams cover is used, and a
video shorter than one audio window (avc, pairs, clips) or one clip (sync,
mixture) is skipped by a `filter`: nothing is padded. Sampling modes always
drop the remainder batch; 'clips' pads it and marks it in `mask`.

Sync shifts at clip edges: see `_shift` (random sign when both shifted windows
fit, the sign that fits otherwise, circular wrap-around when neither does).
"""

import concurrent.futures
import ctypes
import functools
import os
import sys
import threading
from typing import Optional

import jax
import ml_collections
import tensorflow as tf

from avself.data import audio, ops, records

MODES = ("avc", "pairs", "sync", "mixture", "clips", "frame_targets")


def default_data_config() -> ml_collections.ConfigDict:
  """The data config at paper scale (L3-Net; sync/mixture as Owens & Efros)."""
  return ml_collections.ConfigDict(
      dict(
          path="",  # records folder: {split}.tfrecord-*-of-* (+ manifest.json)
          train_split="train",
          eval_split="test",
          # Used when a record lacks the context key (DMVR/Scenic records).
          default_fps=25.0,
          default_sample_rate=48000,
          default_channels=1,
          sample_rate=48000,  # expected; a record with another rate is an error
          audio_seconds=1.0,  # avc/pairs/clips window
          resize_shorter=256,  # frames whose shorter side differs are resized; 0: never
          image_size=224,  # square crop: random when training, centred otherwise
          spectrogram=audio.spectrogram_config(
              "log"
          ),  # 257 x 199 for 1 s at 48 kHz
          augment=dict(
              flip=True, brightness=0.2, saturation=0.2, audio_gain=0.1
          ),
          # Reading and parsing a 10 s record (3-7 MB) costs as much as 6-15
          # decoded crops, so each parse feeds several examples; the shuffle
          # buffer spreads them apart.
          samples_per_video=8,
          # Examples held for shuffling: ~0.2 MB each for avc at paper scale, ~3 MB
          # for a 4.2 s sync clip (63 JPEGs + 2 windows at 48 kHz): lower it there.
          shuffle_buffer=2048,
          sync=dict(
              num_frames=63,
              clip_seconds=4.2,
              min_shift=2.0,
              max_shift=5.8,
              paired=True,
          ),
          mixture=dict(num_frames=63, clip_seconds=4.2),
          clips_per_video=0,  # 'clips': at most this many windows per video; 0 = all
          # 'frame_targets': a per-frame table (teacher posteriors, audio
          # clusters; relative paths are under `path`) and the targets per window.
          frame_targets=dict(path="", steps=1),
          cycle_length=16,  # shards read at once
          num_parallel_calls=-1,  # tf.data.AUTOTUNE
          prefetch=2,  # batches
          cache=False,  # keep parsed videos in memory (tiny datasets, CPU demo)
          # Records that fail to read or parse: 'skip' (counted in skip_counts(),
          # warned on stderr) or 'fail' (raises naming the shard).
          on_corrupt="skip",
          keep_freed_memory=True,  # see `keep_freed_memory`: ~30% less CPU per example
      )
  )


def host_shards(
    shards: list[str], process_index: int, process_count: int
) -> list[str]:
  """This host's shards: disjoint across hosts, complete together.

  With fewer shards than processes (a small evaluation split), every host
  gets all shards and `_read_videos` keeps every process_count-th record.
  """
  if len(shards) < process_count:
    return list(shards)
  return shards[process_index::process_count]


@functools.cache
def keep_freed_memory() -> bool:
  """Tells glibc malloc to keep freed batch buffers instead of unmapping them.

  By default glibc hands large freed blocks back to the OS, so every batch
  faults its ~50 MB of fresh pages in again: ~150 page faults and a third of
  the pipeline's CPU time per AVC example at paper scale. Process-wide, like
  MALLOC_MMAP_THRESHOLD_=32M MALLOC_TRIM_THRESHOLD_=1G MALLOC_TOP_PAD_=64M;
  the cost is that freed memory stays with the process. False off glibc.
  """
  try:
    mallopt = ctypes.CDLL("libc.so.6").mallopt
  except (OSError, AttributeError):
    return False
  m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3  # <malloc.h>
  return all(
      [
          mallopt(m_mmap_threshold, 32 << 20),
          mallopt(m_trim_threshold, 1 << 30),
          mallopt(m_top_pad, 64 << 20),
      ]
  )


# ### Reading ##################################################################


def _parse(serialized, cfg):
  """records.parse with the config's defaults for keys a record lacks."""
  return records.parse(
      serialized,
      default_fps=cfg.default_fps,
      default_sample_rate=cfg.default_sample_rate,
      default_channels=cfg.default_channels,
  )


def _check_sample_rate(video, cfg):
  """Fails (never skipped) when a record's audio is not at data_config.sample_rate."""
  check = tf.debugging.assert_equal(
      video["sample_rate"],
      tf.constant(cfg.sample_rate, tf.int64),
      message=(
          f"audio sample rate mismatch: records' audio/sample_rate (x) != "
          f"data_config.sample_rate={cfg.sample_rate} (y). Re-prepare the "
          "records at that rate or set data_config.sample_rate."
      ),
  )
  with tf.control_dependencies([check]):
    video["waveform"] = tf.identity(video["waveform"])
  return video


def _usable_samples(video) -> tf.Tensor:
  """Audio samples within the span both the audio and the frames cover."""
  frames_end = tf.math.floor(
      tf.cast(tf.size(video["frames"]), tf.float64)
      * tf.cast(video["sample_rate"], tf.float64)
      / tf.cast(video["fps"], tf.float64)
  )
  return tf.minimum(
      tf.shape(video["waveform"], out_type=tf.int64)[0],
      tf.cast(frames_end, tf.int64),
  )


# Bytes a record takes on disk besides its data: 8-byte length, 4-byte CRC of
# the length, 4-byte CRC of the data (TFRecord framing, uncompressed).
_FRAMING_BYTES = 16
_COUNTERS: dict = {}
_COUNTERS_LOCK = threading.Lock()


def _counter(name: str) -> tf.Variable:
  """A process-wide int64 tally, on the CPU like tf.data, made on first use."""
  with _COUNTERS_LOCK:
    if name not in _COUNTERS:
      with tf.init_scope(), tf.device("/CPU:0"):
        _COUNTERS[name] = tf.Variable(
            0, dtype=tf.int64, trainable=False, name=name
        )
    return _COUNTERS[name]


def skip_counts() -> dict:
  """What `on_corrupt='skip'` dropped in this process so far, all pipelines together.

  `skipped_records`: records that failed to parse, plus one for every shard
  whose reading stopped early (truncated or corrupt record); `unread_bytes`:
  what followed such a stop, the rest of the shard, whose records cannot be
  counted (see docs/data.md). A bad record counts each time it is read: once
  per epoch unless `cache`; a resumed run counts from 0 the records it replays.
  """
  return {
      name: int(_counter(name).numpy())
      for name in ("skipped_records", "unread_bytes")
  }


def _count_skip(records_lost, unread_bytes, *message):
  """Adds to the tallies and prints a warning (stderr: not silenced with TF's logs)."""
  with tf.control_dependencies(
      [
          _counter("skipped_records").assign_add(records_lost),
          _counter("unread_bytes").assign_add(unread_bytes),
          tf.print("avself input WARNING:", *message, output_stream=sys.stderr),
      ]
  ):
    return tf.constant(0)


def _file_sizes(files: list[str]) -> list[int]:
  """Byte sizes of the shards (in parallel: one request each on cloud storage)."""
  with concurrent.futures.ThreadPoolExecutor(
      min(32, max(1, len(files)))
  ) as pool:
    return list(pool.map(lambda f: tf.io.gfile.stat(f).length, files))


def _shard_records(path, size, cfg, count_stops=True):
  """One shard's records as {record, path, offset}, checked to fill its `size` bytes.

  TFRecordDataset stops at a shard's first unreadable record (cut short, or a
  CRC mismatch) and goes on with the next file, and a shard cut inside a
  record's 12-byte header simply ends early. Either way the records read fall
  short of the file: 'skip' counts one record and the unread bytes (if
  `count_stops`: one of the hosts that share a shard), 'fail' raises.
  """
  raw = tf.data.TFRecordDataset(path).ignore_errors(log_warning=True)
  end = tf.data.Dataset.from_tensors(
      dict(record=tf.constant(b""), last=tf.constant(True))
  )
  raw = raw.map(lambda r: dict(record=r, last=tf.constant(False))).concatenate(
      end
  )

  def frame(offset, e):
    stored = tf.cast(tf.strings.length(e["record"]), tf.int64) + _FRAMING_BYTES
    return offset + stored, dict(
        record=e["record"], last=e["last"], path=path, offset=offset
    )

  def keep(e):  # drops the end marker after checking it
    stopped = tf.logical_and(e["last"], e["offset"] != size)
    if cfg.on_corrupt == "fail":
      check = tf.debugging.Assert(
          tf.logical_not(stopped),
          [
              "Record shard",
              path,
              "is truncated or corrupt: reading stopped at byte",
              e["offset"],
              "of",
              size,
              "(the reader's error is logged above). "
              "data.on_corrupt='skip' would skip the rest of this shard.",
          ],
      )
    elif count_stops:
      check = tf.cond(
          stopped,
          lambda: _count_skip(
              1,
              size - e["offset"],
              "record shard",
              path,
              "is truncated or corrupt: skipping " "it from byte",
              e["offset"],
              "of",
              size,
          ),
          lambda: tf.constant(0),
      )
    else:
      check = tf.constant(0)
    with tf.control_dependencies([check]):
      return tf.logical_not(e["last"])

  return raw.scan(tf.constant(0, tf.int64), frame).filter(keep)


def _parse_or_skip(e, cfg):
  """One record -> a 1-element dataset of (parsed, video): a parse error is caught here.

  Catching it per record (not with one ignore_errors downstream) lets 'skip'
  count it and both modes name the shard and byte offset; the order of the
  records is untouched.
  """
  parsed = tf.data.Dataset.from_tensors(e["record"]).map(
      functools.partial(_parse, cfg=cfg)
  )
  parsed = parsed.ignore_errors(log_warning=True).map(lambda v: (True, v))
  empty = tf.nest.map_structure(
      lambda s: tf.zeros([0 if d is None else d for d in s.shape], s.dtype),
      parsed.element_spec[1],
  )
  failed = tf.data.Dataset.from_tensors((False, empty))

  def check(ok, video):
    if cfg.on_corrupt == "fail":
      done = tf.debugging.Assert(
          ok,
          [
              "The record at byte",
              e["offset"],
              "of",
              e["path"],
              "does not parse as an "
              "avself/DMVR tf.train.SequenceExample (the parser's error is logged above). "
              "data.on_corrupt='skip' would skip it.",
          ],
      )
    else:
      done = tf.cond(
          ok,
          lambda: tf.constant(0),
          lambda: _count_skip(
              1,
              0,
              "skipping the record at byte",
              e["offset"],
              "of",
              e["path"],
              "(it does not parse)",
          ),
      )
    with tf.control_dependencies([done]):
      return tf.identity(ok), video

  return parsed.concatenate(failed).take(1).map(check)


def _read_videos(
    files, cfg, *, train, seed, process_index, min_samples, record_shard=None
):
  """Parsed videos of `files` with `index` (position in this host's stream) and `seed`.

  `record_shard` = (count, index) keeps every count-th record, for hosts that
  share files (fewer shards than processes). Corrupt records are skipped and
  counted (`skip_counts`) or raise, per `cfg.on_corrupt`; a bad JPEG inside a
  record that reads and parses still fails when it is decoded.
  """
  if cfg.on_corrupt not in ("skip", "fail"):
    raise ValueError(
        f"data.on_corrupt must be 'skip' or 'fail', got {cfg.on_corrupt!r}"
    )
  parallel = cfg.num_parallel_calls
  ds = tf.data.Dataset.from_tensor_slices(
      (files, tf.constant(_file_sizes(files), tf.int64))
  )
  if train and not cfg.cache and not record_shard:
    ds = ds.shuffle(len(files), seed=seed).repeat()
  count_stops = (
      not record_shard or record_shard[1] == 0
  )  # hosts sharing files: once
  ds = ds.interleave(
      lambda path, size: _shard_records(path, size, cfg, count_stops),
      cycle_length=min(cfg.cycle_length, len(files)),
      block_length=1,
      num_parallel_calls=parallel,
      deterministic=True,
  )
  if record_shard:
    ds = ds.shard(*record_shard)
    if train and not cfg.cache:
      ds = ds.repeat()
  # Each record yields exactly one (parsed, video), so the order is the records'.
  ds = ds.interleave(
      lambda e: _parse_or_skip(e, cfg),
      block_length=1,
      num_parallel_calls=parallel,
      deterministic=True,
  )
  ds = ds.filter(lambda parsed, _: parsed)
  ds = ds.map(lambda _, video: video)
  ds = ds.map(
      functools.partial(_check_sample_rate, cfg=cfg),
      num_parallel_calls=parallel,
  )
  ds = ds.filter(
      lambda v: tf.logical_and(
          _usable_samples(v) >= min_samples, tf.size(v["frames"]) > 0
      )
  )
  if cfg.cache:  # file order is then fixed; the example shuffle still mixes
    ds = ds.cache()
    ds = ds.repeat() if train else ds
  base = tf.constant([seed, process_index], tf.int64)
  return ds.enumerate().map(
      lambda i, v: {
          **v,
          "index": i,
          "seed": tf.random.experimental.stateless_fold_in(base, i),
      }
  )


# ### Sampling: one video -> K examples (vectorised over K) ####################


def _seconds_to_samples(seconds: float, cfg) -> int:
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


def _sample_frame_and_audio(video, cfg, k: int) -> dict:
  """K (frame, audio window) pairs; each frame lies inside its audio window."""
  rand = ops.draw_random_state(video["seed"], k)  # [K, P]
  n = _seconds_to_samples(cfg.audio_seconds, cfg)
  starts = ops.uniform_int(
      ops.random_field(rand, "window"), _usable_samples(video) - n + 1
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


def _sample_clip(video, cfg, k: int, clip) -> tuple[dict, tf.Tensor]:
  """K clips of `clip.num_frames` frames over `clip.clip_seconds` with aligned audio."""
  rand = ops.draw_random_state(video["seed"], k)
  n = _seconds_to_samples(clip.clip_seconds, cfg)
  starts = ops.uniform_int(
      ops.random_field(rand, "window"), _usable_samples(video) - n + 1
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


def _sample_sync(video, cfg, k: int) -> dict:
  """K sync examples: aligned and shifted audio for one clip of frames."""
  out, starts = _sample_clip(video, cfg, k, cfg.sync)
  n = _seconds_to_samples(cfg.sync.clip_seconds, cfg)
  usable = _usable_samples(video)
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


def _sample_clip_windows(video, cfg) -> dict:
  """Non-overlapping windows (all, or `clips_per_video` spread out) with their centre frames."""
  n = _seconds_to_samples(cfg.audio_seconds, cfg)
  total = _usable_samples(video) // n
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


def frame_targets_path(cfg) -> str:
  """`frame_targets.path`, relative to the records folder unless absolute."""
  path = cfg.frame_targets.path
  if not path:
    raise ValueError(
        "mode 'frame_targets' needs data.frame_targets.path (a table made by "
        "avself.data.teacher or avself.data.texture)"
    )
  return path if os.path.isabs(path) else os.path.join(cfg.path, path)


def _sample_frame_targets(video, cfg, k: int, rows_of) -> dict:
  """K audio windows, each with its centre frame and the targets of `steps` frames in it."""
  rand = ops.draw_random_state(video["seed"], k)
  n = _seconds_to_samples(cfg.audio_seconds, cfg)
  starts = ops.uniform_int(
      ops.random_field(rand, "window"), _usable_samples(video) - n + 1
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


# ### Pairing ################################################################


def _pair_in_batch(batch: dict) -> dict:
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


def _add_off_screen(pair: dict) -> dict:
  """Separation: the off-screen audio is the partner's on-screen audio (pair: [2, ...])."""
  return {**pair, "off_screen_waveform": tf.reverse(pair["waveform"], [0])}


# ### Batched decoding and finishing ##########################################


def _decode(jpegs: tf.Tensor, rand, cfg, train: bool) -> tf.Tensor:
  """Decodes a batch of frames [B] or clips [B, N] to uint8 [B, (N,) S, S, 3]."""
  size = cfg.image_size

  def one(args):
    jpeg, r = args
    crop = {}
    if train:
      crop = dict(
          u_y=ops.random_field(r, "crop_y"), u_x=ops.random_field(r, "crop_x")
      )
    image = ops.decode_crop(
        jpeg, size=size, resize_shorter=cfg.resize_shorter, **crop
    )
    if train and cfg.augment.flip:
      image = ops.maybe_flip(image, ops.random_field(r, "flip"))
    return image

  if rand is None:
    rand = tf.zeros([tf.shape(jpegs)[0], len(ops.RANDOM_FIELDS)])
  signature = tf.TensorSpec(
      jpegs.shape[1:].as_list() + [size, size, 3], tf.uint8
  )
  return tf.map_fn(one, (jpegs, rand), fn_output_signature=signature)


def _jitter(batch: dict, cfg, train: bool) -> dict:
  """Per-example brightness, saturation and gain, or None where switched off."""
  if not train:
    return dict(brightness=None, saturation=None, gain=None)
  factors = ops.jitter_factors(batch["rand"], cfg.augment)
  amounts = dict(
      brightness=cfg.augment.brightness,
      saturation=cfg.augment.saturation,
      gain=cfg.augment.audio_gain,
  )
  return {name: factors[name] if amounts[name] else None for name in factors}


def _finish(
    batch: dict, cfg, *, train: bool, mode: str, batch_size: int
) -> dict:
  """Pairs, decodes, augments and computes spectrograms for one batch; keeps the mode's keys."""
  if mode == "avc":
    batch = _pair_in_batch(batch)
  batch = dict(batch)
  batch["image"] = _decode(batch.pop("jpeg"), batch.get("rand"), cfg, train)
  if mode == "clips":
    batch = ops.pad_batch(batch, batch_size)
  jitter = _jitter(batch, cfg, train)
  image = ops.finish_images(
      batch["image"], jitter["brightness"], jitter["saturation"]
  )
  if mode in ("avc", "pairs", "clips", "frame_targets"):
    out = dict(
        image=image,
        audio=ops.spectrogram_batch(
            batch["waveform"],
            cfg.spectrogram,
            cfg.sample_rate,
            gain=jitter["gain"],
        ),
    )
    if mode == "avc":
      return dict(out, label=batch["label"], class_label=batch["class_label"])
    if mode == "frame_targets":
      return dict(out, target=batch["target"])
    if mode == "pairs":
      return dict(
          out,
          label=tf.ones_like(batch["class_label"]),
          class_label=batch["class_label"],
          audio_class_label=batch["class_label"],
      )
    return dict(
        out,
        **{
            k: batch[k]
            for k in ("label", "video_index", "window_start", "mask")
        },
    )

  def gained(waveform):  # one gain per example for all of its audio
    return (
        waveform
        if jitter["gain"] is None
        else waveform * jitter["gain"][:, None, None]
    )

  out = dict(video=image, class_label=batch["class_label"])
  if mode == "mixture":
    on_screen, off_screen = gained(batch["waveform"]), gained(
        batch["off_screen_waveform"]
    )
    return dict(
        out,
        mixture_waveform=on_screen + off_screen,
        on_screen_waveform=on_screen,
        off_screen_waveform=off_screen,
    )
  out.update(
      waveform=gained(batch["waveform"]), shift_seconds=batch["shift_seconds"]
  )
  if cfg.sync.paired:
    return dict(out, shifted_waveform=gained(batch["shifted_waveform"]))
  return dict(out, label=batch["label"])


# ### Assembly #################################################################


def _min_samples(cfg, mode: str) -> int:
  """Usable audio a video needs for one example of `mode`."""
  if mode == "sync":
    return _seconds_to_samples(cfg.sync.clip_seconds, cfg)
  if mode == "mixture":
    return _seconds_to_samples(cfg.mixture.clip_seconds, cfg)
  return _seconds_to_samples(cfg.audio_seconds, cfg)


def _examples(videos, cfg, *, mode: str, seed: int):
  """Videos -> shuffled undecoded examples (mixture: paired; avc pairs in `_finish`)."""
  k = cfg.samples_per_video
  sample = dict(
      avc=_sample_frame_and_audio,
      pairs=_sample_frame_and_audio,
      sync=_sample_sync,
      mixture=lambda v, c, k: _sample_clip(v, c, k, c.mixture)[0],
  ).get(mode)
  if mode == "frame_targets":
    from avself.data import targets  # pylint: disable=g-import-not-at-top

    rows_of, _ = targets.lookup_fn(frame_targets_path(cfg))
    sample = functools.partial(_sample_frame_targets, rows_of=rows_of)
  ds = videos.map(
      lambda v: sample(v, cfg, k), num_parallel_calls=cfg.num_parallel_calls
  )
  ds = ds.unbatch().shuffle(cfg.shuffle_buffer, seed=seed + 1)
  if mode == "mixture":
    # A video mixed with itself has no off-screen source: drop such (rare) pairs.
    ds = ds.batch(2, drop_remainder=True).filter(
        lambda p: p["video_id"][0] != p["video_id"][1]
    )
    ds = ds.map(_add_off_screen).unbatch()
  return ds


def make_dataset(
    data_config,
    *,
    mode: str,
    split: str,
    batch_size: int,
    train: bool,
    seed: int,
    process_index: Optional[int] = None,
    process_count: Optional[int] = None,
) -> tf.data.Dataset:
  """This host's batches of `mode` (see the module docstring for the keys).

  Training data repeat forever; otherwise the dataset is finite. Same
  arguments -> same batches. Numpy batches feed
  `jax.make_array_from_process_local_data`.
  """
  cfg = data_config
  if mode not in MODES:
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
  if cfg.keep_freed_memory:
    keep_freed_memory()
  process_index = (
      jax.process_index() if process_index is None else process_index
  )
  process_count = (
      jax.process_count() if process_count is None else process_count
  )
  shards = records.list_shards(cfg.path, split)
  files = host_shards(shards, process_index, process_count)
  record_shard = (
      (process_count, process_index) if len(shards) < process_count else None
  )
  if mode == "clips":
    train = False  # evaluation clips: one pass, centre crops, no jitter
  videos = _read_videos(
      files,
      cfg,
      train=train,
      seed=seed,
      process_index=process_index,
      min_samples=_min_samples(cfg, mode),
      record_shard=record_shard,
  )
  if mode == "clips":
    ds = videos.map(
        lambda v: _sample_clip_windows(v, cfg),
        num_parallel_calls=cfg.num_parallel_calls,
    ).unbatch()
    ds = ds.batch(batch_size)  # the short last batch is padded in _finish
  else:
    ds = _examples(videos, cfg, mode=mode, seed=seed).batch(
        batch_size, drop_remainder=True
    )
  finish = functools.partial(
      _finish, cfg=cfg, train=train, mode=mode, batch_size=batch_size
  )
  ds = ds.map(finish, num_parallel_calls=cfg.num_parallel_calls)
  options = tf.data.Options()
  options.deterministic = True
  return ds.with_options(options).prefetch(cfg.prefetch)
