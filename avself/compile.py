r"""Compiles a config's train step for a TPU slice on a machine without TPUs.

  python -m avself.compile --config=configs/l3_flickr.py --topology=v5e:4x4 \
      [--config.batch_size=512] [--output=l3_v5e.json]

The step is the one `avself.main` runs (task, model, optimiser, donated
state, the global batch sharded on `data` over every chip of the slice, the
config's compute dtype), compiled by the real TPU compiler from libtpu
(`pip install -e '.[tpu]'`) for `jax.experimental.topologies`' devices. It
prints and writes JSON: HBM per chip against the chip's capacity, FLOPs and
HBM bytes per chip per step, the roofline step time, examples/s per chip and
the MFU bound (figures in `avself/roofline.py`), and the collectives in the
compiled HLO. A step that does not fit is refused with what it needs, what
the chip has and the largest batch per chip that fits, found by compiling.
Multi-host slices (v5e:4x4 is 16 chips on 4 hosts) compile the same way: the
mesh spans every host's chips as `jax.distributed` would make it.
"""

import functools
import hashlib
import json
import os
import sys
import time

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from avself import config_lib
from avself import roofline

FLAGS = flags.FLAGS


def _define_flags() -> None:
  """The command's flags, on absl's global FLAGS only when run as a command.

  (Importing this module, as the tests do, must not claim --config, which
  avself.main and avself.evaluate define too.)
  """
  config_flags.DEFINE_config_file(
      "config", None, "Experiment config file.", lock_config=True
  )
  flags.DEFINE_string(
      "topology", None, "TPU slice, e.g. v5e:2x2, v5e:4x4, v4:2x2x2."
  )
  flags.DEFINE_string("output", None, "Also write the JSON report here.")
  flags.DEFINE_bool(
      "search_batch",
      True,
      "When the step does not fit, compile smaller batches to find the "
      "largest batch per chip that does.",
  )
  flags.DEFINE_bool(
      "digest_only",
      False,
      "Only lower the step and print its program's SHA-256 (seconds, no "
      "compilation): configs with the same digest share their report.",
  )
  flags.mark_flags_as_required(["config", "topology"])


class DoesNotFitError(RuntimeError):
  """The step needs more HBM per chip than the chip has."""


def quiet_libtpu(topology: str) -> None:
  """Tells libtpu what slice it is on, so it does not probe for hosts."""
  os.environ.setdefault(
      "TPU_ACCELERATOR_TYPE", roofline.accelerator_type(topology)
  )
  os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
  os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")
  # No chip is opened, so compilers in several processes may share libtpu.
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")


def topology_devices(topology: str) -> list:
  """The devices of a TPU slice, from libtpu, without TPUs attached."""
  from jax.experimental import topologies  # pylint: disable=g-import-not-at-top

  roofline.parse_topology(topology)  # A clear error for a bad name first.
  try:
    desc = topologies.get_topology_desc(topology_name=topology, platform="tpu")
  except RuntimeError as e:  # No libtpu, or a shape libtpu does not know.
    raise RuntimeError(
        f"cannot describe TPU topology {topology!r} ({e}); compiling for "
        "TPUs needs libtpu: pip install -e '.[tpu]'"
    ) from e
  return list(desc.devices)


def compile_step(config, devices, lower_only: bool = False):
  """(compiled train step, model FLOPs per step) of `config` over `devices`.

  Built from shapes alone: nothing is allocated or run. With `lower_only`,
  (the lowered step, None): the program XLA would compile, in seconds.
  """
  import jax  # pylint: disable=g-import-not-at-top

  from avself import optimizer  # pylint: disable=g-import-not-at-top
  from avself import sharding  # pylint: disable=g-import-not-at-top
  from avself import state as state_lib  # pylint: disable=g-import-not-at-top
  from avself import tasks  # pylint: disable=g-import-not-at-top
  from avself import train  # pylint: disable=g-import-not-at-top
  from avself.models import layers  # pylint: disable=g-import-not-at-top

  mesh = sharding.make_mesh(devices)
  if config.batch_size % len(devices):
    raise ValueError(
        f"config.batch_size={config.batch_size} is not divisible by the "
        f"{len(devices)} chips of the slice"
    )
  task = tasks.get_task(config.task)
  model = task.build_model(config)
  tx = optimizer.make_optimizer(config)

  def abstract(tree, sharding_):
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding_),
        tree,
    )

  replicated = sharding.replicated(mesh)
  rng = jax.random.key(0)
  # The target's own conv gradient (the CPU loop of taps is for CPUs).
  with layers.plain_conv_gradients():
    state = abstract(
        jax.eval_shape(
            state_lib.state_initializer(task, model, tx, config), rng
        ),
        replicated,
    )
    batch = abstract(
        jax.eval_shape(lambda: task.dummy_batch(config, config.batch_size)),
        sharding.batch_sharding(mesh),
    )
    step = train.jit_train_step(task, model, tx, config, mesh)
    lowered = step.lower(state, batch, abstract(rng, replicated))
    if lower_only:
      return lowered, None
    compiled = lowered.compile()
  # The model's FLOPs: the step before partitioning and padding, counted by
  # XLA's HLO cost analysis on this machine.
  unsharded = functools.partial(abstract, sharding_=None)
  model_flops = train.model_flops(
      train.model_step(task, tx, config, mesh),
      unsharded(state),
      unsharded(batch),
      rng,
  )
  return compiled, model_flops or 0.0


def hbm_per_chip(compiled, cores_per_chip: int) -> dict:
  """HBM a compiled step holds on one chip: each of its cores' share, summed."""
  mem = compiled.memory_analysis()
  hbm = {
      "arguments": mem.argument_size_in_bytes,
      "outputs": mem.output_size_in_bytes,
      "aliased": mem.alias_size_in_bytes,  # Donated: outputs reuse arguments.
      "temp": mem.temp_size_in_bytes,
      "code": mem.generated_code_size_in_bytes,
  }
  hbm["total"] = (
      hbm["arguments"]
      + hbm["outputs"]
      - hbm["aliased"]
      + hbm["temp"]
      + hbm["code"]
  )
  return {k: v * cores_per_chip for k, v in hbm.items()}


def report(
    config, topology: str, devices, compiled, model_flops: float, seconds: float
) -> dict:
  """The JSON report of one compiled step (see the module docstring).

  libtpu describes some chips (v4) as one device per TensorCore: the
  compiled step's per-device figures are then summed over a chip's cores.
  """
  chip, chips = roofline.parse_topology(topology)
  cores = len(devices) // chips
  hbm = hbm_per_chip(compiled, cores)
  cost = roofline.cost_analysis(compiled)
  model_flops /= chips
  flops = cores * cost.get("flops", 0.0)
  bytes_accessed = cores * cost.get("bytes accessed", 0.0)
  per_chip = config.batch_size / chips
  hlo = compiled.as_text()
  return {
      "config": None,  # Filled by the caller, which has the file's name.
      "topology": topology,
      "chips": chips,
      "devices_per_chip": cores,
      "hosts": len({d.process_index for d in devices}),
      "global_batch": config.batch_size,
      "batch_per_chip": per_chip,
      "dtype": config.model.get("dtype", "float32"),
      "pack_columns": config.model.get("pack_columns", "auto"),
      "compile_s": round(seconds, 1),
      "hbm_bytes_per_chip": hbm,
      "hbm_gib_per_chip": hbm["total"] / roofline.GIB,
      "chip_hbm_gib": chip.hbm_bytes / roofline.GIB,
      "fits": hbm["total"] <= chip.hbm_bytes,
      "flops_per_chip": flops,
      "model_flops_per_chip": model_flops,
      "hbm_traffic_bytes_per_chip": bytes_accessed,
      **roofline.roofline(chip, flops, bytes_accessed, model_flops, per_chip),
      "collectives": roofline.collectives(hlo),
      # The compiled program is one device's: summed over a chip's cores.
      "traffic_breakdown": _scaled(roofline.traffic_breakdown(hlo), cores),
  }


def _scaled(tree, factor: int):
  """Every number in a nested dict of numbers times `factor`."""
  if isinstance(tree, dict):
    return {k: _scaled(v, factor) for k, v in tree.items()}
  return tree * factor


def largest_fitting_batch(config, devices, topology: str) -> int:
  """Largest batch per chip that fits, by compiling halving, then bisecting."""
  chip, chips = roofline.parse_topology(topology)

  def fits(per_chip: int) -> bool:
    trial = config.copy_and_resolve_references()
    trial.batch_size = per_chip * chips
    compiled, _ = compile_step(trial, devices)
    need = hbm_per_chip(compiled, len(devices) // chips)["total"]
    logging.info("batch per chip %d: %.2f GiB", per_chip, need / roofline.GIB)
    return need <= chip.hbm_bytes

  high = config.batch_size // chips  # Known not to fit.
  low = high // 2
  while low >= 1 and not fits(low):
    high, low = low, low // 2
  if low < 1:
    return 0
  while high - low > 1:
    mid = (low + high) // 2
    low, high = (mid, high) if fits(mid) else (low, mid)
  return low


def program_digest(config, topology: str) -> str:
  """SHA-256 of the step's lowered program for `topology` (no compilation).

  Two configs with the same digest compile to the same executable, so they
  share their report.
  """
  devices = topology_devices(topology)
  lowered, _ = compile_step(_for_tpu(config), devices, lower_only=True)
  return hashlib.sha256(lowered.as_text().encode()).hexdigest()


def _for_tpu(config):
  """`config` with its "auto" model options resolved as on a TPU."""
  config = config.copy_and_resolve_references()
  with config.unlocked():
    config.model.dtype = config_lib.compute_dtype(config.model, "tpu").name
    packs = config_lib.packs_columns(config.model, "tpu")
    config.model.pack_columns = "on" if packs else "off"
  return config


def run(config, topology: str, search_batch: bool = True) -> dict:
  """Compiles `config` for `topology` and returns the report; refuses misfits."""
  devices = topology_devices(topology)
  config = _for_tpu(config)
  t0 = time.time()
  compiled, model_flops = compile_step(config, devices)
  result = report(
      config, topology, devices, compiled, model_flops, time.time() - t0
  )
  if not result["fits"]:
    best = (
        largest_fitting_batch(config, devices, topology)
        if search_batch
        else None
    )
    raise DoesNotFitError(
        f"{topology}: the step needs {result['hbm_gib_per_chip']:.2f} GiB of "
        f"HBM per chip at batch {result['batch_per_chip']:g} per chip; a "
        f"{topology.split(':')[0]} chip has {result['chip_hbm_gib']:.0f} GiB"
        + (
            f"; the largest batch per chip that fits is {best}"
            if best is not None
            else ""
        )
    )
  return result


def _summary(r: dict) -> str:
  ms = 1e3 * r["roofline_step_s"]
  return (
      f"{r['topology']} ({r['chips']} chips, {r['hosts']} hosts), global batch "
      f"{r['global_batch']}, {r['dtype']}: {r['hbm_gib_per_chip']:.2f} of "
      f"{r['chip_hbm_gib']:.0f} GiB HBM per chip; "
      f"{r['flops_per_chip'] / 1e9:,.0f} GFLOP and "
      f"{r['hbm_traffic_bytes_per_chip'] / 1e9:,.1f} GB per chip per step "
      f"({r['bound']}-bound); roofline {ms:.1f} ms/step, "
      f"{r['examples_per_sec_per_chip']:,.0f} examples/s per chip, "
      f"MFU <= {r['mfu_bound']:.2f}"
  )


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if FLAGS.digest_only:
    print(program_digest(FLAGS.config, FLAGS.topology))
    return
  try:
    result = run(FLAGS.config, FLAGS.topology, FLAGS.search_batch)
  except (DoesNotFitError, ValueError, RuntimeError) as e:
    sys.exit(f"avself.compile: {e}")
  result["config"] = config_flags.get_config_filename(FLAGS["config"])
  text = json.dumps(result, indent=2, sort_keys=True)
  if FLAGS.output:
    with open(FLAGS.output, "w") as f:
      f.write(text + "\n")
  print(text)
  print(_summary(result))


def _entry():
  # Before jax is imported: libtpu reads these when it loads.
  for arg in sys.argv:
    if arg.startswith("--topology="):
      try:
        quiet_libtpu(arg.split("=", 1)[1])
      except ValueError as e:
        sys.exit(f"avself.compile: {e}")
  _define_flags()
  app.run(main)


if __name__ == "__main__":
  _entry()
