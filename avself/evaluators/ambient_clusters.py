"""What the ambient-sound net learned: one row of test frames per sound cluster.

The figure of Owens et al. (2016, Fig. 4): for each of the `num_rows` clusters
the net assigns most test frames to, the `per_row` frames it assigns to that
cluster most confidently (one per video), left to right. Frames are the
centre frames of the `clips` windows of `split`. Yields `picture` (uint8, to
TensorBoard) and `cluster_entropy` (bits, of the predicted clusters over the
test frames: how many clusters the net really uses), and writes
`picture_dir/ambient_clusters_step_<N>.png` when `picture_dir` is set.
"""

import functools
import os

from absl import logging
import jax
import numpy as np

from avself import pictures
from avself.evaluators import features


def _probabilities(model, variables, batch):
  logits = model.apply(variables, batch["image"], train=False)["logits"]
  return {"probability": jax.nn.softmax(logits, axis=-1)}


def cluster_rows(
    probability: np.ndarray,
    video_index: np.ndarray,
    num_rows: int,
    per_row: int,
) -> list:
  """[(cluster, [frame indices])] for the most populated predicted clusters, most confident first."""
  predicted = probability.argmax(-1)
  counts = np.bincount(predicted, minlength=probability.shape[1])
  rows = []
  for k in np.argsort(-counts, kind="stable")[:num_rows]:
    if not counts[k]:
      break
    chosen, seen = [], set()
    for i in np.argsort(-probability[:, k], kind="stable"):
      if predicted[i] == k and video_index[i] not in seen:
        chosen.append(int(i))
        seen.add(video_index[i])
      if len(chosen) == per_row:
        break
    rows.append((int(k), chosen))
  return rows


class Evaluator:
  """Attributes (eval_config): split (config.data.eval_split), num_rows (6),
  per_row (8), thumbnail (48 px), batch_size (config.batch_size), picture_dir ('').
  """

  def __init__(self, config, eval_config, *, task, model, mesh):
    del task
    self.config, self.mesh = config, mesh
    self.split = eval_config.get("split") or config.data.eval_split
    self.num_rows = int(eval_config.get("num_rows", 6))
    self.per_row = int(eval_config.get("per_row", 8))
    self.thumbnail = int(eval_config.get("thumbnail", 48))
    self.batch = int(eval_config.get("batch_size") or config.batch_size)
    self.picture_dir = eval_config.get("picture_dir") or ""
    self._fn = features.make_feature_fn(_probabilities, model, mesh)

  def run(self, state):
    """Yields cluster_entropy and picture."""
    variables = {"params": state.params, **state.model_state}
    data = features.extract(
        self._fn,
        variables,
        self.config.data,
        self.split,
        self.batch,
        self.mesh,
        keep_inputs=("image",),
    )
    probability = np.asarray(data["probability"], np.float64)
    share = np.bincount(
        probability.argmax(-1), minlength=probability.shape[1]
    ) / len(probability)
    share = share[share > 0]
    yield "cluster_entropy", float(-(share * np.log2(share)).sum())
    rows = cluster_rows(
        probability, data["video_index"], self.num_rows, self.per_row
    )
    blank = np.full((self.thumbnail, self.thumbnail, 3), 255, np.uint8)
    lines = [
        pictures.tile_row(
            [
                pictures.image_thumbnail(data["image"][i], self.thumbnail)
                for i in chosen
            ]
            + [blank] * (self.per_row - len(chosen))
        )
        for _, chosen in rows
    ]
    gap = np.full((4, lines[0].shape[1], 3), 255, np.uint8)
    picture = np.concatenate(
        functools.reduce(lambda a, b: a + [gap, b], lines[1:], [lines[0]])
    )
    if self.picture_dir and jax.process_index() == 0:
      path = os.path.join(
          self.picture_dir, f"ambient_clusters_step_{int(state.step)}.png"
      )
      pictures.save_png(picture, path)
      logging.info(
          "Ambient clusters picture (rows: clusters %s): %s",
          [k for k, _ in rows],
          path,
      )
    yield "picture", picture
