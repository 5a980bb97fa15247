"""Command-line flags of avself's tools, parsed by absl into one FlagValues per tool.

A tool defines its flags on its own `flags.FlagValues()` (not absl's global
FLAGS), so that its `main(argv)` can run in-process any number of times, and
beside other tools, and a file loaded twice (config_lib.load_file) defines
them afresh:

  FLAGS = flags.FlagValues()
  flags.DEFINE_string("output", None, "...", flag_values=FLAGS)
  flags.mark_flag_as_required("output", flag_values=FLAGS)

  def main(argv=None):
    args = cli_flags.parse(FLAGS, argv, __doc__)
    ...

absl takes `--name=value` and `--name value`, `--flag`/`--noflag` for
booleans, and the last of a repeated flag wins.
"""

import os
import sys
from typing import List, Optional, Sequence, Tuple

from absl import flags


def parse(
    flag_values: flags.FlagValues,
    argv: Optional[Sequence[str]] = None,
    doc: str = "",
    prog: Optional[str] = None,
) -> flags.FlagValues:
  """Parses `argv` (without the program name; sys.argv[1:] when None) into
  `flag_values`, every flag starting from its default.

  `--help` (or `-h`) prints `doc` and the flags, and exits 0. A bad flag, a
  missing required one or a stray argument exits with one line naming it.
  """
  prog = prog or os.path.basename(sys.argv[0] or "avself")
  flag_values, rest = parse_with_arguments(flag_values, argv, doc, prog)
  if rest:
    raise SystemExit(f"{prog}: unexpected arguments: {' '.join(rest)}")
  return flag_values


def parse_with_arguments(
    flag_values: flags.FlagValues,
    argv: Optional[Sequence[str]] = None,
    doc: str = "",
    prog: Optional[str] = None,
) -> Tuple[flags.FlagValues, List[str]]:
  """As `parse`, for a tool that also takes positional arguments (files):
  returns the flags and the arguments that are not flags, in order. Flags
  and arguments may interleave (`tool a.mp4 --output=o b.mp4`); everything
  after `--` is an argument.
  """
  prog = prog or os.path.basename(sys.argv[0] or "avself")
  argv = list(sys.argv[1:] if argv is None else argv)
  if any(a in ("-h", "--help", "-help", "--helpshort") for a in argv):
    print(
        doc.strip()
        + "\n\nflags:\n"
        + flag_values.get_help(include_special_flags=False)
    )
    raise SystemExit(0)
  flag_values.unparse_flags()  # an earlier in-process call's values go
  try:
    rest = flag_values([prog] + argv)
  except flags.Error as e:  # several missing flags: one line each, joined
    raise SystemExit(f"{prog}: {'; '.join(str(e).splitlines())}") from None
  return flag_values, list(rest[1:])
