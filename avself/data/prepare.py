"""Turns a folder of videos into avself records (sharded TFRecords + manifest).

    python -m avself.data.prepare --videos=DIR_OR_GLOB --output=DIR [--labels=CSV]

or, from Python (the training demo does this after writing synthetic videos):

    manifest = prepare("DIR/videos", "DIR/records", labels="DIR/labels.csv", fps=10)

Each video is decoded with PyAV (`avself.data.media`) in a spawned worker,
frames are JPEG-encoded there, and the main process writes the shards. A rerun
skips shards that are already complete, so an interrupted run resumes. Bad
files are skipped and reported, never fatal. See docs/data.md.
"""

import argparse
import collections
import concurrent.futures
import csv
import dataclasses
import glob
import hashlib
import io
import json
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
from typing import Callable, Iterator, Optional, Sequence, Union

import numpy as np
from PIL import Image
import tqdm

from avself.data import media

# `records` (and with it TensorFlow) is imported inside the functions that write
# shards: spawned workers re-import this module, and TensorFlow would cost each
# of them seconds of start-up and memory for nothing.

VIDEO_EXTENSIONS = (
    ".mp4",
    ".m4v",
    ".mkv",
    ".webm",
    ".avi",
    ".mov",
    ".mpg",
    ".mpeg",
    ".flv",
    ".wmv",
    ".ogv",
    ".3gp",
    ".ts",
    ".mts",
)
STATUS_DIR = (
    "prepare_status"  # per-shard status json (not matched by shard globs)
)
DEFAULT_TEST_FRACTION = (
    0.1  # used when labels are given and the CSV has no split
)
CREATED_BY = "avself.data.prepare"
_SPLIT_NAME = re.compile(r"[A-Za-z0-9_-]+")


class PrepareError(Exception):
  """Nothing usable to prepare, or an output folder that cannot be reused."""


@dataclasses.dataclass(frozen=True)
class Options:
  """Everything that decides the records' content; a resumed run must match.

  Attributes:
    fps: frames kept per second (nearest decoded frame to each k / fps).
    shorter_side: frames are resized so their shorter side is this (aspect kept).
    jpeg_quality: PIL JPEG quality of the stored frames.
    sample_rate: audio is resampled to this rate (Hz).
    channels: 1 (mono) or 2 (stereo).
    audio_format: 'pcm_s16le' (int16 bytes) or 'floats' (DMVR float lists).
    clip_seconds: split videos into records this long; 0 = one record per video.
    max_seconds: decode at most this much of each video; 0 = all.
    min_seconds: drop clips (and skip videos) shorter than this.
    num_shards: shards of the train split (other splits: proportional, >= 1).
    test_fraction: hash-split share of 'test'; None = 0.1 with labels, else 0.
  """

  fps: float = 10.0
  shorter_side: int = 256
  jpeg_quality: int = 90
  sample_rate: int = 48000
  channels: int = 1
  audio_format: str = "pcm_s16le"
  clip_seconds: float = 0.0
  max_seconds: float = 0.0
  min_seconds: float = 1.0
  num_shards: int = 8
  test_fraction: Optional[float] = None

  def validate(self) -> None:
    """Raises ValueError on an option that cannot work."""
    checks = [
        (self.fps > 0, "fps must be > 0"),
        (self.shorter_side > 0, "shorter_side must be > 0"),
        (1 <= self.jpeg_quality <= 100, "jpeg_quality must be in [1, 100]"),
        (self.sample_rate > 0, "sample_rate must be > 0"),
        (self.channels in (1, 2), "channels must be 1 or 2"),
        (
            self.audio_format in ("pcm_s16le", "floats"),
            "audio_format must be 'pcm_s16le' or 'floats'",
        ),
        (self.clip_seconds >= 0, "clip_seconds must be >= 0 (0 = whole video)"),
        (self.max_seconds >= 0, "max_seconds must be >= 0 (0 = no cap)"),
        (self.min_seconds >= 0, "min_seconds must be >= 0"),
        (
            not self.clip_seconds or self.clip_seconds >= self.min_seconds,
            "clip_seconds must be >= min_seconds",
        ),
        (self.num_shards >= 1, "num_shards must be >= 1"),
        (
            self.test_fraction is None or 0 <= self.test_fraction < 1,
            "test_fraction must be in [0, 1)",
        ),
    ]
    for ok, message in checks:
      if not ok:
        raise ValueError(f"{message}; got {self}")


@dataclasses.dataclass(frozen=True)
class Video:
  """One input file and where it goes."""

  path: str  # absolute
  name: str  # relative to the videos folder; stored as video/filename
  split: str
  label_index: int = -1
  label_text: str = ""


@dataclasses.dataclass
class Shard:
  """One output file and the videos assigned to it."""

  split: str
  index: int
  count: int  # shards in this split
  videos: list


@dataclasses.dataclass
class _Clip:
  """One record's payload, made in a worker (no TensorFlow there)."""

  start_us: int
  end_us: int
  jpeg_frames: list
  waveform: np.ndarray  # float32 [N, C]


@dataclasses.dataclass
class _Result:
  """A worker's answer for one video: clips, or why it was skipped."""

  name: str
  clips: list = dataclasses.field(default_factory=list)
  skip: Optional[tuple] = None  # (reason, detail)
  warning: Optional[str] = None  # kept, but decoded partly or clipped


########################################################################
# Finding videos, labels and splits.


def find_videos(videos: Union[str, Sequence[str]]) -> list[str]:
  """Sorted absolute paths: a folder (searched recursively), a glob, a file or a list."""
  if not isinstance(videos, str):
    return sorted({p for v in videos for p in find_videos(v)})
  videos = os.path.expanduser(videos)
  if os.path.isdir(videos):
    found = [
        os.path.join(d, f)
        for d, _, files in os.walk(videos)
        for f in files
        if f.lower().endswith(VIDEO_EXTENSIONS)
    ]
  elif glob.has_magic(videos):
    found = [p for p in glob.glob(videos, recursive=True) if os.path.isfile(p)]
  else:
    found = [videos] if os.path.isfile(videos) else []
  return sorted(os.path.abspath(p) for p in found)


def videos_root(videos: Union[str, Sequence[str]], files: Sequence[str]) -> str:
  """The folder that stored file names are relative to."""
  if isinstance(videos, str) and os.path.isdir(os.path.expanduser(videos)):
    return os.path.abspath(os.path.expanduser(videos))
  return os.path.commonpath([os.path.dirname(f) for f in files])


def hash_split(name: str, test_fraction: float) -> str:
  """'test' for a stable `test_fraction` of file names, else 'train'.

  Hashes the base name only, so adding videos or moving the folder never
  moves an old video to the other split.
  """
  digest = hashlib.sha1(os.path.basename(name).encode()).hexdigest()
  return "test" if int(digest[:15], 16) / 16**15 < test_fraction else "train"


def read_labels(csv_path: str) -> list[dict]:
  """Rows of a labels CSV as dicts with 'file', 'label' and 'split' (maybe '')."""
  with open(csv_path, newline="") as f:
    reader = csv.DictReader(f)
    columns = {c.strip().lower(): c for c in reader.fieldnames or []}
    if "file" not in columns or "label" not in columns:
      raise PrepareError(
          f"{csv_path}: needs a header with columns 'file' and 'label' "
          f"(and optionally 'split'); found {reader.fieldnames}"
      )
    rows = []
    for row in reader:
      get = (
          lambda key: (row.get(columns[key]) or "").strip()
          if key in columns
          else ""
      )
      if get("file"):
        rows.append(
            {"file": get("file"), "label": get("label"), "split": get("split")}
        )
  return rows


def match_labels(
    rows: Sequence[dict], files: Sequence[str], root: str, csv_dir: str
) -> tuple[dict, list]:
  """Maps CSV rows to files -> ({path: row}, unmatched rows).

  A row's `file` may be relative to the CSV's folder, to the videos folder, to
  the working directory, absolute, a trailing part of a path, or a bare name
  (when that name is unique).
  """
  by_path = {os.path.normpath(f): f for f in files}
  by_name = collections.defaultdict(list)
  for f in files:
    by_name[os.path.basename(f)].append(f)
  matched, unmatched = {}, []
  for row in rows:
    path = _match_one(row["file"], by_path, by_name, files, root, csv_dir)
    if path is None:
      unmatched.append(row)
    else:
      first = matched.setdefault(path, row)
      if (first["label"], first["split"]) != (row["label"], row["split"]):
        raise PrepareError(
            f"{os.path.relpath(path, root)} is listed twice in the labels "
            f"with different values: {first['file']!r} -> "
            f"{first['label']!r}/{first['split'] or '-'}, {row['file']!r} -> "
            f"{row['label']!r}/{row['split'] or '-'} (label/split); keep one"
        )
  return matched, unmatched


def _match_one(entry, by_path, by_name, files, root, csv_dir) -> Optional[str]:
  """The file a labels row names, or None."""
  entry = os.path.normpath(entry.replace("\\", "/"))
  bases = [""] if os.path.isabs(entry) else [csv_dir, root, os.getcwd()]
  for base in bases:
    path = os.path.normpath(os.path.abspath(os.path.join(base, entry)))
    if path in by_path:
      return by_path[path]
  tail = [f for f in files if f.endswith(os.sep + entry)]
  if len(tail) == 1:
    return tail[0]
  same_name = by_name.get(os.path.basename(entry), [])
  return same_name[0] if len(same_name) == 1 else None


def plan_videos(
    files: Sequence[str], root: str, labels: Optional[str], test_fraction: float
) -> tuple[list, list, list]:
  """Assigns files to splits and labels -> (videos, skipped, label_names)."""
  names = {f: os.path.relpath(f, root) for f in files}
  if labels is None:
    videos = [
        Video(f, names[f], hash_split(names[f], test_fraction)) for f in files
    ]
    return videos, [], []
  rows = read_labels(labels)
  matched, unmatched = match_labels(
      rows, files, root, os.path.dirname(os.path.abspath(labels))
  )
  label_names = sorted({r["label"] for r in rows if r["label"]})
  index = {name: i for i, name in enumerate(label_names)}
  skipped = [
      _skip(
          r["file"],
          "not_found",
          f"listed in {os.path.basename(labels)}, " "no such video",
      )
      for r in unmatched
  ]
  videos = []
  for f in files:
    row = matched.get(f)
    if row is None:
      skipped.append(
          _skip(names[f], "unlabelled", f"not in {os.path.basename(labels)}")
      )
      continue
    split = row["split"] or hash_split(names[f], test_fraction)
    if not _SPLIT_NAME.fullmatch(split):
      raise PrepareError(
          f"{labels}: split {split!r} for {row['file']} must match "
          "[A-Za-z0-9_-]+ (it names the shard files)"
      )
    videos.append(
        Video(f, names[f], split, index.get(row["label"], -1), row["label"])
    )
  return videos, skipped, label_names


def _skip(name: str, reason: str, detail: str = "") -> dict:
  """One entry of the manifest's skipped list."""
  return {"file": name, "reason": reason, "detail": detail}


def plan_shards(videos: Sequence[Video], num_shards: int) -> list[Shard]:
  """Contiguous runs of the sorted videos per split.

  The train split gets `num_shards` shards; every other split gets the same
  share per video, rounded, at least 1 and at most one per video.
  """
  by_split = collections.defaultdict(list)
  for v in sorted(videos, key=lambda v: v.name):
    by_split[v.split].append(v)
  num_train = len(by_split.get("train", []))
  shards = []
  for split in sorted(by_split):
    items = by_split[split]
    count = num_shards
    if split != "train":
      share = num_shards * len(items) / num_train if num_train else num_shards
      count = max(1, min(len(items), round(share)))
    for i in range(count):
      chunk = items[i * len(items) // count : (i + 1) * len(items) // count]
      shards.append(Shard(split, i, count, chunk))
  return shards


########################################################################
# Worker side: one video in, record payloads out. No TensorFlow here.


def encode_jpeg(pixels: np.ndarray, quality: int) -> bytes:
  """uint8 [H, W, 3] -> JPEG bytes."""
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
  return buffer.getvalue()


def prepare_video(path: str, name: str, options: Options) -> _Result:
  """Decodes one video into record payloads, or says why not; never raises."""
  try:
    clips, error, seconds = _decode_clips(path, options)
  except media.MediaError as e:
    return _Result(name, skip=(e.reason, e.detail))
  except Exception as e:  # Any other failure on one file must not stop the run.
    return _Result(name, skip=("error", f"{type(e).__name__}: {e}"[:300]))
  if not clips:
    return _Result(
        name,
        skip=(
            "too_short",
            f"{seconds:.2f} s < min_seconds " f"{options.min_seconds:g}",
        ),
    )
  warning = f"partial decode, kept {seconds:.2f} s: {error}" if error else None
  if options.audio_format == "pcm_s16le":
    clipped = clipped_samples(clips)
    if clipped:
      warning = "; ".join(filter(None, [warning, clipped]))
  return _Result(name, clips=clips, warning=warning)


def clipped_samples(clips: Sequence[_Clip]) -> Optional[str]:
  """'N of M audio samples (x%) beyond full scale...', or None if none are.

  Decoded float audio can exceed +-1.0 (a loud source, a resampler's
  overshoot); the 16-bit records cut it there, so it is reported.
  """
  total = sum(c.waveform.size for c in clips)
  over = sum(int(np.count_nonzero(np.abs(c.waveform) > 1.0)) for c in clips)
  if not over:
    return None
  return (
      f"{over} of {total} audio samples ({100 * over / total:.3g}%) beyond "
      "full scale, clipped to +-1.0 in the records"
  )


def _decode_clips(
    path: str, options: Options
) -> tuple[list, Optional[str], float]:
  """Clips long enough to keep, the decode error if any, and seconds decoded."""
  quality = options.jpeg_quality
  stream = media.iter_clips(
      path,
      fps=options.fps,
      shorter_side=options.shorter_side,
      sample_rate=options.sample_rate,
      channels=options.channels,
      clip_seconds=options.clip_seconds,
      max_seconds=options.max_seconds or None,
      frame_fn=lambda pixels: encode_jpeg(pixels, quality),
  )
  clips, error, seconds = [], None, 0.0
  for clip in stream:
    error = clip.error or error
    seconds += clip.duration
    if clip.duration >= options.min_seconds - 1e-6 and len(clip.frames):
      start_us = round(clip.start * 1e6)
      clips.append(
          _Clip(
              start_us,
              start_us + round(clip.duration * 1e6),
              clip.frames,
              clip.audio,
          )
      )
  return clips, error, seconds


def _prepare_task(task: tuple) -> _Result:
  """Pool entry point (picklable by reference)."""
  return prepare_video(*task)


def ordered_map(
    fn: Callable,
    tasks: Sequence,
    workers: int,
    on_crash: Optional[Callable] = None,
    window: int = 4,
) -> Iterator:
  """fn over tasks in `workers` spawned processes, yielding results in order.

  At most `workers * window` results wait in memory. `spawn`, not fork: a
  forked TensorFlow (in the parent) can deadlock. If a worker process dies
  (a decoder crashing on a hostile file), the tasks in flight are rerun one
  per process to find the culprit, whose result is `on_crash(task)`.
  """
  tasks = list(tasks)
  if workers <= 1:
    yield from map(fn, tasks)
    return
  done = succeeded = 0
  while done < len(tasks):
    try:
      for result in _pool_map(fn, tasks[done:], workers, window):
        done, succeeded = done + 1, succeeded + 1
        yield result
    except concurrent.futures.process.BrokenProcessPool:
      if on_crash is None:
        raise
      for task in tasks[done : done + workers * window]:
        try:
          result = list(_pool_map(fn, [task], 1, 1))[0]
          succeeded += 1
        except concurrent.futures.process.BrokenProcessPool as e:
          if not succeeded and done:
            # Two tasks died and none ever finished: the workers cannot run at
            # all (e.g. the parent is a `python - <<EOF` script, which spawn
            # cannot re-import), so blaming every input would mislead.
            raise RuntimeError(
                "worker processes die before finishing any task; "
                "run from a file or with `python -m`"
            ) from e
          result = on_crash(task)
        done += 1
        yield result


def _pool_map(
    fn: Callable, tasks: Sequence, workers: int, window: int
) -> Iterator:
  """Ordered results of fn over tasks from a fresh spawn pool."""
  context = multiprocessing.get_context("spawn")
  with concurrent.futures.ProcessPoolExecutor(
      workers,
      mp_context=context,
      initializer=_exit_with_parent,
      initargs=(os.getpid(),),
  ) as pool:
    try:
      pending = collections.deque()
      upcoming = iter(tasks)
      for task in upcoming:
        pending.append(pool.submit(fn, task))
        if len(pending) >= workers * window:
          break
      while pending:
        result = pending.popleft().result()
        task = next(upcoming, None)
        if task is not None:
          pending.append(pool.submit(fn, task))
        yield result
    except BaseException:  # SIGTERM, Ctrl-C, an early close: stop the workers
      _stop_workers(pool)
      raise


def _stop_workers(pool: concurrent.futures.ProcessPoolExecutor) -> None:
  """Terminates a pool's workers now (shutdown alone waits for their tasks)."""
  # pylint: disable-next=protected-access
  for process in list((getattr(pool, "_processes", None) or {}).values()):
    process.terminate()
  pool.shutdown(wait=False, cancel_futures=True)


def _exit_with_parent(parent: int, every_seconds: float = 0.5) -> None:
  """Worker initializer: a thread that ends the worker once `parent` is gone.

  A parent killed with SIGKILL cannot stop its workers; without this they
  would live on, re-parented, blocked on a pipe nobody reads.
  """

  def watch():
    while os.getppid() == parent:
      time.sleep(every_seconds)
    os._exit(1)  # pylint: disable=protected-access

  threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _crashed(task: tuple) -> _Result:
  """The result for a video whose decoder process died."""
  return _Result(
      task[1], skip=("crashed", "the decoding process died on this file")
  )


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


def _write_json(path: str, value: dict) -> None:
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
    results: Iterator[_Result],
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
        status["skipped"].append(_skip(video.name, *result.skip))
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
  _write_json(_status_file(output, path), status)
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


def prepare(
    videos: Union[str, Sequence[str]],
    output: str,
    labels: Optional[str] = None,
    *,
    workers: Optional[int] = None,
    progress: bool = True,
    **options,
) -> dict:
  """Prepares records for `videos` in `output`; returns the manifest.

  `options` are the fields of `Options` (fps, shorter_side, clip_seconds, …).
  Raises PrepareError when nothing usable was found or `output` holds records
  made with other options.
  """
  opts = _resolve(Options(**options), labels)
  files = find_videos(videos)
  if not files:
    raise PrepareError(
        f"no video files found for --videos={videos!r} "
        f"(a folder is searched for {', '.join(VIDEO_EXTENSIONS[:5])}, …)"
    )
  from avself.data import records  # only now: TensorFlow takes seconds to load

  plan, skipped, label_names = plan_videos(
      files, videos_root(videos, files), labels, opts.test_fraction
  )
  shards = plan_shards(plan, opts.num_shards)
  workers = workers or os.cpu_count() or 1
  statuses, reused = write_shards(output, shards, opts, workers, progress)
  run_options = {
      "videos": videos if isinstance(videos, str) else list(videos),
      "labels": labels,
      "workers": workers,
  }
  manifest = build_manifest(
      output, shards, statuses, skipped, label_names, opts, run_options
  )
  manifest["summary"] = summary(manifest, reused)
  manifest_path = os.path.join(output, records.MANIFEST_NAME)
  _write_json(manifest_path, manifest)
  if progress:
    print(manifest["summary"], flush=True)
  if not any(s["num_videos"] for s in manifest["splits"].values()):
    _remove_empty_shards(output, shards)
    raise PrepareError(
        f"no usable videos in {len(files)} files: {manifest['summary']}; "
        f"details in {manifest_path}"
    )
  return manifest


def _remove_empty_shards(output: str, shards: Sequence[Shard]) -> None:
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
      _prepare_task, tasks, min(workers, max(1, len(tasks))), _crashed
  )
  with tqdm.tqdm(
      total=len(tasks), unit="video", disable=not progress, desc="prepare"
  ) as bar:
    for i in todo:
      statuses[i] = _write_shard(
          output, shards[i], options, content, results, bar
      )
  return statuses, len(shards) - len(todo)


def _resolve(options: Options, labels: Optional[str]) -> Options:
  """Fills the label-dependent default and validates."""
  if options.test_fraction is None:
    options = dataclasses.replace(
        options, test_fraction=DEFAULT_TEST_FRACTION if labels else 0.0
    )
  # Plain float/int types, so the JSON record compares and reads the same
  # whether the options came from Python (fps=8) or the command line (8.0).
  options = dataclasses.replace(
      options,
      fps=float(options.fps),
      shorter_side=int(options.shorter_side),
      jpeg_quality=int(options.jpeg_quality),
      sample_rate=int(options.sample_rate),
      channels=int(options.channels),
      clip_seconds=float(options.clip_seconds),
      max_seconds=float(options.max_seconds or 0.0),
      min_seconds=float(options.min_seconds),
      num_shards=int(options.num_shards),
      test_fraction=float(options.test_fraction),
  )
  try:
    options.validate()
  except ValueError as e:
    raise PrepareError(str(e)) from e
  return options


def measure_rate(videos: Union[str, Sequence[str]], **options) -> dict:
  """Video-seconds prepared per second (wall and CPU), with one in-process worker.

  One process does everything (decode, resize, JPEG, records) into a fresh
  temporary folder, so the rate is per core and nothing is reused.

      python -c "from avself.data import prepare; print(prepare.measure_rate('DIR'))"
  """
  import tempfile
  from avself.data import records  # noqa: F401  (TensorFlow's import is not timed)

  with tempfile.TemporaryDirectory() as output:
    start, start_cpu = time.perf_counter(), time.process_time()
    manifest = prepare(videos, output, workers=1, progress=False, **options)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
  seconds = sum(s["num_seconds"] for s in manifest["splits"].values())
  # CPU time counts every thread (ffmpeg may decode with several), so
  # seconds / cpu is the honest per-core rate; wall time also shows contention.
  return {
      "video_seconds": seconds,
      "wall_seconds": round(elapsed, 3),
      "cpu_seconds": round(cpu, 3),
      "video_seconds_per_wall_second": round(seconds / elapsed, 1),
      "video_seconds_per_cpu_second": round(seconds / cpu, 1),
  }


########################################################################
# Command line.


def _parser() -> argparse.ArgumentParser:
  """The command-line flags (defaults come from Options)."""
  d = Options()
  p = argparse.ArgumentParser(
      prog="python -m avself.data.prepare",
      description="Decode videos into avself TFRecords (see docs/data.md).",
  )
  p.add_argument(
      "--videos", required=True, help="folder (recursive), glob, or file"
  )
  p.add_argument(
      "--output", required=True, help="folder for shards and manifest.json"
  )
  p.add_argument(
      "--labels", default=None, help="CSV with columns file,label[,split]"
  )
  p.add_argument("--fps", type=float, default=d.fps)
  p.add_argument("--shorter_side", type=int, default=d.shorter_side)
  p.add_argument("--jpeg_quality", type=int, default=d.jpeg_quality)
  p.add_argument("--sample_rate", type=int, default=d.sample_rate)
  p.add_argument("--channels", type=int, default=d.channels, choices=(1, 2))
  p.add_argument(
      "--audio_format", default=d.audio_format, choices=("pcm_s16le", "floats")
  )
  p.add_argument(
      "--clip_seconds",
      type=float,
      default=d.clip_seconds,
      help="records of this length; 0 = one per video",
  )
  p.add_argument(
      "--max_seconds",
      type=float,
      default=d.max_seconds,
      help="decode at most this much per video; 0 = all",
  )
  p.add_argument("--min_seconds", type=float, default=d.min_seconds)
  p.add_argument("--num_shards", type=int, default=d.num_shards)
  p.add_argument(
      "--test_fraction",
      type=float,
      default=None,
      help="hash-split share of 'test' (default 0.1 with --labels, else 0)",
  )
  p.add_argument("--workers", type=int, default=None, help="default: CPU count")
  p.add_argument("--quiet", action="store_true", help="no progress bar")
  return p


def _stop_on_signal(signum, frame):
  """SIGTERM: unwind (the pool's workers are terminated on the way) and exit."""
  del frame
  print(
      f"prepare: stopped by signal {signum}; the same command resumes "
      "(complete shards are kept)",
      file=sys.stderr,
      flush=True,
  )
  raise SystemExit(128 + signum)


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Runs the command line; returns the exit status."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads
  args = vars(_parser().parse_args(argv))
  videos, output, labels = (
      args.pop("videos"),
      args.pop("output"),
      args.pop("labels"),
  )
  workers, quiet = args.pop("workers"), args.pop("quiet")
  signal.signal(signal.SIGTERM, _stop_on_signal)
  try:
    manifest = prepare(
        videos, output, labels, workers=workers, progress=not quiet, **args
    )
    if quiet:
      print(manifest["summary"])  # the report is never optional
  except PrepareError as e:
    print(f"prepare: error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
