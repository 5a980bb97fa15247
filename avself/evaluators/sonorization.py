"""How close the sound made for held-out silent clips is to their true sound.

Clips of the evaluation split (pipeline mode 'clip', fixed seed, centre
crops) go through the net; its predicted log mel bands make a sound in each
way (`avself.synthesis`), scored with two baselines, five sources in all:

  predicted     the predicted features themselves
  example       example-based: nearest training segments' sound, re-analysed
  parametric    Griffin-Lim of the predicted features, re-analysed
  mean_sound    the mean training sound (the mean training feature vector)
  random_clip   a random training clip's sound (seeded, same length)

and for each (as `<source>/<metric>`):

  onset_f1            onsets detected in its features vs in the true sound's
                      (`synthesis.onsets`), matched within `onset_tolerance`
                      s, F1 over all clips' onsets
  class_accuracy      the class an audio classifier (z-scored band means
                      and deviations, logistic regression) trained on the
                      training split's real sounds (clips of the same length
                      from the index) gives it, vs the clip's label
  spectral_distance   RMS difference of the log mel bands to the true sound's,
                      in dB
  envelope_correlation  Pearson correlation of the loudness per step (log of
                      the total mel power) with the true sound's, mean over
                      clips (the speaking world's measure)

Also `class_accuracy_real` (the classifier on the true sounds: how well the
classes can be heard at all) and `chance` (1 / classes). A picture: the
example-based sound's confusion matrix (rows: true class) beside the
predicted and true bands of the first clips; to TensorBoard and
`picture_dir/sonorization_step_<N>.png` when `picture_dir` is set.
"""

import os

from absl import logging
import jax
import numpy as np

from avself import pictures
from avself import synthesis
from avself.data import pipeline

SOURCES = ("predicted", "example", "parametric", "mean_sound", "random_clip")


def summary_features(features: np.ndarray) -> np.ndarray:
  """[..., T, M] -> [..., 2 M]: each band's mean and standard deviation over time."""
  return np.concatenate([features.mean(-2), features.std(-2)], axis=-1)


def train_classifier(index: synthesis.ExampleIndex, length: int, seed: int = 0):
  """Logistic regression on the real sounds of the training videos, clips of `length` steps."""
  from sklearn import linear_model  # pylint: disable=g-import-not-at-top
  from sklearn import pipeline as sk_pipeline  # pylint: disable=g-import-not-at-top
  from sklearn import preprocessing  # pylint: disable=g-import-not-at-top

  x, y = [], []
  for v in range(index.num_videos):
    if index.labels[v] < 0:
      continue
    f = index.video_features(v)
    for a in range(0, len(f) - length + 1, max(1, length // 2)):
      x.append(summary_features(f[a : a + length]))
      y.append(index.labels[v])
  if len(set(y)) < 2:
    return None
  model = sk_pipeline.make_pipeline(
      preprocessing.StandardScaler(),
      linear_model.LogisticRegression(max_iter=2000, random_state=seed),
  )
  return model.fit(np.asarray(x), np.asarray(y))


def confusion(true: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
  """Row-normalised confusion matrix [k, k] (rows: true class)."""
  m = np.zeros((k, k), np.float64)
  np.add.at(m, (true, predicted), 1.0)
  return m / np.maximum(m.sum(1, keepdims=True), 1.0)


def confusion_picture(matrix: np.ndarray, cell: int = 12) -> np.ndarray:
  """[k, k] in [0, 1] -> uint8 RGB, `cell` pixels per entry."""
  return pictures.upscale(pictures.colormap(matrix), cell)


def bands_picture(rows: list, height: int = 64, width: int = 192):
  """[(predicted [T, M], true [T, M]), ...] -> a column of pairs, low bands at the bottom."""
  tiles = []
  lo = min(min(p.min(), t.min()) for p, t in rows)
  hi = max(max(p.max(), t.max()) for p, t in rows)
  for p, t in rows:
    pair = [
        pictures.resize(
            pictures.colormap((f.T[::-1] - lo) / max(hi - lo, 1e-6)),
            height,
            width,
        )
        for f in (p, t)
    ]
    tiles.append(pictures.tile_row(pair, gap=4))
  gap = np.full((4, tiles[0].shape[1], 3), 255, np.uint8)
  out = [tiles[0]]
  for t in tiles[1:]:
    out += [gap, t]
  return np.concatenate(out)


class Evaluator:
  """Attributes (eval_config): split (config.data.eval_split), num_clips (192),
  seed (0), batch_size (config.batch_size), segment_steps (example-based
  segment, default config.sonorize.segment_steps), onset_threshold (0.5 nats of mean band
  rise), onset_tolerance (0.1 s), griffin_lim_iterations (32; 0: no
  parametric source), picture_dir ('').
  """

  def __init__(self, config, eval_config, *, task, model, mesh):
    del mesh
    self.config, self.task, self.model = config, task, model
    self.spec = synthesis.feature_spec(config)
    self.split = eval_config.get("split") or config.data.eval_split
    self.num_clips = int(eval_config.get("num_clips") or 192)
    self.seed = int(eval_config.get("seed") or 0)
    self.batch = int(eval_config.get("batch_size") or config.batch_size)
    self.segment = int(
        eval_config.get("segment_steps")
        or config.sonorize.get("segment_steps")
        or 5 * self.spec.steps_per_frame
    )
    self.threshold = float(eval_config.get("onset_threshold", 0.5))
    self.tolerance = float(eval_config.get("onset_tolerance", 0.1))
    self.iterations = int(eval_config.get("griffin_lim_iterations", 32))
    self.picture_dir = eval_config.get("picture_dir") or ""
    self._predict = jax.jit(
        lambda variables, video: task.predict(model, variables, video)
    )
    self._index = None
    self._classifier = None

  def clips(self, state):
    """(predicted [K, T, M], true [K, T, M], labels [K]) of `num_clips` clips."""
    variables = {"params": state.params, **state.model_state}
    ds = pipeline.make_dataset(
        self.config.data,
        mode="clip",
        split=self.split,
        batch_size=self.batch,
        train=False,
        seed=self.seed,
    )
    predicted, true, labels = [], [], []
    for batch in ds.as_numpy_iterator():
      predicted.append(np.asarray(self._predict(variables, batch["video"])))
      true.append(
          synthesis.log_mel(batch["waveform"].mean(-1), self.spec)[
              :, : predicted[-1].shape[1]
          ]
      )
      labels.append(batch["class_label"])
      if sum(len(p) for p in predicted) >= self.num_clips:
        break
    cut = lambda xs: np.concatenate(xs)[: self.num_clips]
    return cut(predicted), cut(true), cut(labels)

  def sources(self, predicted: np.ndarray) -> dict:
    """{source: features [K, T, M]} of each way of making the sound."""
    index = self._index
    k, length, _ = predicted.shape
    out = {"predicted": predicted}
    example = [index.synthesize(p, self.segment)[0] for p in predicted]
    out["example"] = synthesis.log_mel(np.stack(example), self.spec)
    if self.iterations:
      waves = [
          synthesis.griffin_lim(p, self.spec, self.iterations)
          for p in predicted
      ]
      out["parametric"] = synthesis.log_mel(np.stack(waves), self.spec)
    out["mean_sound"] = np.broadcast_to(
        index.features.mean(0), predicted.shape
    ).copy()
    rng = np.random.default_rng(self.seed)
    firsts = rng.choice(index.candidates(length), size=k)
    out["random_clip"] = np.stack(
        [index.features[f : f + length] for f in firsts]
    )
    return out

  def run(self, state):
    """Yields `<source>/<metric>` for every source, the real-sound accuracy, chance and a picture."""
    if self._index is None:
      self._index = synthesis.ExampleIndex.load(self.config.sonorize.index)
    predicted, true, labels = self.clips(state)
    length = predicted.shape[1]
    if self._classifier is None:
      self._classifier = train_classifier(self._index, length, self.seed)
    classes = int(max(self._index.labels.max(), labels.max()) + 1)
    true_onsets = [synthesis.onsets(t, self.spec, self.threshold) for t in true]
    judged = {}
    labelled = labels >= 0
    if self._classifier is not None:
      real = self._classifier.predict(summary_features(true))
      yield "class_accuracy_real", float(
          np.mean(real[labelled] == labels[labelled])
      )
      yield "chance", 1.0 / classes
    for name, feats in self.sources(predicted).items():
      hits = num_predicted = num_true = 0
      for f, truth in zip(feats, true_onsets):
        found = synthesis.onsets(f, self.spec, self.threshold)
        hits += synthesis.match_onsets(found, truth, self.tolerance)
        num_predicted += len(found)
        num_true += len(truth)
      yield f"{name}/onset_f1", synthesis.f1(hits, num_predicted, num_true)
      if self._classifier is not None:
        judged[name] = self._classifier.predict(summary_features(feats))
        yield f"{name}/class_accuracy", float(
            np.mean(judged[name][labelled] == labels[labelled])
        )
      db = 10.0 / np.log(10.0)
      yield f"{name}/spectral_distance", float(
          db * np.sqrt(np.mean((feats - true) ** 2))
      )
      yield f"{name}/envelope_correlation", float(
          np.mean(
              [
                  synthesis.correlation(
                      synthesis.envelope(f), synthesis.envelope(t)
                  )
                  for f, t in zip(feats, true)
              ]
          )
      )
    yield "num_clips", float(len(predicted))
    if "example" in judged and labelled.any():
      matrix = confusion(labels[labelled], judged["example"][labelled], classes)
      left = confusion_picture(matrix)
      right = bands_picture(
          [(predicted[i], true[i]) for i in range(min(3, len(true)))]
      )
      h = max(left.shape[0], right.shape[0])
      pad = lambda x: np.pad(
          x, ((0, h - x.shape[0]), (0, 0), (0, 0)), constant_values=255
      )
      picture = np.concatenate(
          [pad(left), np.full((h, 8, 3), 255, np.uint8), pad(right)], axis=1
      )
      if self.picture_dir and jax.process_index() == 0:
        path = os.path.join(
            self.picture_dir, f"sonorization_step_{int(state.step)}.png"
        )
        pictures.save_png(picture, path)
        logging.info("Sonorization picture (confusion, bands): %s", path)
      yield "picture", picture
