"""The inputs of per-file commands (`avself.embed`, `avself.localize`).

Every file is checked to exist before a checkpoint loads; outputs get unique
names (under `--output` they mirror the input folders below the inputs'
common folder, so `a/x.mp4` and `b/x.mp4` write `OUT/a/x.npz` and
`OUT/b/x.npz`); a file that fails is skipped, the others are still done, and
the failures are listed at the end with exit status 1.
"""

import collections
import os
import sys
from typing import Callable, Sequence


def check_exist(paths: Sequence[str], prog: str) -> list[str]:
  """The paths without repeats; exits with one line if any is missing."""
  missing = [p for p in paths if not os.path.isfile(p)]
  if missing:
    raise SystemExit(f"{prog}: error: no such file: {', '.join(missing)}")
  return list(dict.fromkeys(paths))


def output_stems(paths: Sequence[str], prog: str) -> dict[str, str]:
  """{path: output name without extension}, unique; exits with one line on a clash.

  The name is the path below the inputs' common folder, less its extension:
  `x` for files of one folder. Two inputs that differ only by extension
  (`x.mp4`, `x.wav`) would still write the same file: refused up front.
  """
  absolute = {p: os.path.abspath(p) for p in paths}
  if not absolute:
    return {}
  root = os.path.commonpath([os.path.dirname(a) for a in absolute.values()])
  stems = {
      p: os.path.splitext(os.path.relpath(a, root))[0]
      for p, a in absolute.items()
  }
  by_stem = collections.defaultdict(list)
  for path, stem in stems.items():
    by_stem[stem].append(path)
  clashes = [group for group in by_stem.values() if len(group) > 1]
  if clashes:
    raise SystemExit(
        f"{prog}: error: {' and '.join(clashes[0])} would write the same "
        "output; rename one or run them separately"
    )
  return stems


def for_each(
    paths: Sequence[str], fn: Callable, prog: str
) -> tuple[list, list[str]]:
  """fn(path) for every path; a failure is reported and the next file goes on.

  Returns (results, failed paths). Any exception counts as that file's
  failure (a decoder's, a too-short input's), so one bad file never stops
  the files after it.
  """
  results, failed = [], []
  for path in paths:
    try:
      results.append(fn(path))
    except Exception as e:  # pylint: disable=broad-except  # One file's failure.
      detail = " ".join(str(e).split())[:300]
      print(
          f"{prog}: skipped {path}: {type(e).__name__}: {detail}",
          file=sys.stderr,
      )
      failed.append(path)
  return results, failed


def exit_if_failed(failed: Sequence[str], total: int, prog: str) -> None:
  """Exits with status 1 and one line listing the files that failed."""
  if failed:
    raise SystemExit(
        f"{prog}: {len(failed)} of {total} files failed (see above): "
        + ", ".join(failed)
    )
