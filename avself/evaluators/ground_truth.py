"""The synthetic world's ground truth, as the localisation evaluators read it.

`ground_truth.jsonl` (one clip a line, `avself.data.synthetic`) gives every
object's box [x0, y0, x1, y1] in each frame and whether it sounds. Points are
(x, y) throughout, as the boxes are.
"""

import json
import os

import numpy as np


def read_clips(folder: str, missing_hint: str) -> list[dict]:
  """Every clip's ground_truth.jsonl row, in clip order; a clear error if absent."""
  path = os.path.join(folder, "ground_truth.jsonl")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} not found: {missing_hint}")
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def point_in_boxes(point, boxes: np.ndarray) -> bool:
  """Whether (x, y) lies inside (edges included) any non-empty box [M, 4]."""
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  x, y = point
  inside = (
      (boxes[:, 0] <= x)
      & (x <= boxes[:, 2])
      & (boxes[:, 1] <= y)
      & (y <= boxes[:, 3])
      & (boxes[:, 2] > boxes[:, 0])
      & (boxes[:, 3] > boxes[:, 1])
  )
  return bool(inside.any())
