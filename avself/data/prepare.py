"""Turns a folder of videos into avself records (sharded TFRecords + manifest).

    python -m avself.data.prepare --videos=DIR_OR_GLOB --output=DIR [--labels=CSV]

or, from Python (the training demo does this after writing synthetic videos):

    manifest = prepare("DIR/videos", "DIR/records", labels="DIR/labels.csv", fps=10)

Each video is decoded with PyAV (`avself.data.media`) in a spawned worker,
frames are JPEG-encoded there, and the main process writes the shards. A rerun
skips shards that are already complete, so an interrupted run resumes. Bad
files are skipped and reported, never fatal. See docs/data.md.
"""

import dataclasses
import os
import signal
import sys
import time
from typing import Optional, Sequence, Union

from absl import flags

from avself import cli_flags
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


_DEFAULTS = Options()
_OPTIONS = tuple(f.name for f in dataclasses.fields(Options))
FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "videos", None, "folder (recursive), glob, or file", flag_values=FLAGS
)
flags.DEFINE_string(
    "output", None, "folder for shards and manifest.json", flag_values=FLAGS
)
flags.DEFINE_string(
    "labels", None, "CSV with columns file,label[,split]", flag_values=FLAGS
)
flags.DEFINE_float(
    "fps", _DEFAULTS.fps, "frames kept per second", flag_values=FLAGS
)
flags.DEFINE_integer(
    "shorter_side",
    _DEFAULTS.shorter_side,
    "frames are resized to this shorter side",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "jpeg_quality",
    _DEFAULTS.jpeg_quality,
    "JPEG quality of the stored frames",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "sample_rate",
    _DEFAULTS.sample_rate,
    "audio is resampled to this rate (Hz)",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "channels",
    _DEFAULTS.channels,
    "1 (mono) or 2 (stereo)",
    flag_values=FLAGS,
)
flags.register_validator(
    "channels",
    lambda value: value in (1, 2),
    "invalid choice (choose from 1, 2)",
    flag_values=FLAGS,
)
flags.DEFINE_enum(
    "audio_format",
    _DEFAULTS.audio_format,
    ["pcm_s16le", "floats"],
    "int16 bytes or DMVR float lists",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "clip_seconds",
    _DEFAULTS.clip_seconds,
    "records of this length; 0 = one per video",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "max_seconds",
    _DEFAULTS.max_seconds,
    "decode at most this much per video; 0 = all",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "min_seconds",
    _DEFAULTS.min_seconds,
    "drop clips (and skip videos) shorter than this",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "num_shards",
    _DEFAULTS.num_shards,
    "shards of the train split",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "test_fraction",
    None,
    "hash-split share of 'test' (default 0.1 with --labels, else 0)",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "workers", None, "worker processes (default: CPU count)", flag_values=FLAGS
)
flags.DEFINE_bool("quiet", False, "no progress bar", flag_values=FLAGS)
flags.mark_flags_as_required(["videos", "output"], flag_values=FLAGS)


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
  args = cli_flags.parse(FLAGS, argv, __doc__, "avself.data.prepare")
  options = {name: getattr(args, name) for name in _OPTIONS}
  videos, output, labels = args.videos, args.output, args.labels
  workers, quiet = args.workers, args.quiet
  signal.signal(signal.SIGTERM, _stop_on_signal)
  try:
    manifest = prepare(
        videos, output, labels, workers=workers, progress=not quiet, **options
    )
    if quiet:
      print(manifest["summary"])  # the report is never optional
  except PrepareError as e:
    print(f"prepare: error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
