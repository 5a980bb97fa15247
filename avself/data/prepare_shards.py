"""Main side of `avself.data.prepare`: shards, status files, manifest.

`records` (and with it TensorFlow) is imported inside the functions that write
shards: spawned workers re-import the main module, and TensorFlow would cost
each of them seconds of start-up and memory for nothing.
"""

import collections
import contextlib
import dataclasses
import glob
import json
import os
import time
from typing import Iterator, Optional, Sequence

import tqdm

from avself.data.prepare_plan import Options
from avself.data.prepare_plan import PrepareError
from avself.data.prepare_plan import Shard
from avself.data.prepare_plan import skip
from avself.data.prepare_workers import crashed
from avself.data.prepare_workers import ordered_map
from avself.data.prepare_workers import prepare_task
from avself.data.prepare_workers import Result

STATUS_DIR = (
    "prepare_status"  # per-shard status json (not matched by shard globs)
)
CREATED_BY = "avself.data.prepare"


########################################################################
# Main side: shards, status files, manifest.


def _content_options(options: Options) -> dict:
  """The options recorded in (and compared against) an output folder."""
  from avself.data import records

  return {
      "schema_version": records.SCHEMA_VERSION,
      **dataclasses.asdict(options),
  }


def _shard_file(output: str, shard: Shard) -> str:
  from avself.data import records

  return records.shard_path(output, shard.split, shard.index, shard.count)


def _status_file(output: str, shard_file: str) -> str:
  return os.path.join(
      output, STATUS_DIR, os.path.basename(shard_file) + ".json"
  )


def _inputs(shard: Shard) -> list:
  """What a shard was made from; a change means the shard is rebuilt."""
  return [[v.name, v.label_index, v.label_text] for v in shard.videos]


def _read_json(path: str) -> Optional[dict]:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def write_json(path: str, value: dict) -> None:
  """Writes JSON atomically (temp file + rename)."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f"{path}.{os.getpid()}.tmp"  # one per writer: two runs may write it at once
  with open(tmp, "w") as f:
    json.dump(value, f, indent=1)
  os.replace(tmp, path)


def check_reusable(output: str, content: dict) -> None:
  """Fails when the output folder was prepared with other options."""
  from avself.data import records

  previous = (
      _read_json(os.path.join(output, records.MANIFEST_NAME)) or {}
  ).get("options")
  if previous is None:
    statuses = glob.glob(os.path.join(output, STATUS_DIR, "*.json"))
    previous = next(
        (
            s["options"]
            for s in map(_read_json, statuses)
            if s and "options" in s
        ),
        None,
    )
  if previous is None:
    return
  diffs = [
      f"{k}={previous.get(k)!r} (now {v!r})"
      for k, v in content.items()
      if previous.get(k) != v
  ]
  if diffs:
    raise PrepareError(
        f"{output} was prepared with different options: {', '.join(diffs)}. "
        "Rerun with the original options to resume, or use a new --output."
    )


def _is_complete(output: str, shard: Shard, content: dict) -> Optional[dict]:
  """The shard's status when its file is complete and current, else None."""
  path = _shard_file(output, shard)
  status = _read_json(_status_file(output, path))
  if (
      os.path.exists(path)
      and status
      and status.get("options") == content
      and status.get("inputs") == _inputs(shard)
  ):
    return status
  return None


def _remove_stale(output: str, shards: Sequence[Shard]) -> None:
  """Deletes leftovers of earlier runs that this plan does not contain.

  Only files this tool made (with a status json) and its temp files are
  touched, so a stale `test.tfrecord-00000-of-00002` never mixes in.
  """
  planned = {os.path.basename(_shard_file(output, s)) for s in shards}
  for tmp in glob.glob(os.path.join(output, "*.tfrecord-*.tmp")):
    os.remove(tmp)
  for status in glob.glob(os.path.join(output, STATUS_DIR, "*.json")):
    shard_name = os.path.basename(status)[: -len(".json")]
    if shard_name not in planned:
      for path in (os.path.join(output, shard_name), status):
        if os.path.exists(path):
          os.remove(path)


def _write_shard(
    output: str,
    shard: Shard,
    options: Options,
    content: dict,
    results: Iterator[Result],
    progress,
) -> dict:
  """Writes one shard from the next results; returns (and saves) its status."""
  from avself.data import records

  path = _shard_file(output, shard)
  status = {
      "shard": os.path.basename(path),
      "split": shard.split,
      "options": content,
      "inputs": _inputs(shard),
      "num_videos": 0,
      "num_records": 0,
      "num_frames": 0,
      "num_seconds": 0.0,
      "skipped": [],
      "warnings": [],
  }

  def examples():
    for video in shard.videos:
      result = next(results)
      progress.update(1)
      if result.skip:
        status["skipped"].append(skip(video.name, *result.skip))
        continue
      if result.warning:
        status["warnings"].append(
            {"file": video.name, "detail": result.warning}
        )
      status["num_videos"] += 1
      for clip in result.clips:
        status["num_frames"] += len(clip.jpeg_frames)
        status["num_seconds"] += (clip.end_us - clip.start_us) / 1e6
        yield records.make_sequence_example(
            filename=video.name,
            jpeg_frames=clip.jpeg_frames,
            waveform=clip.waveform,
            sample_rate=options.sample_rate,
            fps=options.fps,
            start_us=clip.start_us,
            end_us=clip.end_us,
            label_index=[video.label_index],
            label_text=[video.label_text] if video.label_text else [],
            audio_format=options.audio_format,
        )

  status["num_records"] = records.write_records(path, examples())
  status["num_seconds"] = round(status["num_seconds"], 3)
  write_json(_status_file(output, path), status)
  return status


def build_manifest(
    output: str,
    shards: Sequence[Shard],
    statuses: Sequence[dict],
    skipped: Sequence[dict],
    label_names: Sequence[str],
    options: Options,
    run_options: dict,
) -> dict:
  """manifest.json's content from the shards' statuses (no decoding needed)."""
  splits = {}
  for shard, status in zip(shards, statuses):
    split = splits.setdefault(
        shard.split,
        {
            "num_videos": 0,
            "num_records": 0,
            "num_frames": 0,
            "num_seconds": 0.0,
            "shards": shard.count,
            "files": [],
        },
    )
    for key in ("num_videos", "num_records", "num_frames", "num_seconds"):
      split[key] += status[key]
    split["files"].append(status["shard"])
  for split in splits.values():
    split["num_seconds"] = round(split["num_seconds"], 3)
  all_skipped = list(skipped) + [s for st in statuses for s in st["skipped"]]
  return {
      "schema_version": _content_options(options)["schema_version"],
      "created_by": CREATED_BY,
      "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
      "fps": options.fps,
      "sample_rate": options.sample_rate,
      "channels": options.channels,
      "shorter_side": options.shorter_side,
      "jpeg_quality": options.jpeg_quality,
      "audio_format": options.audio_format,
      "clip_seconds": options.clip_seconds,
      "label_names": list(label_names),
      "splits": splits,
      "skipped": sorted(all_skipped, key=lambda s: (s["file"], s["reason"])),
      "warnings": [w for st in statuses for w in st["warnings"]],
      "options": {**_content_options(options), **run_options},
  }


def summary(manifest: dict, reused: int = 0) -> str:
  """The one-line report, e.g. 'prepared 98 videos (412.0 s) into 8 shards; skipped 2: ...'."""
  splits = manifest["splits"].values()
  videos = sum(s["num_videos"] for s in splits)
  seconds = sum(s["num_seconds"] for s in splits)
  shards = sum(s["shards"] for s in splits)
  line = f"prepared {videos} videos ({seconds:.1f} s) into {shards} shards"
  if reused:
    line += f" ({reused} reused from an earlier run)"
  reasons = collections.Counter(s["reason"] for s in manifest["skipped"])
  line += f"; skipped {sum(reasons.values())}"
  if reasons:
    line += ": " + ", ".join(f"{r}={n}" for r, n in sorted(reasons.items()))
  if manifest["warnings"]:
    line += f"; {len(manifest['warnings'])} kept with a warning"
  clipped = sum("full scale" in w["detail"] for w in manifest["warnings"])
  if clipped:
    line += f" ({clipped} with clipped audio)"
  return line


def remove_empty_shards(output: str, shards: Sequence[Shard]) -> None:
  """Removes the (empty) shards and statuses of a run that kept no video.

  Empty shards would look like a dataset to a trainer; without them it says
  that the folder holds no records.
  """
  for shard in shards:
    path = _shard_file(output, shard)
    for f in (path, _status_file(output, path)):
      if os.path.exists(f):
        os.remove(f)


def write_shards(
    output: str,
    shards: Sequence[Shard],
    options: Options,
    workers: int,
    progress: bool,
) -> tuple[list, int]:
  """Writes the shards not already complete -> (status per shard, number reused)."""
  content = _content_options(options)
  os.makedirs(output, exist_ok=True)
  check_reusable(output, content)
  _remove_stale(output, shards)
  statuses = [_is_complete(output, s, content) for s in shards]
  todo = [i for i, status in enumerate(statuses) if status is None]
  tasks = [(v.path, v.name, options) for i in todo for v in shards[i].videos]
  results = ordered_map(
      prepare_task, tasks, min(workers, max(1, len(tasks))), crashed
  )
  # closing(): a SIGTERM that lands while a shard is written must stop the
  # workers now; left to the garbage collector, the pool would first finish
  # every queued video at interpreter exit.
  with (
      contextlib.closing(results),
      tqdm.tqdm(
          total=len(tasks), unit="video", disable=not progress, desc="prepare"
      ) as bar,
  ):
    for i in todo:
      statuses[i] = _write_shard(
          output, shards[i], options, content, results, bar
      )
  return statuses, len(shards) - len(todo)
