r"""What a 64-channel activation costs on a TPU, by XLA's count (no TPU needed).

  pip install -e '.[tpu]'
  python benchmarks/tpu_lane_padding.py [--topology=v5e:2x2]

Compiles single ops for one chip of the slice and prints the HBM bytes XLA's
cost analysis gives for them: an elementwise op and a 3x3 convolution on 64
and on 128 channels (a TPU keeps arrays in tiles of 128 lanes, so 64 channels
move as many bytes as 128), and the 2-group convolution that would pack two
64-channel examples into 128 channels.
"""

from absl import app
from absl import flags

flags.DEFINE_string(
    "topology", "v5e:2x2", "TPU slice whose chip to compile for."
)
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from avself import compile as compile_lib  # pylint: disable=g-import-not-at-top
  from avself import roofline  # pylint: disable=g-import-not-at-top

  compile_lib.quiet_libtpu(FLAGS.topology)
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jax.sharding import Mesh, NamedSharding, PartitionSpec  # pylint: disable=g-import-not-at-top

  devices = compile_lib.topology_devices(FLAGS.topology)
  replicated = NamedSharding(
      Mesh(np.asarray(devices[:1]), ("d",)), PartitionSpec()
  )

  def cost(fn, *shapes):
    args = [
        jax.ShapeDtypeStruct(s, jnp.bfloat16, sharding=replicated)
        for s in shapes
    ]
    c = roofline.cost_analysis(jax.jit(fn).lower(*args).compile())
    return c["bytes accessed"], c["flops"]

  def conv(groups):
    return lambda x, w: jax.lax.conv_general_dilated(
        x,
        w,
        (1, 1),
        "SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=groups,
    )

  rows = [
      ("elementwise relu(2x+1)", lambda x: jax.nn.relu(2 * x + 1), 64, None),
      ("elementwise relu(2x+1)", lambda x: jax.nn.relu(2 * x + 1), 128, None),
      ("conv 3x3", conv(1), 64, (3, 3, 64, 64)),
      ("conv 3x3", conv(1), 128, (3, 3, 128, 128)),
  ]
  print("| op | input | data in+out MB | XLA bytes MB | GFLOP |")
  print("|---|---|---|---|---|")
  for name, fn, channels, kernel in rows:
    shape = (16, 64, 64, channels)
    data = 2 * 2 * np.prod(shape) / 1e6
    nbytes, flops = cost(fn, shape, *([kernel] if kernel else []))
    print(
        f"| {name} | bf16{list(shape)} | {data:.1f} | {nbytes / 1e6:.1f} |"
        f" {flops / 1e9:.2f} |"
    )
  nbytes, flops = cost(conv(2), (8, 64, 64, 128), (3, 3, 64, 128))
  print(
      f"| conv 3x3, 2 groups (2 examples of 64 channels packed) |"
      f" bf16[8, 64, 64, 128] | {2 * 2 * 8 * 64 * 64 * 128 / 1e6:.1f} |"
      f" {nbytes / 1e6:.1f} | {flops / 1e9:.2f} |"
  )


if __name__ == "__main__":
  app.run(main)
