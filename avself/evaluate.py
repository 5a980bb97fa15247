r"""Evaluates a checkpoint: `python -m avself.evaluate --workdir=DIR [--config=...] [--step=N]`.

    python -m avself.evaluate --workdir=/tmp/l3_synthetic \
        --config=configs/eval/probe_synthetic.py

Restores the checkpoint (latest, or `--step`) with the model config stored in
it, runs the evaluators that the eval config names (without `--config`: the
training config's own `evals`), prints a table, and writes
`DIR/eval/results.json` and TensorBoard summaries under `DIR/eval`.

An eval config (`configs/eval/*.py`) is a ConfigDict whose `evals` replace the
training config's; any other key (e.g. `data.path`, `batch_size`) overrides the
stored value unless it is None, so a checkpoint can be scored on other
records. Fields can be set from the command line as in training:
`--config.evals.audio_probe.C=0.1`, `--config.data.path=/data/other_records`.
"""

import copy
import os
from typing import Optional

from absl import app
from absl import flags
from absl import logging
import ml_collections
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config",
    None,
    "Eval config file (configs/eval/*.py); default: the training config's evals.",
)
flags.DEFINE_string("workdir", None, "Training workdir (holds checkpoints/).")
flags.DEFINE_integer(
    "step", None, "Checkpoint step to evaluate (default: latest)."
)
flags.DEFINE_integer("num_cpu_devices", None, "Fake CPU devices (testing).")

EVAL_DIR = "eval"


def _merge(base: dict, override: dict) -> dict:
  """`base` with `override`'s values, recursively (dicts merge, None keeps base's value)."""
  out = copy.deepcopy(base)
  for key, value in override.items():
    if value is None:
      continue
    if isinstance(value, dict) and isinstance(out.get(key), dict):
      out[key] = _merge(out[key], value)
    else:
      out[key] = copy.deepcopy(value)
  return out


def with_eval_config(
    config: ml_collections.ConfigDict,
    eval_config: Optional[ml_collections.ConfigDict],
) -> ml_collections.ConfigDict:
  """The training config with the eval config's `evals` and overrides.

  Data options added to the pipeline after the checkpoint was written take
  their defaults, so older checkpoints still evaluate.
  """
  from avself.data import pipeline  # pylint: disable=g-import-not-at-top

  merged = config.to_dict()
  merged["data"] = _merge(
      pipeline.default_data_config().to_dict(), merged["data"]
  )
  override = eval_config.to_dict() if eval_config is not None else {}
  if "evals" in override:
    merged["evals"] = override.pop("evals")
  return ml_collections.ConfigDict(_merge(merged, override))


def format_table(results: dict) -> str:
  """A two-column text table of scalar results, sorted by name."""
  rows = [
      (k, f"{v:.4f}" if isinstance(v, float) else str(v))
      for k, v in sorted(results.items())
  ]
  width = max([len("metric")] + [len(k) for k, _ in rows])
  lines = [f"{'metric':<{width}}  value", f"{'-' * width}  {'-' * 10}"]
  return "\n".join(lines + [f"{k:<{width}}  {v}" for k, v in rows])


# What each of the probe's split counts (`probe.check_split`) means.
_SPLIT_WARNINGS = {
    "unseen_class_test_clips": (
        "test clips of classes with no training clips (always mispredicted)"
    ),
    "classes_short_of_labels": (
        "classes with fewer training clips than train_clips_per_class asks for"
    ),
}


def split_warnings(results: dict) -> list[str]:
  """One line per nonzero split count of a probe (`probe.check_split`)."""
  lines = []
  for key, value in sorted(results.items()):
    name, _, metric = key.rpartition("/")
    if metric in _SPLIT_WARNINGS and value:
      lines.append(f"WARNING {name}: {int(value)} {_SPLIT_WARNINGS[metric]}")
  return lines


def evaluate(
    workdir: str,
    eval_config: Optional[ml_collections.ConfigDict] = None,
    step: Optional[int] = None,
) -> dict:
  """Runs the evaluators on a checkpoint; returns and writes {step, name/metric: value}."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from clu import metric_writers  # pylint: disable=g-import-not-at-top
  from avself import config_lib  # pylint: disable=g-import-not-at-top
  from avself import sharding  # pylint: disable=g-import-not-at-top
  from avself import state as state_lib  # pylint: disable=g-import-not-at-top
  from avself import train  # pylint: disable=g-import-not-at-top

  mesh = sharding.make_mesh()
  config, task, model, state = state_lib.restore(workdir, step, mesh)
  config = config_lib.resolve_data(with_eval_config(config, eval_config))
  if not config.get("evals"):
    raise ValueError(
        "No evaluators: the training config has no `evals`; pass "
        "--config=configs/eval/NAME.py"
    )
  step = int(state.step)
  logging.info(
      "Evaluating step %d of %s: %s", step, workdir, list(config.evals.keys())
  )
  evaluators = train.build_evaluators(config, task=task, model=model, mesh=mesh)
  eval_dir = os.path.join(workdir, EVAL_DIR)
  os.makedirs(eval_dir, exist_ok=True)
  writer = metric_writers.create_default_writer(
      eval_dir, just_logging=jax.process_index() > 0
  )
  results = train.run_evaluators(evaluators, state, step, writer)
  writer.flush()
  final = {
      "step": step,
      **{k: float(v) for k, v in results.items() if np.ndim(v) == 0},
  }
  train.write_results(eval_dir, final)
  return final


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not FLAGS.workdir:
    raise app.UsageError("--workdir is required")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  tf.config.set_visible_devices([], "GPU")  # tf.data stays on the host
  import jax  # pylint: disable=g-import-not-at-top

  if FLAGS.num_cpu_devices:
    jax.config.update("jax_num_cpu_devices", FLAGS.num_cpu_devices)
  results = evaluate(FLAGS.workdir, FLAGS.config, FLAGS.step)
  if jax.process_index() == 0:
    print(
        f"Evaluation of {FLAGS.workdir} at step {results['step']} "
        f"({os.path.join(FLAGS.workdir, EVAL_DIR, 'results.json')}):"
    )
    print(format_table(results))
    for line in split_warnings(results):
      print(line)


if __name__ == "__main__":
  app.run(main)
