"""Reading record shards into parsed videos; corrupt records skipped and counted.

shards[process_index::process_count] -> interleave (records, checked to fill
  each shard) -> records.parse (a corrupt record: skipped and counted, or fatal)
  -> skip videos too short for the mode -> [cache] -> [repeat]
  -> enumerate: video seed = fold_in((seed, process_index), video counter)
"""

import concurrent.futures
import functools
import sys
import threading

import tensorflow as tf

from avself.data import records


def host_shards(
    shards: list[str], process_index: int, process_count: int
) -> list[str]:
  """This host's shards: disjoint across hosts, complete together.

  With fewer shards than processes (a small evaluation split), every host
  gets all shards and `read_videos` keeps every process_count-th record.
  """
  if len(shards) < process_count:
    return list(shards)
  return shards[process_index::process_count]


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


def usable_samples(video) -> tf.Tensor:
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


def read_videos(
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
          usable_samples(v) >= min_samples, tf.size(v["frames"]) > 0
      )
  )
  # Only training data, which is read again every epoch, is cached (file order
  # is then fixed; the example shuffle still mixes). An evaluation builds its
  # dataset afresh and may read part of it: a cache would be filled, never
  # reused, and discarded half-read.
  if cfg.cache and train:
    ds = ds.cache().repeat()
  base = tf.constant([seed, process_index], tf.int64)
  return ds.enumerate().map(
      lambda i, v: {
          **v,
          "index": i,
          "seed": tf.random.experimental.stateless_fold_in(base, i),
      }
  )
