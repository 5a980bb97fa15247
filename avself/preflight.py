"""Checks of the records and the evaluations that run before step 1.

A run that would fail at its first evaluation, or read records made for
another config, should fail before it trains for hours: every message here
names the folder, the config key and the fix. The train loop calls `check`
first and `check_evaluators` once the evaluators are built.
"""

import os
import re

from avself import config_lib

_SHARD = re.compile(r"(.+)\.tfrecord-[0-9]+-of-[0-9]+")


def check(config) -> None:
  """Raises ConfigError unless the records serve training and every evaluation."""
  from avself.data import records  # pylint: disable=g-import-not-at-top

  path = config.data.path
  manifest = records.load_manifest(path)
  check_sample_rate(config, manifest)
  available = splits_on_disk(path)
  train = config.data.train_split
  if train not in available or _num_records(manifest, train) == 0:
    raise config_lib.ConfigError(
        f"no records to train on: split {train!r} of config.data.path="
        f"{path} {_what_is_there(path, available, manifest)}. Run "
        "`python -m avself.data.prepare --videos=... --output=...` into it "
        "(its report says why videos were skipped)"
    )
  for name, eval_config in (config.get("evals") or {}).items():
    split = eval_split(config, eval_config)
    if split is None:
      continue
    if split not in available or _num_records(manifest, split) == 0:
      raise config_lib.ConfigError(
          f"config.evals.{name} evaluates split {split!r}, which "
          f"{path} does not have ({_what_is_there(path, available, manifest)})."
          " Hold out a test split with `python -m avself.data.prepare "
          "--test_fraction=0.1` (or --labels=CSV), point "
          "--config.data.eval_split at a split it has, or leave "
          f"config.evals.{name} out of the config"
      )


def check_evaluators(evaluators: dict) -> None:
  """Each evaluator's own `check()` (e.g. one full batch of its split)."""
  for name, evaluator in evaluators.items():
    if hasattr(evaluator, "check"):
      try:
        evaluator.check()
      except config_lib.ConfigError as e:
        raise config_lib.ConfigError(f"config.evals.{name}: {e}") from e


def check_sample_rate(config, manifest) -> None:
  """The records' audio rate (manifest.json) must be config.data.sample_rate."""
  if not manifest or "sample_rate" not in manifest:
    return
  rate = int(manifest["sample_rate"])
  if rate != int(config.data.sample_rate):
    raise config_lib.ConfigError(
        f"the records in {config.data.path} hold audio at {rate} Hz but "
        f"config.data.sample_rate={config.data.sample_rate}: set "
        f"--config.data.sample_rate={rate} (and a spectrogram for it), or "
        "prepare the videos again with --sample_rate="
        f"{config.data.sample_rate}"
    )


def eval_split(config, eval_config):
  """The records split an evaluation scores, or None (TFDS, no records)."""
  if eval_config.get("source", "records") != "records":
    return None
  return (
      eval_config.get("split")
      or eval_config.get("test_split")
      or config.data.eval_split
  )


def splits_on_disk(path: str) -> set[str]:
  """Names of the splits with record shards (`{split}.tfrecord-*`) in `path`."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  if not tf.io.gfile.exists(path):
    return set()
  names = [_SHARD.fullmatch(n) for n in tf.io.gfile.listdir(path)]
  return {m.group(1) for m in names if m}


def _num_records(manifest, split: str):
  """Records of `split` by the manifest (None: no manifest, not known)."""
  if not manifest:
    return None
  return manifest.get("splits", {}).get(split, {}).get("num_records", 0)


def _what_is_there(path: str, available: set, manifest) -> str:
  """'holds splits [...]', or why there is nothing."""
  if not os.path.isdir(path):
    return "does not exist"
  text = (
      f"holds split(s) {sorted(available)}" if available else "holds no shards"
  )
  if manifest and manifest.get("summary"):
    text += f"; its manifest.json says: {manifest['summary']}"
  return text
