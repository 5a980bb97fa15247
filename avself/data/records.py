"""The avself record format: one `tf.train.SequenceExample` per video.

Keys are the ones DMVR and Scenic already use, so their records read as they
are. avself's writer adds a compact int16 audio form and a few context keys
(frame rate, sample rate, channels); the reader accepts both audio forms and
falls back to defaults from the config when a key is absent.

Layout on disk: `DIR/{split}.tfrecord-{i:05d}-of-{n:05d}` plus
`DIR/manifest.json` (see docs/data.md).
"""

import glob
import json
import os
from typing import Iterable, Optional, Sequence

import numpy as np
import tensorflow as tf

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"

# Context keys (DMVR / Scenic names).
FILENAME_KEY = "video/filename"
START_KEY = "clip/start/timestamp"  # microseconds
END_KEY = "clip/end/timestamp"  # microseconds
LABEL_INDEX_KEY = "clip/label/index"
LABEL_TEXT_KEY = "clip/label/text"
# Context keys avself adds (absent from DMVR records: defaults apply).
FPS_KEY = "video/frame_rate"
SAMPLE_RATE_KEY = "audio/sample_rate"
CHANNELS_KEY = "audio/num_channels"

# Feature-list keys.
FRAMES_KEY = "image/encoded"  # one JPEG per frame
WAVEFORM_FLOATS_KEY = (
    "WAVEFORM/feature/floats"  # DMVR: float lists, concatenated
)
WAVEFORM_PCM_KEY = (
    "WAVEFORM/feature/pcm_s16le"  # avself: int16 LE bytes, interleaved
)

# Audio is chunked so no single feature grows without bound (1 s per chunk).
_PCM_SCALE = 32767.0


def shard_path(directory: str, split: str, index: int, num_shards: int) -> str:
  """Path of one record shard."""
  return os.path.join(
      directory, f"{split}.tfrecord-{index:05d}-of-{num_shards:05d}"
  )


def list_shards(directory: str, split: str) -> list[str]:
  """Sorted record shards of a split; raises if there are none."""
  # The strict pattern leaves out a killed writer's `*.tmp` leftovers.
  pattern = os.path.join(directory, f"{split}.tfrecord-[0-9]*-of-[0-9]*")
  files = sorted(f for f in glob.glob(pattern) if not f.endswith(".tmp"))
  if not files:
    raise FileNotFoundError(
        f"No record shards for split {split!r} in {directory!r} "
        f"(expected {split}.tfrecord-*-of-*). Run `python -m avself.data.prepare`."
    )
  return files


def load_manifest(directory: str) -> Optional[dict]:
  """The folder's manifest.json, or None for foreign (DMVR/Scenic) records."""
  path = os.path.join(directory, MANIFEST_NAME)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def _bytes(values: Iterable[bytes]) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _ints(values: Iterable[int]) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _floats(values) -> tf.train.Feature:
  return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def make_sequence_example(
    *,
    filename: str,
    jpeg_frames: Sequence[bytes],
    waveform: np.ndarray,
    sample_rate: int,
    fps: float,
    start_us: int = 0,
    end_us: Optional[int] = None,
    label_index: Sequence[int] = (),
    label_text: Sequence[str] = (),
    audio_format: str = "pcm_s16le",
) -> tf.train.SequenceExample:
  """Builds one video's record. `waveform` is float [samples, channels] in [-1, 1]."""
  waveform = np.asarray(waveform, np.float32)
  if waveform.ndim == 1:
    waveform = waveform[:, None]
  num_samples, channels = waveform.shape
  if end_us is None:
    end_us = start_us + int(round(1e6 * num_samples / sample_rate))
  ex = tf.train.SequenceExample()
  ctx = ex.context.feature
  ctx[FILENAME_KEY].CopyFrom(_bytes([filename.encode()]))
  ctx[START_KEY].CopyFrom(_ints([int(start_us)]))
  ctx[END_KEY].CopyFrom(_ints([int(end_us)]))
  ctx[LABEL_INDEX_KEY].CopyFrom(_ints([int(i) for i in label_index]))
  ctx[LABEL_TEXT_KEY].CopyFrom(_bytes([t.encode() for t in label_text]))
  ctx[FPS_KEY].CopyFrom(_floats([float(fps)]))
  ctx[SAMPLE_RATE_KEY].CopyFrom(_ints([int(sample_rate)]))
  ctx[CHANNELS_KEY].CopyFrom(_ints([int(channels)]))
  lists = ex.feature_lists.feature_list
  frames = lists[FRAMES_KEY]
  for jpeg in jpeg_frames:
    frames.feature.add().bytes_list.value.append(jpeg)
  chunk = max(1, int(sample_rate))
  if audio_format == "pcm_s16le":
    pcm = np.clip(np.round(waveform * _PCM_SCALE), -32768, 32767).astype("<i2")
    audio = lists[WAVEFORM_PCM_KEY]
    for s in range(0, num_samples, chunk):
      audio.feature.add().bytes_list.value.append(pcm[s : s + chunk].tobytes())
  elif audio_format == "floats":
    audio = lists[WAVEFORM_FLOATS_KEY]
    for s in range(0, num_samples, chunk):
      audio.feature.add().float_list.value.extend(
          waveform[s : s + chunk].reshape(-1)
      )
  else:
    raise ValueError(
        f"audio_format must be 'pcm_s16le' or 'floats', got {audio_format!r}"
    )
  return ex


def parse(
    serialized: tf.Tensor,
    *,
    default_fps: float = 25.0,
    default_sample_rate: int = 48000,
    default_channels: int = 1,
) -> dict:
  """Parses one serialized record into tensors (works eagerly and in tf.data).

  Returns a dict with `filename` (string), `frames` ([T] JPEG strings),
  `waveform` (float32 [N, C] in [-1, 1]), `fps`, `sample_rate`, `channels`,
  `label` (first label index or -1), `start_us`, `end_us`.
  """
  context_spec = {
      FILENAME_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
      START_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=0),
      END_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
      LABEL_INDEX_KEY: tf.io.VarLenFeature(tf.int64),
      FPS_KEY: tf.io.FixedLenFeature([], tf.float32, default_value=default_fps),
      SAMPLE_RATE_KEY: tf.io.FixedLenFeature(
          [], tf.int64, default_value=default_sample_rate
      ),
      CHANNELS_KEY: tf.io.FixedLenFeature(
          [], tf.int64, default_value=default_channels
      ),
  }
  sequence_spec = {
      FRAMES_KEY: tf.io.RaggedFeature(tf.string),
      WAVEFORM_FLOATS_KEY: tf.io.RaggedFeature(tf.float32),
      WAVEFORM_PCM_KEY: tf.io.RaggedFeature(tf.string),
  }
  ctx, seq = tf.io.parse_single_sequence_example(
      serialized, context_features=context_spec, sequence_features=sequence_spec
  )
  channels = tf.maximum(ctx[CHANNELS_KEY], 1)
  frames = seq[FRAMES_KEY].flat_values
  pcm_chunks = seq[WAVEFORM_PCM_KEY].flat_values
  float_samples = seq[WAVEFORM_FLOATS_KEY].flat_values

  def from_pcm():
    # Chunks differ in length (the last is short): join, then decode once.
    joined = tf.strings.reduce_join(pcm_chunks)
    return (
        tf.cast(
            tf.io.decode_raw(joined, tf.int16, little_endian=True), tf.float32
        )
        / _PCM_SCALE
    )

  samples = tf.cond(tf.size(pcm_chunks) > 0, from_pcm, lambda: float_samples)
  samples = tf.reshape(samples, [-1])
  usable = (tf.size(samples, out_type=tf.int64) // channels) * channels
  waveform = tf.reshape(samples[:usable], tf.stack([-1, channels]))
  labels = tf.sparse.to_dense(ctx[LABEL_INDEX_KEY])
  label = tf.cond(
      tf.size(labels) > 0, lambda: labels[0], lambda: tf.constant(-1, tf.int64)
  )
  return {
      "filename": ctx[FILENAME_KEY],
      "frames": frames,
      "waveform": waveform,
      "fps": ctx[FPS_KEY],
      "sample_rate": ctx[SAMPLE_RATE_KEY],
      "channels": channels,
      "label": label,
      "start_us": ctx[START_KEY],
      "end_us": ctx[END_KEY],
  }


def write_records(
    path: str, examples: Iterable[tf.train.SequenceExample]
) -> int:
  """Writes examples to one TFRecord file atomically; returns how many."""
  tmp = path + ".tmp"
  count = 0
  with tf.io.TFRecordWriter(tmp) as writer:
    for ex in examples:
      writer.write(ex.SerializeToString())
      count += 1
  tf.io.gfile.rename(tmp, path, overwrite=True)
  return count
