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
import dataclasses
import os
import signal
import sys
import time
from typing import Optional, Sequence, Union

from avself.data.prepare_plan import DEFAULT_TEST_FRACTION
from avself.data.prepare_plan import find_videos
from avself.data.prepare_plan import Options
from avself.data.prepare_plan import plan_shards
from avself.data.prepare_plan import plan_videos
from avself.data.prepare_plan import PrepareError
from avself.data.prepare_plan import VIDEO_EXTENSIONS
from avself.data.prepare_plan import videos_root
from avself.data.prepare_shards import build_manifest
from avself.data.prepare_shards import remove_empty_shards
from avself.data.prepare_shards import summary
from avself.data.prepare_shards import write_json
from avself.data.prepare_shards import write_shards

# `records` (and with it TensorFlow) is imported inside the functions that write
# shards: spawned workers re-import this module, and TensorFlow would cost each
# of them seconds of start-up and memory for nothing.


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
  write_json(manifest_path, manifest)
  if progress:
    print(manifest["summary"], flush=True)
  if not any(s["num_videos"] for s in manifest["splits"].values()):
    remove_empty_shards(output, shards)
    raise PrepareError(
        f"no usable videos in {len(files)} files: {manifest['summary']}; "
        f"details in {manifest_path}"
    )
  return manifest


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
