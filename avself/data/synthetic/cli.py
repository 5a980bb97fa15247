"""A synthetic audio-visual world with ground truth, written as real mp4 files.

Command line: python -m avself.data.synthetic --output=DIR ...
"""

import dataclasses
import os

from absl import flags

from avself import cli_flags
from avself.data.synthetic import cache as cache_lib
from avself.data.synthetic import options as options_lib

FLAGS = flags.FlagValues()
flags.DEFINE_string("output", None, "the world's folder", flag_values=FLAGS)
flags.DEFINE_integer("num_videos", None, "clips to write", flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "the world's seed", flag_values=FLAGS)
flags.DEFINE_integer(
    "workers", os.cpu_count(), "processes that write clips", flag_values=FLAGS
)
flags.DEFINE_bool(
    "no_stems",
    False,
    "skip stems/*.npz (~1.2 MB per source per clip)",
    flag_values=FLAGS,
)
flags.mark_flags_as_required(["output", "num_videos"], flag_values=FLAGS)
_DEFINE = {
    bool: flags.DEFINE_bool,
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    str: flags.DEFINE_string,
}
for _field in dataclasses.fields(options_lib.WorldOptions):
  _default = getattr(options_lib.WorldOptions(), _field.name)
  _DEFINE[type(_default)](
      _field.name,
      _default,
      "WorldOptions." + _field.name,
      flag_values=FLAGS,
  )


def main(argv=None):
  """Command line: python -m avself.data.synthetic --output=DIR ..."""
  args = cli_flags.parse(FLAGS, argv, __doc__, "avself.data.synthetic")
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
