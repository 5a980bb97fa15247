"""Cross-modal and within-modal retrieval: nDCG@k and recall@k in four directions.

Items come from the evaluation split's clips (the pipeline's finite `clips`
mode: every 1 s window of every video with its centre frame). With
`level='video'` (default) each video is ONE item: its audio embedding is the
mean of its windows' embeddings (re-normalised) and its image embedding is the
middle window's centre frame, i.e. the frame nearest the clip's middle. With
`level='window'` each window is an item.

Directions: image->image, image->audio, audio->image, audio->audio. Queries
run against every item of the target modality except, within a modality, the
query itself (video level) or every window of the query's own video (window
level, whose other windows would be trivial near-duplicates).

Metrics per direction (AVE-Net, Arandjelović & Zisserman 2018, Table 3):
  ndcg@k        sklearn's nDCG over the top k (k = 30 in the paper); relevance
                1 for the query's class, 0 otherwise, or graded from an
                ontology distance matrix (`eval_config.ontology`, a .npy [C, C]):
                relevance = 1 - d(c_q, c_item) / max(d).
  recall@k      fraction of queries with a same-class item in the top k.
  instance_recall@k (cross-modal only) fraction of queries whose own partner
                (the same video's / window's other modality) is in the top k:
                Surís et al. 2018's measure.
Queries without a class (label -1) or without any relevant item are skipped.
Every metric is also reported for a random-init network of the same config
(`random_init_` prefix, computed once), so learning is measured, not assumed.

Optional `probe` (default on): a logistic-regression probe (sklearn,
standardised features, L2, C = 1) trained on the train split's window
embeddings and scored on the evaluation split's windows, per modality:
`probe/{vision,audio}_accuracy`, beside the random-init net's and the
majority-class rate. (A stand-in until evaluators/linear_probe.py serves
every task.)

Picture: the top results of a few queries per direction, frames as
thumbnails and sounds as log-spectrogram thumbnails, green = same class; it is
yielded as `picture` (TensorBoard) and written by process 0 to
`<picture_dir or workdir/pictures>/retrieval_step_<N>.png`.
"""

import functools
import os
from typing import Optional

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from avself import pictures
from avself.evaluators import features

DIRECTIONS = (
    ("image", "image"),
    ("image", "audio"),
    ("audio", "image"),
    ("audio", "audio"),
)
_EXCLUDED = -1e9  # score of an excluded item: below every cosine


# ### Metrics (pure numpy) #####################################################


def relevance_matrix(
    query_labels, item_labels, ontology: Optional[np.ndarray] = None
):
  """[Nq, Nd] relevance: same class = 1 (graded by the ontology if given); label -1 = 0."""
  q = np.asarray(query_labels)[:, None]
  d = np.asarray(item_labels)[None, :]
  known = (q >= 0) & (d >= 0)
  if ontology is None:
    rel = (q == d).astype(np.float64)
  else:
    dist = np.asarray(ontology, np.float64)
    scale = dist.max() if dist.max() > 0 else 1.0
    rel = 1.0 - dist[np.maximum(q, 0), np.maximum(d, 0)] / scale
  return np.where(known, rel, 0.0)


def ndcg_at_k(scores: np.ndarray, relevance: np.ndarray, k: int) -> float:
  """Mean nDCG@k over queries with any relevant item (sklearn.metrics.ndcg_score)."""
  from sklearn.metrics import ndcg_score  # pylint: disable=g-import-not-at-top

  rows = relevance.max(axis=1) > 0
  if not rows.any():
    return float("nan")
  return float(ndcg_score(relevance[rows], scores[rows], k=k))


def recall_at_k(scores: np.ndarray, relevant: np.ndarray, k: int) -> float:
  """Fraction of queries (with any relevant item) that have one in their top k."""
  rows = relevant.any(axis=1)
  if not rows.any():
    return float("nan")
  # Stable sort on -score: ties keep item order, so the number is deterministic.
  top = np.argsort(-scores[rows], axis=1, kind="stable")[:, :k]
  return float(
      np.take_along_axis(relevant[rows], top, axis=1).any(axis=1).mean()
  )


def retrieval_metrics(
    query,
    items,
    query_labels,
    item_labels,
    *,
    exclude=None,
    partner: bool = False,
    k: int = 30,
    recall_ks=(1, 5, 10),
    ontology=None,
) -> dict:
  """nDCG@k, recall@k (and instance_recall@k when item i is query i's partner).

  query [Nq, D] and items [Nd, D] are unit-norm embeddings (score = cosine);
  `exclude` [Nq, Nd] bool marks items that are not candidates for a query
  (they score below everything and count as irrelevant).
  """
  scores = (
      np.asarray(query, np.float64) @ np.asarray(items, np.float64).T
  )  # [Nq, Nd]
  relevance = relevance_matrix(query_labels, item_labels, ontology)
  if exclude is not None:
    scores = np.where(exclude, _EXCLUDED, scores)
    relevance = np.where(exclude, 0.0, relevance)
  relevant = relevance_matrix(query_labels, item_labels) > 0  # same class
  if exclude is not None:
    relevant &= ~exclude
  out = {f"ndcg@{k}": ndcg_at_k(scores, relevance, k)}
  for r in recall_ks:
    out[f"recall@{r}"] = recall_at_k(scores, relevant, r)
  if partner:
    own = np.eye(len(scores), scores.shape[1], dtype=bool)
    for r in recall_ks:
      out[f"instance_recall@{r}"] = recall_at_k(scores, own, r)
  return out


def all_directions(
    items: dict, *, k: int = 30, recall_ks=(1, 5, 10), ontology=None
) -> dict:
  """`{direction/metric: value}` for the four directions over `items` (see `retrieval_items`)."""
  out = {}
  same_video = items["video_index"][:, None] == items["video_index"][None, :]
  for source, target in DIRECTIONS:
    name = f"{source}_to_{target}"
    within = source == target
    metrics = retrieval_metrics(
        items[source],
        items[target],
        items["label"],
        items["label"],
        exclude=same_video if within else None,
        partner=not within,
        k=k,
        recall_ks=recall_ks,
        ontology=ontology,
    )
    out.update({f"{name}/{m}": v for m, v in metrics.items()})
  return out


def _unit(x: np.ndarray) -> np.ndarray:
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def retrieval_items(feats: dict, level: str) -> dict:
  """Window features -> items: image, audio [N, D] (unit), label, video_index, thumbnails.

  `video`: audio = mean of the windows' embeddings, image (and thumbnails) =
  the middle window's (its centre frame is the clip's middle frame).
  """
  if level == "window":
    keys = (
        "image",
        "audio",
        "label",
        "video_index",
        "image_thumb",
        "audio_thumb",
    )
    return {k: feats[k] for k in keys if k in feats}
  if level != "video":
    raise ValueError(f"retrieval level={level!r}: use 'video' or 'window'")
  videos, inverse = np.unique(feats["video_index"], return_inverse=True)
  order = np.lexsort((feats["window_start"], inverse))  # by video, then time
  counts = np.bincount(inverse, minlength=len(videos))
  middle = order[np.cumsum(counts) - counts + counts // 2]  # [V] window index
  audio, _ = features.per_video_mean(feats["audio"], feats["video_index"])
  out = {
      "image": feats["image"][middle],
      "audio": _unit(audio.astype(np.float32)),
      "label": feats["label"][middle],
      "video_index": videos,
  }
  for k in ("image_thumb", "audio_thumb"):
    if k in feats:
      out[k] = feats[k][middle]
  return out


# ### Probe ####################################################################


def probe_accuracy(train_x, train_y, test_x, test_y) -> float:
  """Held-out accuracy of a standardised L2 logistic regression (labels -1 dropped)."""
  from sklearn.linear_model import LogisticRegression  # pylint: disable=g-import-not-at-top
  from sklearn.pipeline import make_pipeline  # pylint: disable=g-import-not-at-top
  from sklearn.preprocessing import StandardScaler  # pylint: disable=g-import-not-at-top

  train, test = train_y >= 0, test_y >= 0
  if len(np.unique(train_y[train])) < 2 or not test.any():
    return float("nan")
  clf = make_pipeline(
      StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)
  )
  clf.fit(train_x[train], train_y[train])
  return float(clf.score(test_x[test], test_y[test]))


# ### Pictures #################################################################


def _tiles(items: dict, modality: str, indices, size: int) -> list:
  if modality == "image":
    return [
        pictures.image_thumbnail(items["image_thumb"][i], size) for i in indices
    ]
  return [
      pictures.spectrogram_thumbnail(items["audio_thumb"][i], size)
      for i in indices
  ]


def retrieval_picture(
    items: dict, *, num_queries: int = 2, top_k: int = 5, size: int = 48
) -> np.ndarray:
  """Grid uint8 [4 * num_queries * cell, (top_k + 1) * cell + gap, 3]: per direction, queries and their top_k."""
  n = len(items["label"])
  # Queries spread over the label-sorted items, so the rows show different classes.
  queries = np.argsort(items["label"], kind="stable")[
      np.linspace(0, n - 1, num_queries).round().astype(int)
  ]
  same_video = items["video_index"][:, None] == items["video_index"][None, :]
  rows = []
  for source, target in DIRECTIONS:
    scores = items[source] @ items[target].T
    if source == target:
      scores = np.where(same_video, _EXCLUDED, scores)
    for q in queries:
      top = np.argsort(-scores[q], kind="stable")[:top_k]
      rows.append(
          (
              _tiles(items, source, [q], size)[0],
              _tiles(items, target, top, size),
              [items["label"][i] == items["label"][q] for i in top],
          )
      )
  return pictures.retrieval_grid(rows)


# ### The evaluator ############################################################


def _embedding(out: dict) -> jnp.ndarray:
  """A tower's unit embedding [B, D]: AVE-Net's, AVOL's mean-pooled map, or L3's pooled trunk."""
  if "embedding" in out:
    e = out["embedding"]
  elif "embedding_map" in out:
    e = jnp.mean(out["embedding_map"], axis=(1, 2))
  else:
    e = out["pooled"]
  e = e.astype(jnp.float32)
  return e / jnp.maximum(jnp.linalg.norm(e, axis=-1, keepdims=True), 1e-12)


def embed_fn(model, variables, batch, *, thumbnail: int = 0) -> dict:
  """Window -> image / audio embeddings [B, D] (+ small input thumbnails for pictures)."""
  vision = model.apply(
      variables, batch["image"], method=lambda m, x: m.embed_vision(x, False)
  )
  audio = model.apply(
      variables, batch["audio"], method=lambda m, x: m.embed_audio(x, False)
  )
  out = {"image": _embedding(vision), "audio": _embedding(audio)}
  if thumbnail:
    b = batch["image"].shape[0]
    # Downsized on device so that the host keeps ~10 kB per window, not the inputs.
    out["image_thumb"] = jax.image.resize(
        batch["image"], (b, thumbnail, thumbnail, 3), "linear"
    )
    out["audio_thumb"] = jax.image.resize(
        batch["audio"][..., 0], (b, thumbnail, thumbnail), "linear"
    )
  return out


class Evaluator:
  """Retrieval in four directions on `split` (default config.data.eval_split).

  Attributes (eval_config): k (30), recall_ks ((1, 5, 10)), level ('video' |
  'window'), ontology ('' or a .npy [C, C] class distance matrix), probe
  (True), random_init (True), batch_size (config.batch_size), picture_queries
  (2 per direction; 0 = no picture), picture_top_k (5), thumbnail (48 px),
  picture_dir ('' = `workdir/pictures` when the loop passes a workdir).
  """

  def __init__(
      self,
      config,
      eval_config,
      *,
      task,
      model,
      mesh,
      workdir: Optional[str] = None,
  ):
    del task
    self.config, self.model, self.mesh = config, model, mesh
    self.split = eval_config.get("split") or config.data.eval_split
    self.k = int(eval_config.get("k", 30))
    self.recall_ks = tuple(eval_config.get("recall_ks", (1, 5, 10)))
    self.level = eval_config.get("level", "video")
    ontology = eval_config.get("ontology") or ""
    self.ontology = np.load(ontology) if ontology else None
    self.probe = bool(eval_config.get("probe", True))
    self.random_init = bool(eval_config.get("random_init", True))
    self.batch = int(eval_config.get("batch_size") or config.batch_size)
    self.num_queries = int(eval_config.get("picture_queries", 2))
    self.top_k = int(eval_config.get("picture_top_k", 5))
    self.thumbnail = (
        int(eval_config.get("thumbnail", 48)) if self.num_queries else 0
    )
    picture_dir = eval_config.get("picture_dir") or ""
    self.picture_dir = picture_dir or (
        os.path.join(workdir, "pictures") if workdir else ""
    )
    self._feature_fn = features.make_feature_fn(
        functools.partial(embed_fn, thumbnail=self.thumbnail), model, mesh
    )
    self._baseline = None  # The random-init numbers, computed on the first run.

  def _extract(self, variables, split: str) -> dict:
    return features.extract(
        self._feature_fn,
        variables,
        self.config.data,
        split,
        self.batch,
        self.mesh,
    )

  def _scores(self, variables) -> tuple[dict, dict]:
    """(metrics, items) of one network."""
    feats = self._extract(variables, self.split)
    items = retrieval_items(feats, self.level)
    metrics = all_directions(
        items, k=self.k, recall_ks=self.recall_ks, ontology=self.ontology
    )
    if self.probe:
      train = self._extract(variables, self.config.data.train_split)
      for modality, name in (("image", "vision"), ("audio", "audio")):
        metrics[f"probe/{name}_accuracy"] = probe_accuracy(
            train[modality], train["label"], feats[modality], feats["label"]
        )
      labels = feats["label"][feats["label"] >= 0]
      metrics["probe/majority_rate"] = (
          float(np.bincount(labels).max() / len(labels))
          if len(labels)
          else float("nan")
      )
    metrics["num_items"] = float(len(items["label"]))
    return metrics, items

  def _random_init_scores(self) -> dict:
    from avself import state as state_lib  # pylint: disable=g-import-not-at-top

    _, _, state = state_lib.random_init(self.config, mesh=self.mesh)
    metrics, _ = self._scores({"params": state.params, **state.model_state})
    return metrics

  def run(self, state):
    """Yields `{direction}/{metric}`, `{direction}/random_init_{metric}`, probe numbers, `picture`."""
    metrics, items = self._scores({"params": state.params, **state.model_state})
    if self.random_init and self._baseline is None:
      self._baseline = self._random_init_scores()
    for name, value in metrics.items():
      yield name, value
      if (
          self._baseline is not None
          and name in self._baseline
          and name != "num_items"
          and not name.endswith("majority_rate")
      ):
        head, _, metric = name.rpartition("/")
        yield f"{head}/random_init_{metric}", self._baseline[name]
    if self.num_queries:
      picture = retrieval_picture(
          items,
          num_queries=self.num_queries,
          top_k=self.top_k,
          size=self.thumbnail,
      )
      if self.picture_dir and jax.process_index() == 0:
        path = os.path.join(
            self.picture_dir, f"retrieval_step_{int(state.step)}.png"
        )
        pictures.save_png(picture, path)
        logging.info("Retrieval picture: %s", path)
      yield "picture", picture
