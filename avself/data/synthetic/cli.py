"""A synthetic audio-visual world with ground truth, written as real mp4 files.

Command line: python -m avself.data.synthetic --output=DIR ...
"""

import argparse
import dataclasses
import os

from avself.data.synthetic import cache as cache_lib
from avself.data.synthetic import options as options_lib


def main(argv=None):
  """Command line: python -m avself.data.synthetic --output=DIR ..."""
  defaults = options_lib.WorldOptions()
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--output", required=True)
  parser.add_argument("--num_videos", type=int, required=True)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--workers", type=int, default=os.cpu_count())
  parser.add_argument(
      "--no_stems",
      action="store_true",
      help="skip stems/*.npz (~1.2 MB per source per clip)",
  )
  for field in dataclasses.fields(options_lib.WorldOptions):
    default = getattr(defaults, field.name)
    parser.add_argument(f"--{field.name}", type=type(default), default=default)
  args = parser.parse_args(argv)
  options = {
      f.name: getattr(args, f.name)
      for f in dataclasses.fields(options_lib.WorldOptions)
  }
  summary = cache_lib.generate(
      args.output,
      args.num_videos,
      args.seed,
      workers=args.workers,
      write_stems=not args.no_stems,
      **options,
  )
  if summary["cached"]:
    print(
        f"synthetic: {args.output} already holds these {args.num_videos} "
        "clips; skipped."
    )
  else:
    print(
        f"synthetic: wrote {args.num_videos} clips "
        f"({summary['num_train']} train / {summary['num_test']} test, "
        f"{summary['num_offscreen']} with off-screen sound) to "
        f"{args.output} in {summary['seconds']:.1f} s "
        f"({summary['clips_per_second']:.1f} clips/s)"
    )
  return summary
