"""The demo's data: the synthetic world and its records, built once and cached.

Runs the same two commands a user would (`avself.data.synthetic`, then
`avself.data.prepare`), so the demo exercises the real ingest path: mp4
files with H.264 video and AAC audio, decoded by PyAV into TFRecords.
"""

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os

from absl import logging
import jax


def cache_root(data_config) -> str:
  """Where the world and its records live (~/.cache/avself by default)."""
  root = data_config.synthetic.get("cache_dir") or os.path.join(
      os.path.expanduser("~"), ".cache", "avself"
  )
  return os.path.abspath(root)


def _key(data_config) -> str:
  """A short hash of everything that changes the records."""
  s = data_config.synthetic.to_dict()
  s.pop("cache_dir", None)
  s.pop("workers", None)
  if not s.get("voice"):  # added later: off keeps the caches made before it
    s.pop("voice", None)
  s["records_sample_rate"] = data_config.sample_rate
  s["channels"] = data_config.get("channels", 1)
  return hashlib.sha1(json.dumps(s, sort_keys=True).encode()).hexdigest()[:10]


def ensure_synthetic_records(data_config) -> str:
  """Generates and prepares the synthetic world if absent; returns the records dir."""
  s = data_config.synthetic
  root = os.path.join(cache_root(data_config), f"synthetic-{_key(data_config)}")
  videos_dir = os.path.join(root, "world")
  records_dir = os.path.join(root, "records")
  if jax.process_index() == 0:
    with building(root):
      _build(s, data_config, videos_dir, records_dir)
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

    multihost_utils.sync_global_devices("avself_synthetic_records")
  return records_dir


@contextlib.contextmanager
def building(root: str):
  """Holds `root`/.lock while the world and records are built or checked.

  Runs started together on one cache (a fine-tuning run and its scratch
  baseline) would otherwise write the same files at once; the second waits,
  then finds them complete and reuses them.
  """
  os.makedirs(root, exist_ok=True)
  with open(os.path.join(root, ".lock"), "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


def _build(s, data_config, videos_dir, records_dir) -> None:
  from avself.data import prepare  # pylint: disable=g-import-not-at-top
  from avself.data.synthetic import cache as synthetic_cache  # pylint: disable=g-import-not-at-top
  from avself.data.synthetic import options as synthetic_options  # pylint: disable=g-import-not-at-top

  workers = s.workers or os.cpu_count() or 1
  # Every WorldOptions field the config sets (older configs lack the newer ones).
  options = {
      f.name: s[f.name]
      for f in dataclasses.fields(synthetic_options.WorldOptions)
      if f.name in s
  }
  options.update(fps=int(s.fps), channels=data_config.get("channels", 1))
  summary = synthetic_cache.generate(
      videos_dir,
      s.num_videos,
      s.seed,
      workers=workers,
      write_stems=s.write_stems,
      **options,
  )
  logging.info(
      "Synthetic world in %s (%s)",
      videos_dir,
      "cached" if summary.get("cached") else "generated",
  )
  manifest = prepare.prepare(
      os.path.join(videos_dir, "videos"),
      records_dir,
      labels=os.path.join(videos_dir, "labels.csv"),
      sample_rate=data_config.sample_rate,
      channels=data_config.get("channels", 1),
      fps=s.prepare_fps,
      shorter_side=s.shorter_side,
      num_shards=s.num_shards,
      workers=workers,
  )
  logging.info(
      "Synthetic records in %s: %s",
      records_dir,
      {k: v.get("num_videos") for k, v in manifest.get("splits", {}).items()},
  )
