"""TPU chips' published figures and the roofline of a compiled step.

A step that does F FLOPs and moves B bytes of HBM traffic on one chip takes
at least max(F / peak, B / bandwidth) seconds; the model's own FLOPs over the
peak, divided by that time, bound its MFU from above.
"""

import dataclasses
import math
import re

GIB = 2**30


def cost_analysis(stage) -> dict:
  """XLA's cost analysis of a lowered or compiled step as one dict ({} if none).

  Some jax versions return one dict per device program, in a list.
  """
  cost = stage.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return dict(cost or {})


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


# `%name = TYPE op(operands...)` in an HLO module's text.
_INSTRUCTION = re.compile(
    r"^\s*(?:ROOT )?%([\w.\-]+) = (.*?) ([a-z\-]+)\((.*)$"
)
_TILED_ARRAY = re.compile(r"([a-z0-9]+)\[([0-9,]*)\](\{[^}]*\})?")
_NO_TRAFFIC = {
    "parameter",
    "get-tuple-element",
    "tuple",
    "bitcast",
    "constant",
    "after-all",
    "partition-id",
    "replica-id",
}


def _tiled_bytes(dtype: str, dims: str, layout: str) -> tuple[int, int]:
  """(bytes as stored, in whole (8, 128)-style tiles; bytes of the data)."""
  shape = [int(d) for d in dims.split(",") if d]
  raw = _BYTES.get(dtype, 0) * math.prod(shape)
  match = re.match(r"\{([0-9,]*)(?::(.*))?\}", layout or "")
  tiles = re.findall(r"T\(([0-9,]+)\)", (match.group(2) or "") if match else "")
  if not shape or not tiles:
    return raw, raw
  minor_to_major = [int(d) for d in match.group(1).split(",") if d]
  padded = list(shape)
  for axis, tile in zip(minor_to_major, reversed(tiles[0].split(","))):
    padded[axis] = -(-padded[axis] // int(tile)) * int(tile)
  return _BYTES.get(dtype, 0) * math.prod(padded), raw


def traffic_breakdown(hlo_text: str) -> dict:
  """Where a compiled step's HBM traffic goes, from its entry computation.

  Each top-level op counts its operands and results once (async copies and
  slices at their start), as stored: TPU arrays are kept in tiles whose
  minor dimension is a multiple of 128 lanes, so a 64-channel activation
  occupies, and moves, twice its data. An estimate beside XLA's own count:
  {'bytes', 'padding_bytes', 'by_op': {op: bytes}, 'by_minor_dim': {C: bytes}}
  (C is the last dimension of the op's largest 4-D or 5-D array, its
  channels for an activation; 0 where it has none).
  """
  entry = re.search(r"^ENTRY .*?\{\n(.*?)^\}", hlo_text, re.S | re.M)
  shapes, by_op, by_minor_dim = {}, {}, {}
  total = raw_total = 0
  for line in (entry.group(1) if entry else "").splitlines():
    found = _INSTRUCTION.match(line)
    if not found:
      continue
    name, shape, op, rest = found.groups()
    shapes[name] = shape
    if op in _NO_TRAFFIC or op.endswith("-done"):
      continue
    operands = re.findall(r"%([\w.\-]+)", rest.split(", calls=")[0])
    arrays = [shapes.get(o, "") for o in operands]
    # An async start's result repeats its operand: count the move once.
    arrays += [] if op.endswith("-start") else [shape]
    sizes = [_tiled_bytes(*a) for s in arrays for a in _TILED_ARRAY.findall(s)]
    stored = sum(p for p, _ in sizes) * (2 if op.endswith("-start") else 1)
    total += stored
    raw_total += sum(r for _, r in sizes) * (2 if op.endswith("-start") else 1)
    kind = re.search(r"kind=(k\w+)", line)
    key = op + (f":{kind.group(1)}" if kind else "")
    by_op[key] = by_op.get(key, 0) + stored
    largest = max(
        (a for s in arrays for a in _TILED_ARRAY.findall(s)),
        key=lambda a: _tiled_bytes(*a)[0],
        default=None,
    )
    dims = [int(d) for d in largest[1].split(",") if d] if largest else []
    channels = dims[-1] if len(dims) >= 4 else 0
    by_minor_dim[channels] = by_minor_dim.get(channels, 0) + stored
  top = lambda d: dict(sorted(d.items(), key=lambda kv: -kv[1]))  # noqa: E731
  return {
      "bytes": total,
      "padding_bytes": total - raw_total,
      "by_op": top(by_op),
      "by_minor_dim": top(by_minor_dim),
  }
