r"""Compiles every paper-scale config for TPU slices; prints docs/scaling.md's rows.

  pip install -e '.[tpu]'
  python benchmarks/tpu_compile_table.py [--topologies=v5e:2x2,v4:2x2x1] \
      [--dtypes=bfloat16,float32] [--configs=l3_flickr,avenet_flickr] \
      [--outdir=/tmp/avself_compile]

Each row is one `python -m avself.compile` run (its command is printed with
the row, and its JSON kept in --outdir). Full-size steps take minutes each to
compile on 2 CPU cores.
"""

import json
import os
import subprocess
import sys

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER_CONFIGS = (
    "l3_flickr",
    "l3_kinetics_sounds",
    "avenet_flickr",
    "multisensory_audioset",
    "action_ucf101",
)

flags.DEFINE_list("configs", list(PAPER_CONFIGS), "Config files in configs/.")
flags.DEFINE_list("topologies", ["v5e:2x2", "v4:2x2x1"], "TPU slices.")
flags.DEFINE_list("dtypes", ["bfloat16", "float32"], "Compute dtypes.")
flags.DEFINE_string("outdir", "/tmp/avself_compile", "JSON reports go here.")
FLAGS = flags.FLAGS


def command(config: str, topology: str, dtype: str, output: str) -> list[str]:
  return [
      sys.executable,
      "-m",
      "avself.compile",
      f"--config=configs/{config}.py",
      f"--topology={topology}",
      f"--config.model.dtype={dtype}",
      f"--output={output}",
  ]


def row(config: str, topology: str, dtype: str, result: dict) -> str:
  hbm = result["hbm_gib_per_chip"]
  return (
      f"| {config} | {topology} | {dtype} | {result['global_batch']} | "
      f"{hbm:.1f} of {result['chip_hbm_gib']:.0f} | "
      f"{result['flops_per_chip'] / 1e12:.2f} | "
      f"{result['hbm_traffic_bytes_per_chip'] / 1e9:.0f} | "
      f"{result['bound']} | {1e3 * result['roofline_step_s']:.0f} | "
      f"{result['examples_per_sec_per_chip']:,.0f} | "
      f"{result['mfu_bound']:.2f} |"
  )


def main(argv):
  del argv
  os.makedirs(FLAGS.outdir, exist_ok=True)
  print(
      "| config | topology | dtype | global batch | HBM GiB/chip | "
      "TFLOP/chip/step | GB/chip/step | bound | roofline ms | "
      "examples/s/chip | MFU bound |"
  )
  print("|---|---|---|---|---|---|---|---|---|---|---|")
  for config in FLAGS.configs:
    for topology in FLAGS.topologies:
      for dtype in FLAGS.dtypes:
        name = f"{config}_{topology.replace(':', '_')}_{dtype}.json"
        output = os.path.join(FLAGS.outdir, name)
        cmd = command(config, topology, dtype, output)
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if done.returncode:
          why = done.stderr.strip().splitlines()[-1] if done.stderr else "?"
          print(f"| {config} | {topology} | {dtype} | {why} |")
        else:
          with open(output) as f:
            print(row(config, topology, dtype, json.load(f)))
        sys.stdout.flush()


if __name__ == "__main__":
  app.run(main)
