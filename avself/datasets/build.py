"""Builds a probe dataset from its download: `python -m avself.datasets.build`.

    python -m avself.datasets.build --name=esc50 \
        --manual_dir=/data/downloads/esc50 --data_dir=/data/tfds
    python -m avself.datasets.build --name=kinetics_sounds/fps1 ...
    python -m avself.datasets.build --name=esc50 --fake --manual_dir=/tmp/fake --data_dir=/tmp/tfds

`--fake` first writes a tiny fake download into manual_dir (avself.datasets.fixtures),
to try the whole path without the real data.
"""

import argparse
import json
import sys
from typing import Optional, Sequence

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


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
  """Command-line flags."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument(
      "--name",
      required=True,
      help="esc50, dcase2013_scenes, kinetics_sounds[/fps8|/fps1]",
  )
  parser.add_argument(
      "--manual_dir", required=True, help="the download (see docs/datasets.md)"
  )
  parser.add_argument(
      "--data_dir", required=True, help="where TFDS writes the built dataset"
  )
  parser.add_argument(
      "--fake", action="store_true", help="write a fake download first"
  )
  return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
  """Builds the dataset and prints (and returns) its split sizes and skip counts."""
  args = parse_args(argv)
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
