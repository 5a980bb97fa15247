"""Per-frame targets stored beside records: a keyed table, checked against them.

SoundNet learns from an image classifier's class posteriors for the frames
(`avself.data.teacher`), ambient-sound supervision from the audio cluster of
the sound around each frame (`avself.data.texture`). Both are data, computed
once over prepared records, not code in the training loop. A table is one
`.npz` file:

  video_id     [V] str     `filename@start_us`, as the pipeline names a record
  fingerprint  [V] int64   `frames_fingerprint` of the record's JPEG frames
  num_frames   [V] int64
  offset       [V] int64   first row of the video's frames in `rows`
  rows         [sum num_frames, K] float32: row offset + i is frame i's target
  meta         json: what made the table (classifier, class names, ...)

The pipeline's `frame_targets` mode looks a record up by its id and fails
with a one-line error when the record is absent or its frames differ (count
or bytes), so targets computed for other records are never silently used.
"""

import json
import os
from typing import Iterator, Optional

import numpy as np
import tensorflow as tf

from avself.data import records

# FarmHash buckets: fingerprints are int64 in [0, 2**62).
_BUCKETS = 2**62


def frames_fingerprint(frames) -> tf.Tensor:
  """A 62-bit FarmHash of a record's JPEG frames (same value eagerly and in tf.data)."""
  joined = tf.strings.reduce_join(
      tf.strings.join([tf.strings.as_string(tf.strings.length(frames)), frames])
  )
  return tf.strings.to_hash_bucket_fast(joined, _BUCKETS)


def video_id(filename, start_us) -> tf.Tensor:
  """The id the pipeline gives a record: `filename@start_us`."""
  return tf.strings.join([filename, tf.strings.as_string(start_us)], "@")


def read_videos(records_dir: str, split: str) -> Iterator[dict]:
  """Every record of `split`, parsed (numpy), with its `video_id` and `fingerprint`."""
  shards = records.list_shards(records_dir, split)
  manifest = records.load_manifest(records_dir) or {}
  defaults = dict(
      default_fps=float(manifest.get("fps", 25.0)),
      default_sample_rate=int(manifest.get("sample_rate", 48000)),
      default_channels=int(manifest.get("channels", 1)),
  )

  def parse(serialized):
    video = records.parse(serialized, **defaults)
    video["video_id"] = video_id(video["filename"], video["start_us"])
    video["fingerprint"] = frames_fingerprint(video["frames"])
    return video

  ds = tf.data.TFRecordDataset(shards).map(parse)
  for video in ds.as_numpy_iterator():
    video["video_id"] = video["video_id"].decode()
    yield video


def save_table(
    path: str,
    video_ids: list,
    fingerprints: list,
    rows: list,
    meta: Optional[dict] = None,
) -> str:
  """Writes a table (one [num_frames, K] array per video in `rows`) atomically."""
  if not rows:
    raise ValueError(f"no videos to write to {path}")
  num_frames = np.array([len(r) for r in rows], np.int64)
  offset = np.concatenate([[0], np.cumsum(num_frames)[:-1]]).astype(np.int64)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp.npz"
  np.savez(
      tmp,
      video_id=np.array(video_ids, dtype=str),
      fingerprint=np.array(fingerprints, np.int64),
      num_frames=num_frames,
      offset=offset,
      rows=np.concatenate(rows).astype(np.float32),
      meta=np.array(json.dumps(meta or {})),
  )
  os.replace(tmp, path)
  return path


def load_table(path: str) -> dict:
  """A table as numpy arrays (`meta` decoded)."""
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(
        f"frame targets {path} do not exist: make them with "
        "`python -m avself.data.teacher` or `python -m avself.data.texture`"
    )
  with tf.io.gfile.GFile(path, "rb") as f, np.load(f) as z:
    table = {k: z[k] for k in z.files}
  table["meta"] = json.loads(str(table["meta"]))
  return table


def lookup_fn(path: str):
  """`rows_of(video) -> [num_frames, K]`: the table's rows for a parsed record, checked.

  The table lives in the graph as constants (K floats per frame: a few MB for
  the synthetic world; ~5 GB of posteriors for 2M 20 s videos at 1 fps with
  1401 classes would need sharded tables instead).
  """
  table = load_table(path)
  keys = tf.constant(table["video_id"].astype(object).astype(bytes))
  index = tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(
          keys, tf.range(len(table["video_id"]), dtype=tf.int64)
      ),
      default_value=-1,
  )
  fingerprint = tf.constant(table["fingerprint"], tf.int64)
  num_frames = tf.constant(table["num_frames"], tf.int64)
  offset = tf.constant(table["offset"], tf.int64)
  rows = tf.constant(table["rows"], tf.float32)

  def rows_of(video):
    vid = video_id(video["filename"], video["start_us"])
    i = index.lookup(vid)
    found = tf.debugging.Assert(
        i >= 0,
        [
            f"frame targets {path} have no row for record",
            vid,
            "; recompute them for these records",
        ],
    )
    with tf.control_dependencies([found]):
      j = tf.maximum(i, 0)
    count = tf.size(video["frames"], out_type=tf.int64)
    same = tf.logical_and(
        tf.equal(num_frames[j], count),
        tf.equal(fingerprint[j], frames_fingerprint(video["frames"])),
    )
    match = tf.debugging.Assert(
        same,
        [
            f"frame targets {path} do not match record",
            vid,
            ": its frames differ (count or bytes); recompute the targets for these records",
        ],
    )
    with tf.control_dependencies([match]):
      return rows[offset[j] : offset[j] + count]

  return rows_of, table
