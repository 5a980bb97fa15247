"""Clips per second written by the synthetic world (render + H.264/AAC + stems).

  python benchmarks/synthetic_world.py --num_videos=40 --workers=2

Prints the wall-clock rate, the CPU seconds per clip (all processes), and
what that CPU cost would allow on `workers` free cores: on a shared machine
the wall rate only shows the cores that were free.
"""

import dataclasses
import os
import resource
import tempfile
import time

from absl import flags

from avself import cli_flags
from avself.data import media_encode
from avself.data.synthetic import cache as synthetic_cache
from avself.data.synthetic import clip as synthetic_clip
from avself.data.synthetic import options as synthetic_options


def _cpu_seconds():
  """User + system CPU seconds of this process and its reaped children."""
  total = 0.0
  for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
    usage = resource.getrusage(who)
    total += usage.ru_utime + usage.ru_stime
  return total


def _stage_seconds(options, clips=4):
  """Mean seconds per clip to render and to encode, in this process."""
  render = encode = 0.0
  with tempfile.TemporaryDirectory() as out:
    for index in range(clips):
      start = time.perf_counter()
      frames, audio, _, _ = synthetic_clip.render_clip(index, 0, options)
      middle = time.perf_counter()
      media_encode.write_mp4(
          os.path.join(out, "clip.mp4"),
          frames,
          audio,
          options.fps,
          options.sample_rate,
      )
      render += middle - start
      encode += time.perf_counter() - middle
  return render / clips, encode / clips


FLAGS = flags.FlagValues()
flags.DEFINE_integer("num_videos", 40, "clips to write", flag_values=FLAGS)
flags.DEFINE_integer(
    "workers", os.cpu_count(), "processes that write clips", flag_values=FLAGS
)
flags.DEFINE_integer("size", 128, "frame size in pixels", flag_values=FLAGS)
flags.DEFINE_float("duration", 6.0, "clip seconds", flag_values=FLAGS)
flags.DEFINE_integer("fps", 15, "frames per second", flag_values=FLAGS)
flags.DEFINE_integer("sample_rate", 48000, "audio Hz", flag_values=FLAGS)
flags.DEFINE_bool("no_stems", False, "skip stems/*.npz", flag_values=FLAGS)


def main(argv=None):
  args = cli_flags.parse(FLAGS, argv, __doc__, "synthetic_world.py")
  options = synthetic_options.as_options(
      size=args.size,
      duration=args.duration,
      fps=args.fps,
      sample_rate=args.sample_rate,
  )
  render_s, encode_s = _stage_seconds(options)
  load = os.getloadavg()[0]
  with tempfile.TemporaryDirectory() as out:
    cpu = _cpu_seconds()
    start = time.perf_counter()
    synthetic_cache.generate(
        out,
        args.num_videos,
        seed=0,
        workers=args.workers,
        write_stems=not args.no_stems,
        **dataclasses.asdict(options),
    )
    wall = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu
  per_clip = cpu / args.num_videos
  print(
      f"synthetic_world: {args.num_videos / wall:.2f} clips/s wall "
      f"({args.num_videos} clips, {args.workers} workers, "
      f"{args.size}x{args.size}, {args.duration} s @ {args.fps} fps, "
      f"{args.sample_rate} Hz, stems={not args.no_stems}, load before "
      f"{load:.2f}); cpu {per_clip:.3f} s/clip (render {render_s:.3f} + "
      f"encode {encode_s:.3f} in-process) -> "
      f"{args.workers / per_clip:.2f} clips/s on {args.workers} free cores"
  )


if __name__ == "__main__":
  main()
