r"""Full-size L3-Net training throughput, FLOP rate, matmul-peak ratio, memory.

Runs the real train step (`avself.train.train_step`: forward, backward, Adam)
of full-size L3-Net (224x224 frames, 257x199 spectrograms) on whatever
devices JAX sees, one batch size per subprocess so peak memory is per size:

  python benchmarks/train_throughput.py                      # batch 16 and 64
  python benchmarks/train_throughput.py --batch_sizes=16 --steps=10
  python benchmarks/train_throughput.py --dtype=bfloat16     # GPU/TPU

Prints one line per batch size and a JSON summary. The matmul peak is the
best float32 (or --dtype) GEMM rate measured in the same process, so the
ratio is a hardware-relative utilisation (MFU-like) figure.
"""

import json
import os
import resource
import subprocess
import sys
import time

from absl import flags

from avself import cli_flags


def matmul_peak(dtype: str, n: int = 2048, reps: int = 10) -> float:
  """Best GFLOP/s of an n x n x n matmul on the default device."""
  import jax
  import jax.numpy as jnp

  a = jnp.ones((n, n), dtype)
  f = jax.jit(lambda x, y: x @ y)
  f(a, a).block_until_ready()
  best = 0.0
  for _ in range(reps):
    t = time.perf_counter()
    f(a, a).block_until_ready()
    best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
  return best


def run_one(batch_size: int, steps: int, dtype: str, width: float) -> dict:
  """Times `steps` train steps after one compile+warm-up step."""
  import functools
  import jax
  import numpy as np
  from avself import config_lib, optimizer, sharding, train
  from avself import state as state_lib
  from avself.tasks import avc

  config = config_lib.base_config()
  config.batch_size = batch_size
  config.model.width = width
  config.model.dtype = dtype
  config.data.image_size = 224
  config.data.sample_rate = 48000
  mesh = sharding.make_mesh()
  model = avc.build_model(config)
  tx = optimizer.make_optimizer(config)
  state = state_lib.create_train_state(
      avc, model, tx, config, jax.random.key(0), mesh
  )
  rng = np.random.default_rng(0)
  batch = avc.dummy_batch(config, batch_size)
  batch = {
      k: (
          rng.standard_normal(v.shape).astype(v.dtype)
          if v.dtype == np.float32
          else rng.integers(0, 2, v.shape).astype(v.dtype)
      )
      for k, v in batch.items()
  }
  batch = sharding.to_global(batch, mesh)
  step = jax.jit(
      functools.partial(
          train.train_step, task=avc, model=model, tx=tx, skip_nonfinite=False
      ),
      in_shardings=(
          sharding.replicated(mesh),
          sharding.batch_sharding(mesh),
          sharding.replicated(mesh),
      ),
      out_shardings=(sharding.replicated(mesh), sharding.replicated(mesh)),
      donate_argnums=(0,),
  )
  key = jax.random.key(1)
  flops = train.model_flops(
      functools.partial(
          train.train_step, task=avc, model=model, tx=tx, skip_nonfinite=False
      ),
      state,
      batch,
      key,
  )
  t0 = time.perf_counter()
  compiled = step.lower(state, batch, key).compile()
  compile_s = time.perf_counter() - t0
  mem = compiled.memory_analysis()
  temp_bytes = (
      getattr(mem, "temp_size_in_bytes", None) if mem is not None else None
  )
  state, metrics = compiled(state, batch, key)  # Warm-up.
  jax.block_until_ready(metrics)
  t0 = time.perf_counter()
  for _ in range(steps):
    state, metrics = compiled(state, batch, key)
  jax.block_until_ready(metrics)
  seconds = time.perf_counter() - t0
  peak = matmul_peak(dtype)
  gflops = flops * steps / seconds / 1e9 if flops else None
  return {
      "batch_size": batch_size,
      "dtype": dtype,
      "device": str(jax.devices()[0].device_kind),
      "num_devices": jax.device_count(),
      "examples_per_sec": batch_size * steps / seconds,
      "step_seconds": seconds / steps,
      "compile_seconds": compile_s,
      "gflop_per_step": flops / 1e9 if flops else None,
      "achieved_gflops": gflops,
      "matmul_peak_gflops": peak,
      "ratio_to_matmul_peak": gflops / peak if gflops else None,
      "xla_temp_gib": temp_bytes / 2**30 if temp_bytes else None,
      "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
      / 2**20,
      "loss": float(metrics["loss"]),
  }


FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "batch_sizes", "16,64", "comma-separated batch sizes", flag_values=FLAGS
)
flags.DEFINE_integer(
    "steps", 5, "timed steps per batch size", flag_values=FLAGS
)
flags.DEFINE_string("dtype", "float32", "compute dtype", flag_values=FLAGS)
flags.DEFINE_float("width", 1.0, "L3 width multiplier", flag_values=FLAGS)
flags.DEFINE_integer(
    "one",
    0,
    "internal: measure this one batch size in this process",
    flag_values=FLAGS,
)


def main(argv=None):
  args = cli_flags.parse(FLAGS, argv, __doc__, "train_throughput.py")
  if args.one:
    print(
        "RESULT "
        + json.dumps(run_one(args.one, args.steps, args.dtype, args.width))
    )
    return
  results = []
  for bs in [int(b) for b in args.batch_sizes.split(",")]:
    cmd = [
        sys.executable,
        __file__,
        f"--one={bs}",
        f"--steps={args.steps}",
        f"--dtype={args.dtype}",
        f"--width={args.width}",
    ]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode or not lines:
      print(
          f"batch {bs}: failed (exit {proc.returncode})\n{proc.stderr[-3000:]}"
      )
      continue
    r = json.loads(lines[-1][len("RESULT ") :])
    results.append(r)
    fmt = lambda v, f: "n/a" if v is None else format(v, f)
    print(
        f"L3 full-size batch {bs} {r['dtype']} on {r['num_devices']}x {r['device']}: "
        f"{r['examples_per_sec']:.2f} examples/s, "
        f"{fmt(r['achieved_gflops'], '.1f')} GFLOP/s "
        f"({fmt(r['ratio_to_matmul_peak'], '.2f')} of the {r['matmul_peak_gflops']:.1f} "
        f"GFLOP/s matmul peak), peak RSS {r['peak_rss_gib']:.1f} GiB, "
        f"XLA temp {fmt(r['xla_temp_gib'], '.1f')} GiB"
    )
  print(json.dumps(results, indent=1))


if __name__ == "__main__":
  main()
