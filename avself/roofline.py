"""TPU chips' published figures and the roofline of a compiled step.

A step that does F FLOPs and moves B bytes of HBM traffic on one chip takes
at least max(F / peak, B / bandwidth) seconds; the model's own FLOPs over the
peak, divided by that time, bound its MFU from above.
"""

import dataclasses
import math
import re

GIB = 2**30


@dataclasses.dataclass(frozen=True)
class Chip:
  """One TPU chip's published figures."""

  name: str
  bf16_flops: float  # Peak bf16 FLOP/s.
  hbm_bandwidth: float  # Bytes/s.
  hbm_bytes: int
  cores_per_chip: int  # TensorCores counted by the accelerator type name.
  accelerator_prefix: str  # TPU_ACCELERATOR_TYPE is f"{prefix}-{cores}".


CHIPS = {
    "v4": Chip("v4", 275e12, 1200e9, 32 * GIB, 2, "v4"),
    "v5e": Chip("v5e", 197e12, 819e9, 16 * GIB, 1, "v5litepod"),
    "v5p": Chip("v5p", 459e12, 2765e9, 95 * GIB, 2, "v5p"),
    "v6e": Chip("v6e", 918e12, 1640e9, 32 * GIB, 1, "v6e"),
}


def parse_topology(topology: str) -> tuple[Chip, int]:
  """'v5e:4x4' -> (the v5e chip, 16 chips)."""
  generation, _, shape = topology.partition(":")
  if generation not in CHIPS or not re.fullmatch(r"\d+(x\d+)*", shape):
    raise ValueError(
        f"--topology={topology!r}: use GENERATION:AxB[xC] with GENERATION one "
        f"of {sorted(CHIPS)}, e.g. v5e:2x2 or v4:2x2x2"
    )
  return CHIPS[generation], math.prod(int(n) for n in shape.split("x"))


def accelerator_type(topology: str) -> str:
  """The TPU_ACCELERATOR_TYPE a slice of this topology reports (v5e:2x2 -> v5litepod-4)."""
  chip, chips = parse_topology(topology)
  return f"{chip.accelerator_prefix}-{chips * chip.cores_per_chip}"


def roofline(
    chip: Chip,
    flops: float,
    bytes_accessed: float,
    model_flops: float,
    examples: float,
) -> dict:
  """Per-chip bound of one step: its time, examples/s and MFU."""
  compute_s = flops / chip.bf16_flops
  memory_s = bytes_accessed / chip.hbm_bandwidth
  step_s = max(compute_s, memory_s)
  return {
      "arithmetic_intensity": flops / bytes_accessed,
      "ridge_intensity": chip.bf16_flops / chip.hbm_bandwidth,
      "bound": "compute" if compute_s >= memory_s else "memory",
      "roofline_step_s": step_s,
      "examples_per_sec_per_chip": examples / step_s,
      "mfu_bound": model_flops / chip.bf16_flops / step_s,
  }


_BYTES = {
    "pred": 1,
    "s8": 1,
    "u8": 1,
    "s16": 2,
    "u16": 2,
    "f16": 2,
    "bf16": 2,
    "s32": 4,
    "u32": 4,
    "f32": 4,
    "s64": 8,
    "u64": 8,
    "f64": 8,
}
_KINDS = (
    "all-reduce",
    "all-gather",
    "reduce-scatter",
    "all-to-all",
    "collective-permute",
)
# `%name = TYPE kind(` or `%name = TYPE kind-start(`; TYPE may be a tuple.
_COLLECTIVE = re.compile(
    r"=\s*(\(.*?\)|[a-z0-9]+\[[0-9,]*\](?:\{[^}]*\})?)\s+"
    r"(" + "|".join(_KINDS) + r")(?:-start)?\("
)
_ARRAY = re.compile(r"([a-z0-9]+)\[([0-9,]*)\]")


def _shape_bytes(shape: str) -> int:
  total = 0
  for dtype, dims in _ARRAY.findall(shape):
    if dtype in _BYTES:
      total += _BYTES[dtype] * math.prod(int(d) for d in dims.split(",") if d)
  return total


def collectives(hlo_text: str) -> dict[str, dict[str, int]]:
  """{kind: {'count', 'bytes'}} of the collectives in an HLO module's text.

  Bytes are each op's result size on one device; an async pair
  (`-start`/`-done`) counts once.
  """
  found: dict[str, dict[str, int]] = {}
  for shape, kind in _COLLECTIVE.findall(hlo_text):
    entry = found.setdefault(kind, {"count": 0, "bytes": 0})
    entry["count"] += 1
    entry["bytes"] += _shape_bytes(shape)
  return found
