"""The world's ground truth as both localisation evaluators read it."""

import json

import numpy as np
import pytest

from avself.evaluators import av_localization
from avself.evaluators import ground_truth
from avself.evaluators import localization


def test_point_in_boxes_takes_x_then_y_edges_included_empty_boxes_never():
  tall = np.array([[10.0, 0.0, 12.0, 30.0]])  # x in [10, 12], y in [0, 30]
  assert ground_truth.point_in_boxes((11.0, 25.0), tall)
  assert not ground_truth.point_in_boxes((25.0, 11.0), tall)  # (y, x)
  assert ground_truth.point_in_boxes((10.0, 30.0), tall)  # a corner
  empty = np.array([[5.0, 5.0, 5.0, 9.0]])
  assert not ground_truth.point_in_boxes((5.0, 6.0), empty)
  assert not ground_truth.point_in_boxes((0.0, 0.0), np.zeros((0, 4)))


def test_both_evaluators_score_a_point_the_same():
  boxes = [
      np.array([[10.0, 0.0, 12.0, 30.0]]),
      np.array([[0.0, 0.0, 4.0, 4.0]]),
  ]
  peaks_yx = np.array([[25.0, 11.0], [2.0, 3.0]])
  hits, _ = av_localization.pointing_hits(peaks_yx, boxes, crop=32)
  assert hits.tolist() == [True, True]
  assert localization.pointing(peaks_yx[:, ::-1], boxes) == (2, 2)
  swapped, _ = av_localization.pointing_hits(peaks_yx[:, ::-1], boxes, crop=32)
  assert swapped.tolist() == [False, True]


def test_read_clips_in_order_and_a_clear_error_when_absent(tmp_path):
  rows = [
      {"file": "videos/clip_00000.mp4", "split": "train"},
      {"file": "videos/clip_00001.mp4", "split": "test"},
  ]
  with open(tmp_path / "ground_truth.jsonl", "w") as f:
    f.write("".join(json.dumps(r) + "\n" for r in rows) + "\n")
  assert ground_truth.read_clips(str(tmp_path), "hint") == rows
  assert localization.read_ground_truth(str(tmp_path), "test") == rows[1:]
  assert av_localization.load_ground_truth(str(tmp_path)) == {
      "clip_00000.mp4": rows[0],
      "clip_00001.mp4": rows[1],
  }
  with pytest.raises(FileNotFoundError, match="not found: set world_dir"):
    ground_truth.read_clips(str(tmp_path / "nowhere"), "set world_dir")
