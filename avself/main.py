"""Entry point: `python -m avself.main --config=configs/X.py --workdir=DIR`.

The same command runs on a laptop, on 8 devices and on a pod: only flags
change. Multi-host runs call `jax.distributed.initialize` (automatically on
Cloud TPU and SLURM, or from the explicit flags below).
"""

import json
import os
import re
import sys

# Before anything imports TensorFlow (loading a config does): its C++ INFO
# lines are not a run's business.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")


def _import_tensorflow_quietly() -> None:
  """Imports TensorFlow with file descriptor 2 on /dev/null.

  At import its C++ side writes start-up banners (oneDNN, CPU features, "All
  log messages before absl::InitializeLog() ...") straight to stderr, past
  TF_CPP_MIN_LOG_LEVEL. An import error still raises as usual.
  """
  saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  try:
    import tensorflow  # noqa: F401  # pylint: disable=g-import-not-at-top,unused-import
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)


_import_tensorflow_quietly()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from avself import console  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Experiment config file.", lock_config=True
)
flags.DEFINE_string(
    "workdir", None, "Checkpoints, summaries and results.json go here."
)
flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0 (multi-host)."
)
flags.DEFINE_integer("num_processes", None, "Number of processes (multi-host).")
flags.DEFINE_integer("process_id", None, "This process's index (multi-host).")
flags.DEFINE_integer(
    "num_cpu_devices", None, "Fake CPU devices per process (testing)."
)
flags.DEFINE_enum(
    "distributed",
    "auto",
    ["auto", "on", "off"],
    "auto: initialise jax.distributed on SLURM / Cloud TPU pods or when "
    "--coordinator_address is given.",
)
flags.DEFINE_integer(
    "initialization_timeout", 300, "Seconds to wait for every process to join."
)
flags.DEFINE_integer(
    "heartbeat_timeout",
    100,
    "Seconds without a heartbeat before a lost host fails the job.",
)
flags.DEFINE_bool(
    "library_logs",
    False,
    "Also print the INFO lines of the libraries (orbax, jax, clu, tf); "
    "by default a run prints only avself's own lines and every warning.",
)
flags.mark_flags_as_required(["config", "workdir"])


def _on_cluster() -> bool:
  """True where jax.distributed can discover its peers by itself."""
  slurm = int(os.environ.get("SLURM_NTASKS", "1")) > 1
  tpu_pod = "," in os.environ.get("TPU_WORKER_HOSTNAMES", "")
  return slurm or tpu_pod


def init_distributed() -> None:
  """jax.distributed.initialize from flags, or automatically on a cluster."""
  import jax  # pylint: disable=g-import-not-at-top

  if FLAGS.num_cpu_devices:
    jax.config.update("jax_num_cpu_devices", FLAGS.num_cpu_devices)
  explicit = FLAGS.coordinator_address is not None
  if FLAGS.distributed == "off" or (
      FLAGS.distributed == "auto" and not explicit and not _on_cluster()
  ):
    return
  kwargs = {
      "initialization_timeout": FLAGS.initialization_timeout,
      "heartbeat_timeout_seconds": FLAGS.heartbeat_timeout,
  }
  if explicit:
    kwargs.update(
        coordinator_address=FLAGS.coordinator_address,
        num_processes=FLAGS.num_processes,
        process_id=FLAGS.process_id,
    )
  # Collectives between CPU devices of different processes (tests, laptops);
  # accelerator backends ignore this.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(**kwargs)
  logging.info(
      "jax.distributed: process %d of %d, %d local / %d global devices",
      jax.process_index(),
      jax.process_count(),
      jax.local_device_count(),
      jax.device_count(),
  )


def parse_flags(argv):
  """absl's flag parsing, with a bad `--config.x` override as one line."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    print(f"avself.main: error: {e}", file=sys.stderr)
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    # ml_collections raises these (with "Did you mean ...") for a key the
    # config does not have or a value of the wrong type.
    text = str(e.args[0] if e.args else e).strip("'\"")
    text = " ".join(text.replace("\\n", "\n").replace("\\'", "'").split())
    overrides = [a.split("=")[0] for a in argv[1:] if a.startswith("--config.")]
    named = re.match(r"'([^']+)'", text)
    if named:  # the override(s) that name the missing key
      overrides = [
          o for o in overrides if named.group(1) in o.split(".")
      ] or overrides
    print(
        f"avself.main: error: bad config override ({', '.join(overrides)}): "
        f"{text}",
        file=sys.stderr,
    )
  sys.exit(2)


def _exit_with_error(error: Exception) -> None:
  """Logs the traceback, waits for saves in flight, ends with the error alone.

  The message is the last line of the output: exiting normally here would
  bury it under the shutdown noise of background threads (TensorBoard
  writers, tf.data), so the process ends with os._exit once logs are flushed.
  """
  from avself import checkpoint as ckpt_lib  # pylint: disable=g-import-not-at-top

  logging.exception("The run failed:")
  ckpt_lib.finish_saves()
  logging.flush()
  sys.stdout.flush()
  print(
      f"avself.main: error: {type(error).__name__}: {error}",
      file=sys.stderr,
      flush=True,
  )
  os._exit(1)  # pylint: disable=protected-access


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # tf.data runs on the host; it must not take accelerator memory from JAX.
  tf.config.set_visible_devices([], "GPU")
  if not FLAGS.library_logs:
    console.quiet_library_logs()
  init_distributed()
  from avself import train  # pylint: disable=g-import-not-at-top

  import jax  # pylint: disable=g-import-not-at-top

  if jax.process_index() == 0:
    logging.info("%s", console.config_summary(FLAGS.config, FLAGS.workdir))
  try:
    results = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except Exception as e:  # pylint: disable=broad-except
    _exit_with_error(e)
  if jax.process_index() == 0:
    print(
        "Final results (" + os.path.join(FLAGS.workdir, "results.json") + "):"
    )
    print(json.dumps(results, indent=2, sort_keys=True))


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
