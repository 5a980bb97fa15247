"""Writing the world to a folder, cached by its options."""

import csv
import dataclasses
import json
import multiprocessing
import os
import sys
import time

import numpy as np

from avself.data import media_encode
from avself.data.synthetic import clip as clip_lib
from avself.data.synthetic import options as options_lib

# Bump when rendering changes, so that cached folders are regenerated.
VERSION = 1


def _make_clip(job):
  """Worker: renders and writes one clip; returns its ground-truth line."""
  index, seed, options, output_dir, split, write_stems = job
  frames, audio, truth, stems = clip_lib.render_clip(index, seed, options)
  truth["split"] = split
  media_encode.write_mp4(
      os.path.join(output_dir, truth["file"]),
      frames,
      audio,
      options.fps,
      options.sample_rate,
  )
  if write_stems:
    np.savez(os.path.join(output_dir, truth["stems"]), **stems)
  else:
    truth["stems"] = None
  return truth


# Options added after VERSION 1's folders were written: in the key only when
# set, so that a folder written before them stays valid.
_KEYED_WHEN_SET = ("class_cue", "flash", "voice")


def _cache_key(num_videos, seed, options, write_stems):
  defaults = options_lib.WorldOptions()
  keyed = {
      k: v
      for k, v in dataclasses.asdict(options).items()
      if k not in _KEYED_WHEN_SET or v != getattr(defaults, k)
  }
  return dict(
      version=VERSION,
      num_videos=num_videos,
      seed=seed,
      write_stems=write_stems,
      options=keyed,
  )


def _is_complete(output_dir, key):
  """Whether output_dir already holds this exact world (summary.json)."""
  try:
    with open(os.path.join(output_dir, "summary.json")) as f:
      summary = json.load(f)
  except (OSError, ValueError):
    return None
  if any(summary.get(k) != v for k, v in key.items()):
    return None
  if not os.path.exists(os.path.join(output_dir, "ground_truth.jsonl")):
    return None
  return summary


def _pool_context():
  # fork is fast but unsafe once JAX / TF have started their threads (the
  # training demo calls `generate` after importing them): spawn then.
  if any(m in sys.modules for m in ("jax", "tensorflow")):
    return multiprocessing.get_context("spawn")
  return multiprocessing.get_context("fork")


def generate(
    output_dir, num_videos, seed, workers=None, write_stems=True, **options
):
  """Writes the world to output_dir (skipped if already there); a summary."""
  options = options_lib.as_options(**options)
  key = _cache_key(num_videos, seed, options, write_stems)
  summary = _is_complete(output_dir, key)
  if summary is not None:
    return dict(summary, cached=True)
  start = time.time()
  for sub in ("videos", "stems"):
    os.makedirs(os.path.join(output_dir, sub), exist_ok=True)
    for name in os.listdir(os.path.join(output_dir, sub)):  # stale clips
      if name.startswith("clip_"):
        os.remove(os.path.join(output_dir, sub, name))
  for name in ("summary.json",):
    if os.path.exists(os.path.join(output_dir, name)):
      os.remove(os.path.join(output_dir, name))
  splits = options_lib.assign_splits(
      num_videos, seed, options.num_classes, options.test_fraction
  )
  jobs = [
      (i, seed, options, output_dir, splits[i], write_stems)
      for i in range(num_videos)
  ]
  workers = max(1, min(workers or os.cpu_count() or 1, num_videos))
  if workers == 1:
    truths = [_make_clip(job) for job in jobs]
  else:
    with _pool_context().Pool(workers) as pool:
      truths = list(pool.imap(_make_clip, jobs, chunksize=1))
  _write_tables(output_dir, truths)
  seconds = time.time() - start
  summary = dict(
      key,
      class_names=[
          c.name
          for c in options_lib.class_table(
              options.num_classes, options.class_cue
          )
      ],
      num_train=splits.count("train"),
      num_test=splits.count("test"),
      num_offscreen=sum(t["offscreen"] is not None for t in truths),
      seconds=round(seconds, 3),
      clips_per_second=round(num_videos / max(seconds, 1e-9), 3),
  )
  # Written last and atomically: its presence means the folder is complete.
  tmp = os.path.join(output_dir, f"summary.json.{os.getpid()}.tmp")
  with open(tmp, "w") as f:
    json.dump(summary, f, indent=1)
  os.replace(tmp, os.path.join(output_dir, "summary.json"))
  return dict(summary, cached=False)


def _write_tables(output_dir, truths):
  """labels.csv (file,label,split) and ground_truth.jsonl, in clip order."""
  with open(os.path.join(output_dir, "labels.csv"), "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["file", "label", "split"])
    for t in truths:
      writer.writerow([t["file"], t["label"], t["split"]])
  with open(os.path.join(output_dir, "ground_truth.jsonl"), "w") as f:
    for t in truths:
      f.write(json.dumps(t) + "\n")
