r"""Contrastive (InfoNCE) vs binary AVC (AVE-Net) at equal steps and examples.

Both runs train AVE-Net's towers on the synthetic world with the same batch
size, steps, optimiser and seed, so they see the same number of frames and
1 s sounds (the binary task pairs half of them with another video's sound; the
contrastive one contrasts each with the B - 1 others in the batch). Every
`--eval_every` steps the same retrieval evaluator scores both: nDCG@30 and
recall in four directions, and a logistic-regression probe on the frozen
128-D embeddings for the world's 10 classes, beside a random-init network.
Prints the curves and the answer to "does contrastive reach binary's final
probe accuracy in at most half the steps?", and writes WORKDIR/summary.json.

  python benchmarks/contrastive_vs_binary.py --workdir=/tmp/cvb
  python benchmarks/contrastive_vs_binary.py --workdir=/tmp/cvb --size=demo --steps=600

--size=tiny (default): width 1/8, 32x32 crops, 32x49 log-mel, on the demo's
300-clip world stored at shorter side 40 (minutes on 2 CPU cores).
--size=demo: the configs' own sizes (width 1/4, 64x64, 64x98).
Add --methods=binary,infonce,sigmoid,crossmodal for the other objectives, and
--linear_probe for the project's standard probe too (evaluators/linear_probe.py:
SVM on the trunks' transfer features, clip accuracy) at every evaluation.
Checkpoints are kept at every evaluation, so `python -m avself.evaluate
--workdir=WORKDIR/METHOD --step=N` can score any point of the curves later.
"""

import json
import os
import sys
import time

from absl import flags
import ml_collections

from avself import cli_flags

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIGS = {
    "binary": ("avenet_synthetic.py", None),
    "infonce": ("contrastive_synthetic.py", None),
    "sigmoid": ("contrastive_synthetic.py", "sigmoid"),
    "crossmodal": ("crossmodal_synthetic.py", None),
}
CURVES = (
    "retrieval/probe/audio_accuracy",
    "retrieval/probe/vision_accuracy",
    "audio_probe/accuracy",
    "vision_probe/accuracy",
    "retrieval/audio_to_image/ndcg@30",
    "retrieval/image_to_audio/ndcg@30",
    "retrieval/audio_to_audio/ndcg@30",
    "retrieval/image_to_image/ndcg@30",
)
PROBES = (
    "retrieval/probe/audio_accuracy",
    "retrieval/probe/vision_accuracy",
    "audio_probe/accuracy",
    "vision_probe/accuracy",
)


def load_config(method: str):
  """The method's config file, as `--config=configs/FILE[:variant]` would load it."""
  name, variant = _CONFIGS[method]
  from avself import config_lib  # pylint: disable=g-import-not-at-top

  module = config_lib.load_file(os.path.join(_ROOT, "configs", name))
  return module.get_config(variant)


def shrink(config, size: str) -> None:
  """The `tiny` sizes of tests/tiny.py on the demo world (stored at shorter side 40)."""
  if size == "demo":
    return
  config.model.width = 0.125
  config.model.spectrogram_shape = (32, 49)
  d = config.data
  d.image_size = 32
  d.resize_shorter = 40
  d.synthetic.shorter_side = 40
  d.spectrogram.num_mel_bins = 32
  d.spectrogram.frame_step = 320


def configure(method: str, args):
  """One method's config with the shared budget."""
  config = load_config(method)
  shrink(config, args.size)
  config.seed = args.seed
  config.batch_size = args.batch_size
  config.total_steps = args.steps
  config.eval_every_steps = args.eval_every
  config.log_every_steps = min(25, args.eval_every)
  config.checkpoint.every_steps = args.eval_every
  config.checkpoint.keep = args.steps // args.eval_every + 1
  config.data.synthetic.cache_dir = args.cache_dir
  config.data.synthetic.workers = 2
  config.evals.retrieval.picture_dir = os.path.join(
      args.workdir, method, "pictures"
  )
  if "avc" in config.evals:
    config.evals.avc.num_examples = 512
  if args.linear_probe:
    for modality in ("audio", "vision"):
      config.evals[f"{modality}_probe"] = ml_collections.ConfigDict(
          dict(
              type="linear_probe",
              modality=modality,
              source="records",
              random_init=True,
          )
      )
  return config


def scalars(workdir: str, prefix: str = "") -> dict:
  """`{tag: [(step, value), ...]}` of the TensorBoard scalars under `prefix`."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  out: dict = {}
  for name in sorted(os.listdir(workdir)):
    if name.startswith("events.out"):
      for event in tf.compat.v1.train.summary_iterator(
          os.path.join(workdir, name)
      ):
        for v in event.summary.value:
          if not v.tag.startswith(prefix) or not v.HasField("tensor"):
            continue
          value = tf.make_ndarray(v.tensor)
          if (
              value.ndim == 0 and value.dtype.kind == "f"
          ):  # scalars, not images or text
            out.setdefault(v.tag[len(prefix) :], []).append(
                (event.step, float(value))
            )
  return {k: sorted(v) for k, v in out.items()}


def first_step_reaching(curve, target: float):
  """The first evaluated step whose value is >= target, or None."""
  return next((step for step, value in curve if value >= target), None)


def report(curves: dict, methods: list, steps: int) -> dict:
  """Prints the curves and the comparison; returns the summary."""
  summary = {"curves": curves}
  for tag in CURVES:
    evaluated = sorted({s for m in methods for s, _ in curves[m].get(tag, [])})
    if not evaluated:
      continue
    randoms = [
        curves[m].get(_random(tag), [(0, float("nan"))])[-1][1] for m in methods
    ]
    print(
        f"\n{tag}  (random init: "
        + ", ".join(f"{m} {r:.3f}" for m, r in zip(methods, randoms))
        + ")"
    )
    print("step    " + "".join(f"{m:>12}" for m in methods))
    for step in evaluated:
      row = [
          dict(curves[m].get(tag, [])).get(step, float("nan")) for m in methods
      ]
      print(f"{step:<8}" + "".join(f"{v:12.3f}" for v in row))
  if "binary" in methods and "infonce" in methods:
    for tag in PROBES:
      if tag not in curves["binary"] or tag not in curves["infonce"]:
        continue
      target = curves["binary"][tag][-1][1]
      reached = first_step_reaching(curves["infonce"][tag], target)
      verdict = reached is not None and reached <= steps // 2
      summary[f"{tag}:binary_final"] = target
      summary[f"{tag}:infonce_first_step_reaching_it"] = reached
      summary[f"{tag}:infonce_within_half_the_steps"] = verdict
      print(
          f"\n{tag}: binary final {target:.3f}; InfoNCE first reaches it at step "
          f"{reached} -> within half the steps ({steps // 2}): {verdict}"
      )
  return summary


def _random(tag: str) -> str:
  head, _, metric = tag.rpartition("/")
  return f"{head}/random_init_{metric}"


FLAGS = flags.FlagValues()
flags.DEFINE_string("workdir", None, "one folder per method", flag_values=FLAGS)
flags.DEFINE_string(
    "methods", "binary,infonce", "comma-separated methods", flag_values=FLAGS
)
flags.DEFINE_enum(
    "size", "tiny", ("tiny", "demo"), "model and world size", flag_values=FLAGS
)
flags.DEFINE_integer("steps", 600, "training steps", flag_values=FLAGS)
flags.DEFINE_integer(
    "eval_every", 100, "steps between evals", flag_values=FLAGS
)
flags.DEFINE_integer("batch_size", 32, "examples per batch", flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "training seed", flag_values=FLAGS)
flags.DEFINE_string(
    "cache_dir",
    "",
    "synthetic world cache ('' = ~/.cache/avself)",
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "linear_probe",
    False,
    "also run evaluators/linear_probe.py (audio, vision) at every eval",
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "report_only", False, "re-read finished runs", flag_values=FLAGS
)
flags.mark_flag_as_required("workdir", flag_values=FLAGS)


def main(argv=None):
  args = cli_flags.parse(FLAGS, argv, __doc__, "contrastive_vs_binary.py")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  tf.config.set_visible_devices([], "GPU")
  from avself import train  # pylint: disable=g-import-not-at-top

  methods = args.methods.split(",")
  curves, seconds = {}, {}
  for method in methods:
    workdir = os.path.join(args.workdir, method)
    if not args.report_only:
      t0 = time.time()
      final = train.train_and_evaluate(configure(method, args), workdir)
      seconds[method] = time.time() - t0
      print(
          f"{method}: {seconds[method]:.0f} s, final {json.dumps(final, sort_keys=True)}",
          flush=True,
      )
    curves[method] = scalars(workdir)
  summary = report(curves, methods, args.steps)
  summary.update(args=args.flag_values_dict(), seconds=seconds)
  with open(os.path.join(args.workdir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1, sort_keys=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
