"""Ahead-of-time compilation for TPU slices (avself.compile) and its roofline."""

import functools
import importlib.util
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tiny
from avself import compile as compile_lib
from avself import config_lib
from avself import optimizer
from avself import roofline
from avself import sharding
from avself import state as state_lib
from avself import tasks
from avself import train
from avself.models import l3
from avself.models import vgg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAVE_LIBTPU = importlib.util.find_spec("libtpu") is not None


def _l3_config(width: float):
  config = config_lib.load_file(tiny.TINY_CONFIG_FILE).get_config()
  config.model.width = width
  return config


def _model_flops(config, counted: bool = False) -> float:
  """XLA's count of the train step's FLOPs, traced on this machine.

  With `counted`, of `train.model_step`: the step the MFU figures count.
  """
  task = tasks.get_task(config.task)
  model = task.build_model(config)
  tx = optimizer.make_optimizer(config)
  rng = jax.random.key(0)
  state = jax.eval_shape(
      state_lib.state_initializer(task, model, tx, config), rng
  )
  batch = jax.eval_shape(lambda: task.dummy_batch(config, config.batch_size))
  step = functools.partial(
      train.train_step, task=task, model=model, tx=tx, skip_nonfinite=False
  )
  if counted:
    step = train.model_step(task, tx, config, sharding.make_mesh())
  return train.model_flops(step, state, batch, rng)


@pytest.mark.parametrize("width", [0.5, 1.0])
def test_l3_analytic_flops_match_xla_within_5_percent(width):
  config = _l3_config(width)
  analytic = config.batch_size * l3.train_flops_per_example(
      config.data.image_size, tuple(config.model.spectrogram_shape), width
  )
  assert _model_flops(config) == pytest.approx(analytic, rel=0.05)


def test_model_flops_leave_out_column_pairs():
  """The MFU figures count the model's arithmetic, not the structural zeros."""
  config = _l3_config(0.25)
  config.model.pack_columns = "on"
  packed = _model_flops(config)
  counted = _model_flops(config, counted=True)
  config.model.pack_columns = "off"
  assert counted == _model_flops(config) < packed


def test_full_size_l3_analytic_flops():
  # 2 x valid taps x C_in x C_out per conv; 3 passes but 2 for conv1_1.
  assert l3.train_flops_per_example(224, (257, 199)) == pytest.approx(
      119.70e9, rel=1e-3
  )


def test_roofline_picks_the_binding_limit():
  chip = roofline.CHIPS["v5e"]
  # 1 TFLOP and 1 GB: compute takes 5.1 ms, memory 1.2 ms.
  r = roofline.roofline(chip, 1e12, 1e9, model_flops=0.8e12, examples=64)
  assert r["bound"] == "compute"
  assert r["roofline_step_s"] == pytest.approx(1e12 / 197e12)
  assert r["mfu_bound"] == pytest.approx(0.8)
  assert r["examples_per_sec_per_chip"] == pytest.approx(64 * 197e12 / 1e12)
  r = roofline.roofline(chip, 1e12, 1e10, model_flops=1e12, examples=64)
  assert r["bound"] == "memory"
  assert r["mfu_bound"] == pytest.approx((1e12 / 197e12) / (1e10 / 819e9))


def test_topology_names():
  assert roofline.parse_topology("v5e:4x4") == (roofline.CHIPS["v5e"], 16)
  assert roofline.accelerator_type("v5e:2x2") == "v5litepod-4"
  assert roofline.accelerator_type("v4:2x2x2") == "v4-16"
  with pytest.raises(ValueError, match="GENERATION"):
    roofline.parse_topology("v9:2x2")
  with pytest.raises(ValueError, match="GENERATION"):
    roofline.parse_topology("v5e")


def test_collectives_are_counted_with_their_result_bytes():
  hlo = "\n".join(
      [
          "  %a = f32[1024]{0:T(128)} all-reduce(%x), channel_id=1",
          "  %b = (bf16[8,8]{1,0}, f32[4]{0}, /*index=2*/s32[]) all-reduce-start("
          "%y, %z, %w)",
          "  %c = bf16[8,8]{1,0} all-reduce-done(%b)",
          "  %d = f32[64,2]{1,0} all-gather(%v), dimensions={0}",
          "  %e = f32[16]{0} add(%all-reduce.1, %q)",
      ]
  )
  assert roofline.collectives(hlo) == {
      "all-reduce": {"count": 2, "bytes": 4096 + 128 + 16 + 4},
      "all-gather": {"count": 1, "bytes": 512},
  }


def test_traffic_breakdown_counts_tiles_as_stored():
  hlo = "\n".join(
      [
          "ENTRY %main (p: bf16[8,4,4,64]) -> bf16[8,4,4,64] {",
          "  %p = bf16[8,4,4,64]{3,0,2,1:T(8,128)(2,1)} parameter(0)",
          "  %f = bf16[8,4,4,64]{3,0,2,1:T(8,128)(2,1)} fusion(%p),"
          " kind=kLoop, calls=%c",
          "  %s = (bf16[8,4,4,64]{3,0,2,1:T(8,128)(2,1)}, bf16[8,4,4,64]"
          "{3,0,2,1:T(8,128)(2,1)S(1)}, u32[]) copy-start(%f)",
          "  ROOT %d = bf16[8,4,4,64]{3,0,2,1:T(8,128)(2,1)} copy-done(%s)",
          "}",
      ]
  )
  data = 8 * 4 * 4 * 64 * 2  # one array's bytes; stored in 128 lanes: twice
  r = roofline.traffic_breakdown(hlo)
  # The fusion reads and writes one array; the async copy moves it once.
  assert r["by_op"] == {"fusion:kLoop": 4 * data, "copy-start": 4 * data}
  assert r["bytes"] == 8 * data and r["padding_bytes"] == 4 * data
  assert r["by_minor_dim"] == {64: 8 * data}


def test_auto_dtype_is_bfloat16_on_accelerators_only():
  model = config_lib.base_config().model
  model.dtype = "auto"
  assert config_lib.compute_dtype(model, "tpu").name == "bfloat16"
  assert config_lib.compute_dtype(model, "gpu").name == "bfloat16"
  assert config_lib.compute_dtype(model, "cpu").name == "float32"


def test_column_pairs_are_on_for_tpus_by_default():
  model = config_lib.base_config().model
  assert config_lib.packs_columns(model, "tpu")
  assert not config_lib.packs_columns(model, "gpu")
  assert not config_lib.packs_columns(model, "cpu")
  model.pack_columns = "off"
  assert not config_lib.packs_columns(model, "tpu")
  model.pack_columns = "on"
  assert config_lib.packs_columns(model, "cpu")
  model.pack_columns = "yes"
  with pytest.raises(config_lib.ConfigError, match="pack_columns"):
    config_lib.packs_columns(model)


def test_compile_refuses_a_bad_topology_in_one_line():
  result = subprocess.run(
      [
          sys.executable,
          "-m",
          "avself.compile",
          "--config=configs/l3_tiny.py",
          "--topology=v9:2x2",
      ],
      cwd=ROOT,
      capture_output=True,
      text=True,
      timeout=120,
  )
  assert result.returncode != 0
  assert (
      result.stderr.strip()
      .splitlines()[-1]
      .startswith("avself.compile: --topology='v9:2x2'")
  )


@pytest.mark.skipif(
    not HAVE_LIBTPU, reason="needs libtpu: pip install -e '.[tpu]'"
)
def test_small_l3_compiles_for_v5e_2x2_and_fits():
  compile_lib.quiet_libtpu("v5e:2x2")
  config = _l3_config(0.5)
  result = compile_lib.run(config, "v5e:2x2", search_batch=False)
  assert result["chips"] == 4 and result["fits"]
  assert 0 < result["hbm_gib_per_chip"] < 16
  per_chip = config.batch_size / 4
  analytic = per_chip * l3.train_flops_per_example(
      config.data.image_size, tuple(config.model.spectrogram_shape), 0.5
  )
  assert result["model_flops_per_chip"] == pytest.approx(analytic, rel=0.05)
  # The chip does at least the model's arithmetic (more where small channel
  # counts are padded to the matrix unit's tiles).
  assert result["flops_per_chip"] >= 0.95 * analytic
  # Data parallel: the gradients are summed over the chips.
  assert result["collectives"]["all-reduce"]["bytes"] > 0
  assert 0 < result["mfu_bound"] <= 1
  assert result["pack_columns"] == "on"


@pytest.mark.skipif(
    not HAVE_LIBTPU, reason="needs libtpu: pip install -e '.[tpu]'"
)
def test_column_pairs_cut_the_trunks_hbm_traffic():
  """A full-width trunk's train step on one v5e chip, block 1 packed or not."""
  compile_lib.quiet_libtpu("v5e:2x2")
  from jax.sharding import Mesh, NamedSharding, PartitionSpec  # pylint: disable=g-import-not-at-top

  chip = compile_lib.topology_devices("v5e:2x2")[:1]
  on_chip = NamedSharding(Mesh(np.asarray(chip), ("d",)), PartitionSpec())
  x = jax.ShapeDtypeStruct((8, 128, 128, 3), jnp.bfloat16, sharding=on_chip)

  def cost(pack_columns: bool) -> dict:
    trunk = vgg.VGGTrunk(dtype=jnp.bfloat16, pack_columns=pack_columns)
    variables = jax.eval_shape(
        functools.partial(trunk.init, train=False), jax.random.key(0), x
    )
    params = jax.tree.map(
        lambda v: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=on_chip),
        variables,
    )

    def grad(variables, x):
      def loss(params):
        out, _ = trunk.apply(
            {**variables, "params": params},
            x,
            train=True,
            mutable=["batch_stats"],
        )
        return jnp.sum(out["pooled"].astype(jnp.float32))

      return jax.grad(loss)(variables["params"])

    return roofline.cost_analysis(jax.jit(grad).lower(params, x).compile())

  packed, plain = cost(True), cost(False)
  # Half of block 1's lanes were padding: packed, the trunk moved 0.81 of
  # the plain trunk's bytes when measured; its convs do more arithmetic.
  assert packed["bytes accessed"] < 0.85 * plain["bytes accessed"]
  assert packed["flops"] > plain["flops"]


@pytest.mark.skipif(
    not HAVE_LIBTPU, reason="needs libtpu: pip install -e '.[tpu]'"
)
def test_program_digest_tells_apart_steps_not_run_lengths():
  compile_lib.quiet_libtpu("v5e:2x2")
  config = _l3_config(0.25)
  longer = _l3_config(0.25)
  longer.total_steps = 10 * config.total_steps
  wider = _l3_config(0.5)
  digest = compile_lib.program_digest(config, "v5e:2x2")
  assert len(digest) == 64
  assert compile_lib.program_digest(longer, "v5e:2x2") == digest
  assert compile_lib.program_digest(wider, "v5e:2x2") != digest
