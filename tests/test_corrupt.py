"""Corrupt or truncated record shards: skipped and counted ('skip'), or fatal ('fail').

Each damaged shard sits beside a clean one. Videos are 1 s long, so 'clips'
yields exactly one window per video and its label names the video.
"""

import logging
import os

import flax.linen as nn
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
import tensorflow as tf

import tiny
from avself import tasks
from avself import train
from avself.data import reading, records
from avself.tasks import avc
from test_pipeline import _clips, _batches, _config, _video
from test_train import _logged

FRAMING = 16  # TFRecord bytes around each record's data


def _framed(*videos):
  """Serialized records (videos by number, or raw bytes) and their start offsets + end."""
  data = [
      v if isinstance(v, bytes) else _video(v, 1.0).SerializeToString()
      for v in videos
  ]
  starts = np.cumsum([0] + [len(d) + FRAMING for d in data])
  return data, starts


def _write(path, data):
  with tf.io.TFRecordWriter(path) as writer:
    for d in data:
      writer.write(d)


def _damaged(directory, kind):
  """Shard 0 damaged as `kind`, shard 1 clean (videos 5, 6).

  Returns (labels that must come out, records that must be counted, unread bytes).
  """
  path = records.shard_path(directory, "train", 0, 2)
  records.write_records(
      records.shard_path(directory, "train", 1, 2),
      [_video(v, 1.0) for v in (5, 6)],
  )
  if (
      kind == "not_a_sequence_example"
  ):  # a well-framed record that does not parse
    data, _ = _framed(0, b"not a SequenceExample", 1, 2)
    _write(path, data)
    return [0, 1, 2, 5, 6], 1, 0
  if (
      kind == "two_unparsable"
  ):  # counted one by one, also as the shard's last record
    data, _ = _framed(b"\x0a\xff\xff", 0, 1, b"garbage")
    _write(path, data)
    return [0, 1, 5, 6], 2, 0
  data, starts = _framed(0, 1, 2)
  _write(path, data)
  size = int(starts[-1])
  with open(path, "rb") as f:
    content = bytearray(f.read())
  if (
      kind == "garbage_appended"
  ):  # bytes that are not a framed record, after the last one
    garbage = b"this is not a TFRecord" * 3
    content += garbage
    expected = [0, 1, 2, 5, 6], 1, len(garbage)
  elif kind == "truncated_mid_record":  # cut inside video 2's data
    content = content[: size - 100]
    expected = [0, 1, 5, 6], 1, size - 100 - int(starts[2])
  elif (
      kind == "truncated_in_header"
  ):  # 5 of video 2's 12 header bytes: TF ends silently
    content = content[: int(starts[2]) + 5]
    expected = [0, 1, 5, 6], 1, 5
  elif (
      kind == "crc_mismatch"
  ):  # one flipped byte in video 1's data: the rest is not read
    content[int(starts[1]) + 12 + 40] ^= 0xFF
    expected = [0, 5, 6], 1, size - int(starts[1])
  else:
    raise ValueError(kind)
  with open(path, "wb") as f:
    f.write(bytes(content))
  return expected


KINDS = [
    "not_a_sequence_example",
    "two_unparsable",
    "garbage_appended",
    "truncated_mid_record",
    "truncated_in_header",
    "crc_mismatch",
]


@pytest.mark.parametrize("kind", KINDS)
def test_skip_yields_every_good_record_and_counts_the_bad(tmp_path, kind):
  labels, lost, unread = _damaged(str(tmp_path), kind)
  before = reading.skip_counts()
  _, out = _clips(_config(str(tmp_path)))
  assert sorted(out["label"][out["mask"] == 1]) == labels
  after = reading.skip_counts()
  assert after["skipped_records"] - before["skipped_records"] == lost
  assert after["unread_bytes"] - before["unread_bytes"] == unread


@pytest.mark.parametrize(
    "kind",
    [
        "not_a_sequence_example",
        "truncated_mid_record",
        "truncated_in_header",
        "crc_mismatch",
    ],
)
def test_fail_raises_naming_the_shard(tmp_path, kind):
  _damaged(str(tmp_path), kind)
  before = reading.skip_counts()
  match = (
      "does not parse"
      if kind == "not_a_sequence_example"
      else "truncated or corrupt"
  )
  with pytest.raises(tf.errors.InvalidArgumentError, match=match) as error:
    _clips(_config(str(tmp_path), on_corrupt="fail"))
  assert "train.tfrecord-00000-of-00002" in str(error.value)
  assert reading.skip_counts() == before


@pytest.mark.parametrize(
    "kind", ["not_a_sequence_example", "truncated_mid_record"]
)
def test_hosts_sharing_shards_count_each_bad_record_once(tmp_path, kind):
  labels, lost, unread = _damaged(
      str(tmp_path), kind
  )  # 2 shards, 3 hosts: all read both
  before = reading.skip_counts()
  got = []
  for host in range(3):
    _, out = _clips(_config(str(tmp_path)), process_index=host, process_count=3)
    got += list(out["label"][out["mask"] == 1])
  assert sorted(got) == labels
  after = reading.skip_counts()
  assert after["skipped_records"] - before["skipped_records"] == lost
  assert after["unread_bytes"] - before["unread_bytes"] == unread


def test_unknown_on_corrupt_value_is_refused(tmp_path):
  _damaged(str(tmp_path), "crc_mismatch")
  with pytest.raises(ValueError, match="on_corrupt"):
    _clips(_config(str(tmp_path), on_corrupt="ignore"))


def test_skipping_keeps_training_batches_deterministic(tmp_path):
  _damaged(str(tmp_path), "truncated_mid_record")
  cfg = _config(
      str(tmp_path), cache=False, shuffle_buffer=16
  )  # re-reads the shards
  before = reading.skip_counts()["skipped_records"]
  first = _batches(cfg, "avc", count=6)
  assert (
      reading.skip_counts()["skipped_records"] > before
  )  # once per pass over the shard
  second = _batches(cfg, "avc", count=6)
  for a, b in zip(first, second):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])


def _tiny_video(vid, seconds=2.0, fps=10, sample_rate=16000):
  frames = [
      tf.io.encode_jpeg(
          np.full((40, 48, 3), [30 * vid + 20, 8 * i, 128], np.uint8)
      ).numpy()
      for i in range(int(seconds * fps))
  ]
  t = np.arange(int(seconds * sample_rate)) / sample_rate
  return records.make_sequence_example(
      filename=f"v{vid}.mp4",
      jpeg_frames=frames,
      waveform=0.3 * np.sin(2 * np.pi * 440 * t),
      sample_rate=sample_rate,
      fps=fps,
      label_index=[vid % 2],
  )


class _LinearTask:
  """The avc task with a one-layer model: the real loop and pipeline, compiled in seconds."""

  data_mode, dummy_batch = staticmethod(avc.data_mode), staticmethod(
      avc.dummy_batch
  )

  @staticmethod
  def build_model(config):
    del config
    return nn.Dense(2)

  @staticmethod
  def init(model, rng, batch):
    return model.init(rng, _features(batch))

  @staticmethod
  def loss_fn(model, params, model_state, batch, rng, train):
    del model_state, rng, train
    logits = model.apply({"params": params}, _features(batch))
    loss = optax.softmax_cross_entropy_with_integer_labels(
        logits, batch["label"]
    ).mean()
    return loss, ({"loss": loss}, {})


def _features(batch):
  return jnp.concatenate(
      [batch["image"].mean((1, 2)), batch["audio"].mean((1, 2))], -1
  )


def test_training_goes_on_and_logs_skipped_records(
    tmp_path, caplog, monkeypatch
):
  data = str(tmp_path / "records")
  os.makedirs(data)
  good = [_tiny_video(v) for v in range(8)]
  for i in range(3):
    records.write_records(records.shard_path(data, "train", i, 4), good[i::4])
  bad = records.shard_path(data, "train", 3, 4)
  records.write_records(bad, [good[3], good[7]])
  with open(bad, "r+b") as f:  # cut inside the second record
    f.truncate(os.path.getsize(bad) - 1000)
  config = tiny.tiny_config(
      data
  )  # avc data at 32x32, 32x49 spectrograms, cache=True
  config.evals = ml_collections.ConfigDict()
  monkeypatch.setattr(tasks, "get_task", lambda name: _LinearTask)
  workdir = str(tmp_path / "work")
  before = (
      reading.skip_counts()
  )  # per process: earlier tests' pipelines count too
  with caplog.at_level(logging.WARNING):
    result = train.train_and_evaluate(config, workdir)
  assert result["step"] == 4
  # Logged at steps 2 and 4, cumulative; the truncated record is read once (cache).
  total = before["skipped_records"] + 1
  assert _logged(workdir, "data/skipped_records") == [total, total]
  unread = (
      np.array(_logged(workdir, "data/unread_bytes")) - before["unread_bytes"]
  )
  assert unread[0] == unread[1] > 0
  warnings = [
      r.getMessage()
      for r in caplog.records
      if "corrupt record" in r.getMessage()
  ]
  assert len(warnings) == 1 and f"{total} so far" in warnings[0]
