r"""Builds a probe dataset from its download: `python -m avself.datasets.build`.

    python -m avself.datasets.build --name=esc50 \
        --manual_dir=/data/downloads/esc50 --data_dir=/data/tfds
    python -m avself.datasets.build --name=kinetics_sounds/fps1 ...
    python -m avself.datasets.build --name=esc50 --fake --manual_dir=/tmp/fake --data_dir=/tmp/tfds

`--fake` first writes a tiny fake download into manual_dir (avself.datasets.fixtures),
to try the whole path without the real data.
"""

import json
import sys
from typing import Optional, Sequence

from absl import flags

from avself import cli_flags

FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "name",
    None,
    "esc50, dcase2013_scenes, kinetics_sounds[/fps8|/fps1]",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "manual_dir",
    None,
    "the download (see docs/datasets.md)",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "data_dir", None, "where TFDS writes the built dataset", flag_values=FLAGS
)
flags.DEFINE_bool(
    "fake", False, "write a fake download first", flag_values=FLAGS
)
flags.mark_flags_as_required(
    ["name", "manual_dir", "data_dir"], flag_values=FLAGS
)

_FAKES = {  # name -> fixture writer arguments small enough for a laptop
    "esc50": (
        "make_esc50",
        dict(clips_per_class=5, num_classes=10, seconds=1.0),
    ),
    "dcase2013_scenes": (
        "make_dcase2013",
        dict(seconds=2.0, test_clips_per_class=2),
    ),
    "kinetics_sounds": (
        "make_kinetics_sounds",
        dict(clips_per_class=2, num_classes=5),
    ),
}


def main(argv: Optional[Sequence[str]] = None) -> dict:
  """Builds the dataset and prints (and returns) its split sizes and skip counts."""
  args = cli_flags.parse(FLAGS, argv, __doc__, "avself.datasets.build")
  from avself import datasets  # pylint: disable=g-import-not-at-top  (TF import is slow)
  from avself.datasets import fixtures  # pylint: disable=g-import-not-at-top

  if args.fake:
    writer, kwargs = _FAKES[args.name.split("/")[0]]
    getattr(fixtures, writer)(args.manual_dir, **kwargs)
  builder = datasets.get_builder(args.name, args.data_dir, args.manual_dir)
  summary = {
      "data_dir": str(builder.data_dir),
      "splits": {k: v.num_examples for k, v in builder.info.splits.items()},
      "labels": len(builder.info.features["label"].names),
  }
  if builder.info.metadata and "skipped" in builder.info.metadata:
    summary["skipped"] = builder.info.metadata["skipped"]
  print(json.dumps(summary, indent=2))
  return summary


if __name__ == "__main__":
  main(sys.argv[1:])
