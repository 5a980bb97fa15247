"""Retrieval metrics and evaluator, AVOL localisation evaluator, pictures."""

import json
import math
import os
import types

import flax.linen as nn
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

import tiny
from avself import pictures
from avself import sharding
from avself import state as state_lib
from avself.evaluators import av_localization
from avself.evaluators import retrieval
from avself.tasks import avol
from avself.tasks import contrastive
from test_contrastive import _variables  # numpy-made variables: no 40 s init compile

# ### nDCG and recall on hand-computed examples ##################################


def test_ndcg_perfect_is_one_and_reversed_is_hand_computed():
  relevance = np.array([[1.0, 1.0, 0.0, 0.0]])
  assert (
      retrieval.ndcg_at_k(np.array([[0.9, 0.8, 0.1, 0.0]]), relevance, k=30)
      == 1.0
  )
  reversed_scores = np.array([[0.0, 0.1, 0.8, 0.9]])
  # Relevant items at ranks 3 and 4: (1/log2(4) + 1/log2(5)) / (1 + 1/log2(3)).
  expected = (1 / math.log2(4) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
  np.testing.assert_allclose(
      retrieval.ndcg_at_k(reversed_scores, relevance, k=30), expected
  )
  assert retrieval.ndcg_at_k(reversed_scores, relevance, k=2) == 0.0
  # A query with nothing relevant is skipped, not scored 0.
  both = retrieval.ndcg_at_k(
      np.array([[0.9, 0.8, 0.1, 0.0]] * 2),
      np.array([[1.0, 1.0, 0.0, 0.0], [0.0] * 4]),
      k=30,
  )
  assert both == 1.0


def test_recall_at_k_counts_queries_with_a_relevant_item_in_the_top_k():
  scores = np.array([[0.9, 0.5, 0.1], [0.1, 0.9, 0.5]])
  relevant = np.array([[False, False, True], [False, True, False]])
  assert retrieval.recall_at_k(scores, relevant, 1) == 0.5
  assert retrieval.recall_at_k(scores, relevant, 2) == 0.5
  assert retrieval.recall_at_k(scores, relevant, 3) == 1.0


def test_query_is_excluded_from_its_own_modality():
  # Item 0's nearest neighbour is itself; among the others item 2 (class 1)
  # beats item 1 (class 0, its only true match).
  emb = np.array([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]])
  labels = np.array([0, 0, 1])
  got = retrieval.retrieval_metrics(
      emb, emb, labels, labels, exclude=np.eye(3, dtype=bool), recall_ks=(1, 2)
  )
  # Query 0: relevant item 1 ranks 2nd -> 1/log2(3); query 1: item 0 ranks 2nd
  # (item 2 at 0.6 beats item 0 at 0.0); query 2 has no relevant item: skipped.
  np.testing.assert_allclose(got["ndcg@30"], 1 / math.log2(3))
  assert got["recall@1"] == 0.0 and got["recall@2"] == 1.0
  # Without the exclusion the query finds itself and everything looks perfect.
  assert (
      retrieval.retrieval_metrics(emb, emb, labels, labels, recall_ks=(1,))[
          "recall@1"
      ]
      == 1.0
  )


def test_graded_relevance_from_an_ontology_and_unlabelled_items():
  ontology = np.array([[0, 1, 2], [1, 0, 2], [2, 2, 0]], np.float64)
  rel = retrieval.relevance_matrix(
      np.array([0, -1]), np.array([0, 1, 2, -1]), ontology
  )
  np.testing.assert_allclose(rel, [[1.0, 0.5, 0.0, 0.0], [0, 0, 0, 0]])
  np.testing.assert_allclose(
      retrieval.relevance_matrix(np.array([1]), np.array([1, 2])), [[1.0, 0.0]]
  )


def _clustered_items(num_classes=3, per_class=4, seed=0):
  rng = np.random.default_rng(seed)
  centres = rng.standard_normal((num_classes, 16)) * 3
  labels = np.repeat(np.arange(num_classes), per_class)
  emb = centres[labels] + 0.1 * rng.standard_normal((len(labels), 16))
  emb /= np.linalg.norm(emb, axis=1, keepdims=True)
  return {
      "image": emb,
      "audio": emb.copy(),
      "label": labels,
      "video_index": np.arange(len(labels)),
      "image_thumb": rng.uniform(-1, 1, (len(labels), 8, 8, 3)),
      "audio_thumb": rng.standard_normal((len(labels), 8, 8)),
  }


def test_all_four_directions_are_scored_and_clusters_score_perfectly():
  items = _clustered_items()
  got = retrieval.all_directions(items, k=30, recall_ks=(1, 5))
  for direction in (
      "image_to_image",
      "image_to_audio",
      "audio_to_image",
      "audio_to_audio",
  ):
    np.testing.assert_allclose(got[f"{direction}/ndcg@30"], 1.0)
    assert got[f"{direction}/recall@1"] == 1.0
  # Instance recall is cross-modal only; identical embeddings find their partner first.
  assert got["image_to_audio/instance_recall@1"] == 1.0
  assert "image_to_image/instance_recall@1" not in got
  # Shuffling one modality's rows breaks the cross-modal but not the within-modal ranking.
  shuffled = dict(
      items, audio=items["audio"][np.random.default_rng(1).permutation(12)]
  )
  worse = retrieval.all_directions(shuffled, k=30, recall_ks=(1,))
  assert (
      worse["image_to_audio/ndcg@30"] < 0.9
      and worse["image_to_image/ndcg@30"] == 1.0
  )


def test_video_level_items_average_audio_and_take_the_middle_frame():
  feats = {
      "image": np.eye(6, 4)[[0, 1, 2, 3, 3, 3]].astype(np.float32),
      "audio": np.array(
          [[1, 0], [1, 0], [0, 1], [0, 1], [0, 1], [1, 0]], np.float32
      ),
      "label": np.array([5, 5, 5, 7, 7, 7]),
      "video_index": np.array([0, 0, 0, 1, 1, 1]),
      "window_start": np.array([2.0, 0.0, 1.0, 0.0, 1.0, 2.0], np.float32),
  }
  items = retrieval.retrieval_items(feats, "video")
  np.testing.assert_array_equal(items["label"], [5, 7])
  # Video 0's windows in time order are rows 1, 2, 0: the middle one is row 2.
  np.testing.assert_array_equal(items["image"][0], feats["image"][2])
  np.testing.assert_allclose(
      items["audio"][0], np.array([2, 1]) / math.sqrt(5), rtol=1e-6
  )
  assert len(retrieval.retrieval_items(feats, "window")["label"]) == 6


# ### Pictures ###################################################################


def test_retrieval_grid_is_a_png_of_the_expected_size(tmp_path):
  items = _clustered_items()
  grid = retrieval.retrieval_picture(items, num_queries=2, top_k=5, size=16)
  cell = 16 + 2 * 2  # tile + border on both sides
  assert (
      grid.shape == (4 * 2 * cell, 6 * cell + 6, 3) and grid.dtype == np.uint8
  )
  path = pictures.save_png(grid, str(tmp_path / "pictures" / "grid.png"))
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  with Image.open(path) as image:
    assert image.size == (6 * cell + 6, 4 * 2 * cell) and image.mode == "RGB"
  # Perfect clusters: every result frame is green (relevant), none red.
  first_result = grid[0:cell, cell + 6 : 2 * cell + 6]
  np.testing.assert_array_equal(first_result[0, cell // 2], pictures.RELEVANT)


def test_heatmap_overlay_is_hot_where_the_map_peaks_and_boxes_are_drawn():
  image = np.zeros((16, 16, 3), np.uint8)
  heat = np.zeros((4, 4))
  heat[0, 0] = 1.0
  out = pictures.heatmap_overlay(image, heat, alpha=0.5)
  assert out.shape == (16, 16, 3)
  assert out[0, 0].sum() > out[15, 15].sum() + 100
  boxed = pictures.draw_box(image, [2, 2, 10, 10], (0, 255, 0))
  np.testing.assert_array_equal(boxed[2, 5], (0, 255, 0))
  np.testing.assert_array_equal(
      boxed[5, 5], (0, 0, 0)
  )  # inside stays untouched
  spec = pictures.spectrogram_thumbnail(np.outer(np.arange(8), np.ones(8)), 8)
  # Low frequencies (small row index, here quiet) are drawn at the bottom.
  assert spec[-1].sum() < spec[0].sum()


# ### The evaluators on the tiny world ############################################


def _state(variables, step=3):
  return types.SimpleNamespace(
      step=np.int32(step),
      params=variables["params"],
      model_state={k: v for k, v in variables.items() if k != "params"},
  )


def test_retrieval_evaluator_reports_four_directions_random_init_probe_and_picture(
    tmp_path, tiny_records, monkeypatch
):
  config = tiny.tiny_config(tiny_records)
  config.task, config.model.name = "contrastive", "avenet"
  model = contrastive.build_model(config)
  state = _state(_variables(contrastive, model, config))
  # The baseline net IS the evaluated one here, so both sets of numbers must agree.
  monkeypatch.setattr(
      state_lib,
      "random_init",
      lambda config, mesh=None, seed=0: (None, None, state),
  )
  eval_config = ml_collections.ConfigDict(
      dict(
          type="retrieval",
          picture_dir=str(tmp_path),
          thumbnail=16,
          batch_size=16,
      )
  )
  evaluator = retrieval.Evaluator(
      config,
      eval_config,
      task=contrastive,
      model=model,
      mesh=sharding.make_mesh(),
  )
  results = dict(evaluator.run(state))
  with open(os.path.join(tiny_records, "manifest.json")) as f:
    num_test = json.load(f)["splits"]["test"]["num_videos"]
  assert results["num_items"] == num_test  # one item per test video
  for direction in (
      "image_to_image",
      "image_to_audio",
      "audio_to_image",
      "audio_to_audio",
  ):
    value = results[f"{direction}/ndcg@30"]
    assert 0.0 < value <= 1.0
    assert results[f"{direction}/random_init_ndcg@30"] == value
    assert (
        0.0
        <= results[f"{direction}/recall@1"]
        <= results[f"{direction}/recall@10"]
        <= 1.0
    )
  assert 0.0 <= results["probe/audio_accuracy"] <= 1.0
  assert (
      results["probe/random_init_vision_accuracy"]
      == results["probe/vision_accuracy"]
  )
  picture = results["picture"]
  assert (
      picture.ndim == 3
      and picture.dtype == np.uint8
      and picture.shape[0] == 8 * 20
  )
  with Image.open(tmp_path / "retrieval_step_3.png") as image:
    assert image.size == (picture.shape[1], picture.shape[0])


def test_box_mapping_through_prepare_resize_and_centre_crop():
  # 64 px generated -> stored at 40 -> no eval resize -> 32 centre crop (offset 4).
  geometry = av_localization.crop_geometry((64, 64), (40, 40), 40, 32)
  np.testing.assert_allclose(geometry, (0.625, 0.625, 4, 4))
  np.testing.assert_allclose(
      av_localization.map_boxes(np.array([16, 16, 32, 48]), geometry),
      [6, 6, 16, 26],
  )
  # Stored at 40, resized to 48 for evaluation -> scale 0.75, offset 8.
  geometry = av_localization.crop_geometry((64, 64), (40, 40), 48, 32)
  np.testing.assert_allclose(
      av_localization.map_boxes(np.array([16, 16, 32, 48]), geometry),
      [4, 4, 16, 28],
  )
  hits, base = av_localization.pointing_hits(
      np.array([[5.0, 5.0], [20.0, 20.0]]),
      [
          np.array([[0, 0, 10, 10]]),
          np.array([[0, 0, 10, 10], [15, 15, 18, 18]]),
      ],
      32,
  )
  np.testing.assert_array_equal(hits, [True, False])
  np.testing.assert_array_equal(
      base, [False, True]
  )  # the centre (16, 16) is in box 2


class _CentreOracle(nn.Module):
  """A 'model' whose localisation map always peaks in the middle of the frame."""

  @nn.compact
  def __call__(self, image, spectrogram, train):
    del spectrogram, train
    b, s = image.shape[0], image.shape[1]
    yy, xx = jnp.mgrid[0:s, 0:s] + 0.5
    heat = -((yy - s / 2) ** 2 + (xx - s / 2) ** 2)
    return {"localization_map": jnp.broadcast_to(heat, (b, s, s))}


def test_av_localization_on_the_tiny_world(tmp_path, tiny_records, monkeypatch):
  config = tiny.tiny_config(tiny_records)
  config.task, config.model.name = "avol", "avol"
  eval_config = ml_collections.ConfigDict(
      dict(type="av_localization", picture_dir=str(tmp_path), num_pictures=4)
  )
  mesh = sharding.make_mesh()
  # Ground truth mapped into the crops lands on the objects: far from the background colour.
  evaluator = av_localization.Evaluator(
      config, eval_config, task=avol, model=_CentreOracle(), mesh=mesh
  )
  inputs = evaluator._load()  # pylint: disable=protected-access
  assert len(inputs) == 12 * 3  # 12 test clips of 3 s, 1 s windows
  inside, outside = [], []
  yy, xx = np.mgrid[0:32, 0:32] + 0.5
  for item in inputs:
    pixels = item["pixels"].astype(np.float64)
    distance = np.linalg.norm(
        pixels - np.median(pixels.reshape(-1, 3), 0), axis=-1
    )
    for x0, y0, x1, y1 in item["sounding"]:
      box = (xx >= x0) & (xx <= x1) & (yy >= y0) & (yy <= y1)
      inside.append(distance[box].mean())
      outside.append(distance[~box].mean())
  assert np.mean(inside) > 3 * np.mean(outside), (
      np.mean(inside),
      np.mean(outside),
  )
  # A map that always peaks at the centre scores the centre baseline (to a pixel's rounding).
  monkeypatch.setattr(
      state_lib,
      "random_init",
      lambda config, mesh=None, seed=0: (None, None, _state({"params": {}})),
  )
  results = dict(evaluator.run(_state({"params": {}}, step=5)))
  assert results["num_frames"] + results["num_skipped"] == 36
  assert (
      abs(results["pointing_accuracy"] - results["centre_baseline_accuracy"])
      <= 2 / 36
  )
  assert (
      results["random_init_pointing_accuracy"] == results["pointing_accuracy"]
  )
  assert results["picture"].shape == (128, 4 * 128 + 3 * 2, 3)
  assert (tmp_path / "av_localization_step_5.png").exists()
  # And an AVOL-Net's own map (random weights) goes through the same path.
  model = avol.build_model(config)
  net = av_localization.Evaluator(
      config,
      ml_collections.ConfigDict(
          dict(type="av_localization", random_init=False, num_pictures=0)
      ),
      task=avol,
      model=model,
      mesh=mesh,
  )
  net._inputs = inputs  # pylint: disable=protected-access
  got = dict(net.run(_state(_variables(avol, model, config))))
  assert 0.0 <= got["pointing_accuracy"] <= 1.0 and "picture" not in got
