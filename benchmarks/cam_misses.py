r"""Where a sync net's CAM misses on the synthetic world: by time to a burst, offset, lag.

The localization evaluator gives one number, pointing accuracy. This script
breaks it down for a CAM-net checkpoint (configs/multisensory_cam_synthetic.py)
on one split of the world it trained on (the evaluator's heat:
`video_cam.video_heatmap`, sliding clips):

- pointing by the time from the frame to the sounding object's nearest burst
  (its sound is a hum plus a short burst at each bounce, so between bursts
  the sound says little about where it is);
- the mean offset (dx, dy) of the heat's peak from the sounding box's centre,
  in crop pixels, beside the boxes' mean half-size (a net's map can sit to one
  side of what it sees: `--flip` averages in the mirrored video's maps);
- pointing of each frame's heat against the boxes of frame f + k, k = -4..4
  (which frame the heat stands for; the evaluator scores k = 0);
- pointing by how fast the sounding box moves at that frame (crop pixels per
  second): the net sees 25 frames in time, so a fast object's heat is
  smeared along its path.

  python benchmarks/cam_misses.py --workdir=/tmp/ms_cam --split=train
  python benchmarks/cam_misses.py --workdir=/tmp/ms_cam --split=test --flip

Prints a table and writes --output (JSON) when given. ~1 min per 24 videos
at 112 px on 2 CPU cores (2 min with --flip). docs/multisensory.md has the
measured numbers.
"""

import json
import time

from absl import flags
import numpy as np

from avself import cli_flags
from avself import clip_input
from avself import sharding
from avself import state as state_lib
from avself import video_cam
from avself.evaluators import localization

BINS = (
    0.0,
    0.2,
    0.4,
    0.6,
    0.8,
    1.0,
)  # seconds to the nearest burst: [0, 0.2), ..., [1.0, inf)
LAGS = tuple(range(-4, 5))
SPEEDS = (0.0, 20.0, 40.0, 60.0, 80.0)  # crop px / s: [0, 20), ..., [80, inf)


def box_speeds(boxes, fps: float) -> np.ndarray:
  """Speed of the first box's centre at each frame, px / s (central differences): [F]."""
  centres = np.array(
      [
          (b[:2] + b[2:]) / 2 if b is not None else (np.nan, np.nan)
          for b in map(first_box, boxes)
      ],
      np.float64,
  )
  if len(centres) < 2:
    return np.zeros(len(centres))
  return np.linalg.norm(np.gradient(centres, axis=0), axis=1) * fps


def nearest_burst(truth: dict, num_frames: int, fps: float) -> np.ndarray:
  """Seconds from each frame to the nearest burst of any sounding object: [F] (inf if none)."""
  events = [
      np.asarray(o["event_times"], np.float64)
      for o in truth["objects"]
      if o["sounding"]
  ]
  events = np.concatenate(events) if events else np.zeros(0)
  if not len(events):
    return np.full(num_frames, np.inf)
  times = np.arange(num_frames) / fps
  return np.abs(times[:, None] - events[None, :]).min(axis=1)


def first_box(boxes) -> np.ndarray:
  """The first non-empty box [4] of a frame's boxes, or None."""
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
  return boxes[keep][0] if keep.any() else None


def analyse(videos, rows, heats, fps: float) -> dict:
  """The breakdown of pointing for decoded world videos and their heats [F, S, S]."""
  by_bin = np.zeros((len(BINS), 2))
  by_speed = np.zeros((len(SPEEDS), 2))
  lags = {k: np.zeros(2) for k in LAGS}
  offsets, halves = [], []
  for video, truth, heat in zip(videos, rows, heats):
    f = len(heat)
    points = localization.peak_points(heat)
    boxes = video["boxes"][:f]
    gap = nearest_burst(truth, f, fps)
    speed = box_speeds(boxes, fps)
    for i, (point, frame_boxes) in enumerate(zip(points, boxes)):
      hits, scored = localization.pointing(point[None], [frame_boxes])
      if not scored:
        continue
      b = np.searchsorted(BINS, gap[i], side="right") - 1
      by_bin[b] += (hits, scored)
      if np.isfinite(speed[i]):
        by_speed[np.searchsorted(SPEEDS, speed[i], side="right") - 1] += (
            hits,
            scored,
        )
      box = first_box(frame_boxes)
      offsets.append(point - (box[:2] + box[2:]) / 2)
      halves.append((box[2:] - box[:2]) / 2)
    for k in LAGS:
      shifted = [
          video["boxes"][min(max(i + k, 0), len(video["boxes"]) - 1)]
          for i in range(f)
      ]
      lags[k] += localization.pointing(points, shifted)
  offsets, halves = np.asarray(offsets), np.asarray(halves)
  total = by_bin.sum(axis=0)
  return {
      "pointing": total[0] / max(total[1], 1),
      "frames": int(total[1]),
      "by_time_to_burst": [
          {"from_s": lo, "frames": int(n), "pointing": h / n if n else None}
          for lo, (h, n) in zip(BINS, by_bin)
      ],
      "by_box_speed": [
          {
              "from_px_per_s": lo,
              "frames": int(n),
              "pointing": h / n if n else None,
          }
          for lo, (h, n) in zip(SPEEDS, by_speed)
      ],
      "mean_offset_px": offsets.mean(axis=0).round(2).tolist(),
      "median_miss_distance_px": float(
          np.median(np.linalg.norm(offsets, axis=1))
      ),
      "mean_box_half_size_px": halves.mean(axis=0).round(2).tolist(),
      "pointing_against_frame_f_plus_k": {
          k: h / n for k, (h, n) in lags.items()
      },
  }


FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "workdir", None, "a sync run with a localization eval", flag_values=FLAGS
)
flags.DEFINE_integer(
    "step", None, "checkpoint step (default: the last)", flag_values=FLAGS
)
flags.DEFINE_string("split", "test", "the world's split", flag_values=FLAGS)
flags.DEFINE_integer("num_videos", 24, "videos to score", flag_values=FLAGS)
flags.DEFINE_bool(
    "flip", False, "average in the mirrored video's maps", flag_values=FLAGS
)
flags.DEFINE_string("output", "", "also write the JSON here", flag_values=FLAGS)
flags.mark_flag_as_required("workdir", flag_values=FLAGS)


def main(argv=None) -> dict:
  args = cli_flags.parse(FLAGS, argv, __doc__, "cam_misses.py")
  mesh = sharding.make_mesh()
  config, _, model, state = state_lib.restore(
      args.workdir, args.step, mesh=mesh
  )
  if "localization" not in config.get("evals", {}):
    raise SystemExit(
        f"{args.workdir}: its config has no localization eval (a world to score)"
    )
  folder = localization.world_dir(config, config.evals.localization)
  spec = clip_input.state_clip_spec(config, state)
  rows = localization.read_ground_truth(folder, args.split)[: args.num_videos]
  videos = localization.load_world_videos(folder, rows, spec)
  start = time.time()
  heats = [
      video_cam.video_heatmap(
          model, state, v["frames"], v["audio"], spec, mesh, flip=args.flip
      )[0]
      for v in videos
  ]
  result = analyse(videos, rows, heats, spec.fps)
  result.update(
      workdir=args.workdir,
      step=int(state.step),
      split=args.split,
      videos=len(videos),
      flip=args.flip,
      seconds=round(time.time() - start, 1),
  )
  print(
      f"{args.workdir} step {result['step']} {args.split} ({len(videos)} videos, "
      f"{result['frames']} frames, flip={args.flip}): pointing {result['pointing']:.3f}"
  )
  for row in result["by_time_to_burst"]:
    score = "-" if row["pointing"] is None else f"{row['pointing']:.3f}"
    print(
        f"  {row['from_s']:.1f}+ s from a burst: {row['frames']:5d} frames, pointing {score}"
    )
  for row in result["by_box_speed"]:
    score = "-" if row["pointing"] is None else f"{row['pointing']:.3f}"
    print(
        f"  box moving {row['from_px_per_s']:.0f}+ px/s: {row['frames']:5d} frames, "
        f"pointing {score}"
    )
  print(
      f"  peak - box centre: mean (dx, dy) {result['mean_offset_px']} px, median distance "
      f"{result['median_miss_distance_px']:.1f} px; "
      f"box half-size {result['mean_box_half_size_px']}"
  )
  print(
      "  heat of frame f vs boxes of frame f+k: "
      + "  ".join(
          f"{k:+d}: {v:.3f}"
          for k, v in result["pointing_against_frame_f_plus_k"].items()
      )
  )
  if args.output:
    with open(args.output, "w") as f:
      json.dump(result, f, indent=1)
  return result


if __name__ == "__main__":
  main()
