"""The linear probe itself: NumPy features in, accuracy out (scikit-learn)."""

from typing import Sequence

import numpy as np
from sklearn import model_selection
from sklearn import pipeline
from sklearn import preprocessing
from sklearn import svm

from avself.evaluators import features as features_lib

DEFAULT_C = 0.01  # see make_probe and docs/evaluation.md

# Counts a probe reports when its split is suspect (see `check_split`); the
# evaluator yields them beside the accuracy, `avself.evaluate` prints them.
WARNING_METRICS = ("unseen_class_test_clips", "classes_short_of_labels")


def make_probe(C: float, seed: int = 0) -> pipeline.Pipeline:
  """z-score (fitted on whatever `fit` sees: the training windows) -> one-vs-all LinearSVC."""
  # liblinear picks the dual or primal solver ('auto'); C <= 0.01 converges
  # in a few hundred iterations on z-scored transfer features, large C may
  # not converge within max_iter (accuracy then hardly moves, time does).
  return pipeline.make_pipeline(
      preprocessing.StandardScaler(),
      svm.LinearSVC(C=C, max_iter=5_000, random_state=seed),
  )


def choose_C(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    Cs: Sequence[float],
    seed: int = 0,
) -> float:
  """C with the best window accuracy in a grouped (by clip) inner 3-fold CV on training data."""
  if len(Cs) == 1:
    return float(Cs[0])
  folds = min(3, len(np.unique(groups)))
  search = model_selection.GridSearchCV(
      make_probe(1.0, seed),
      {"linearsvc__C": list(Cs)},
      cv=model_selection.GroupKFold(n_splits=folds),
  )
  search.fit(x, y, groups=groups)
  return float(search.best_params_["linearsvc__C"])


def class_scores(probe: pipeline.Pipeline, x: np.ndarray) -> np.ndarray:
  """SVM scores [N, K] over `probe.classes_` (two classes give one column: expand it)."""
  scores = probe.decision_function(x)
  return np.stack([-scores, scores], axis=1) if scores.ndim == 1 else scores


def clip_predictions(
    scores: np.ndarray, video_index: np.ndarray, classes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
  """(predicted class per clip, clip ids): argmax of the mean of each clip's window scores."""
  mean_scores, videos = features_lib.per_video_mean(scores, video_index)
  return classes[np.argmax(mean_scores, axis=1)], videos


def clip_labels(labels: np.ndarray, video_index: np.ndarray) -> np.ndarray:
  """One label per clip, in `np.unique(video_index)` order."""
  _, first = np.unique(video_index, return_index=True)
  return labels[first]


def labelled_subset(data: dict, clips_per_class: int, seed: int = 0) -> dict:
  """The windows of at most `clips_per_class` clips of each class, drawn with `seed`.

  `data` as for `probe_accuracy`. The same seed and data give the same clips,
  so the trained and the random-init network are probed on the same labels.
  """
  videos = np.unique(data["video_index"])
  labels = clip_labels(data["label"], data["video_index"])
  rng = np.random.default_rng(seed)
  chosen = [
      rng.permutation(videos[labels == k])[:clips_per_class]
      for k in np.unique(labels)
  ]
  return _rows(data, np.isin(data["video_index"], np.concatenate(chosen)))


def check_split(train: dict, test: dict, clips_per_class: int = 0) -> dict:
  """What makes a probe's score on `test` mean less than it says.

  `train`, `test` as for `probe_accuracy` (before any `labelled_subset`).
  Raises ValueError where no score means anything: fewer than 2 classes
  with training clips, or no test clip of a class that has any (every
  prediction is then wrong, for trained and random features alike). Returns
  {unseen_class_test_clips: test clips whose class has no training clip
  (always mispredicted: they cap the accuracy), classes_short_of_labels:
  classes with fewer training clips than `clips_per_class` asked for,
  warnings: one sentence for each nonzero count}.
  """
  train_labels = clip_labels(train["label"], train["video_index"])
  test_labels = clip_labels(test["label"], test["video_index"])
  classes, counts = np.unique(train_labels, return_counts=True)
  if len(classes) < 2:
    raise ValueError(
        f"linear probe: the training split has clips of {len(classes)} "
        f"class(es) {classes.tolist()}; a classifier needs at least 2"
    )
  unseen = ~np.isin(test_labels, classes)
  missing = np.unique(test_labels[unseen])
  if len(test_labels) and unseen.all():
    raise ValueError(
        f"linear probe: no test clip is of a class with training clips "
        f"(test classes {missing.tolist()}, training classes "
        f"{classes.tolist()}); every prediction would be wrong, so the "
        "score would be 0 for any features. Are the splits or labels swapped?"
    )
  warnings = []
  if unseen.any():
    warnings.append(
        f"{int(unseen.sum())} of {len(test_labels)} test clips are of classes "
        f"{missing.tolist()} that have no training clips: they are always "
        f"mispredicted, so accuracy is at most {1 - unseen.mean():.3f}"
    )
  short = classes[counts < clips_per_class] if clips_per_class else classes[:0]
  if len(short):
    fewest = int(counts.min())
    warnings.append(
        f"{len(short)} of {len(classes)} classes have fewer training clips "
        f"than the {clips_per_class} per class asked for (fewest: {fewest}, "
        f"classes {short.tolist()}): those use all they have"
    )
  return {
      "unseen_class_test_clips": int(unseen.sum()),
      "classes_short_of_labels": len(short),
      "warnings": warnings,
  }


def probe_accuracy(
    train: dict,
    test: dict,
    *,
    C: float = DEFAULT_C,
    Cs: Sequence[float] = (),
    seed: int = 0,
    clips_per_class: int = 0,
) -> dict:
  """Fits on `train` windows, scores clips of `test`.

  `train`, `test`: {features [N, D], label [N], video_index [N]}. With `Cs`
  given, C is chosen from them by `choose_C`, else `C` is used. With
  `clips_per_class` > 0 only that many training clips of each class are used
  (`labelled_subset`). The split is checked first (`check_split`: raises
  where no score means anything). Returns {accuracy, C, num_test_clips,
  num_train_clips, probe (the fitted sklearn pipeline)} and `check_split`'s
  counts and warnings.
  """
  checks = check_split(train, test, clips_per_class)
  if clips_per_class:
    train = labelled_subset(train, clips_per_class, seed)
  x = train["features"].reshape(len(train["features"]), -1)
  if Cs:
    C = choose_C(x, train["label"], train["video_index"], Cs, seed)
  probe = make_probe(C, seed).fit(x, train["label"])
  scores = class_scores(
      probe, test["features"].reshape(len(test["features"]), -1)
  )
  predicted, _ = clip_predictions(scores, test["video_index"], probe.classes_)
  truth = clip_labels(test["label"], test["video_index"])
  return {
      "accuracy": float(np.mean(predicted == truth)),
      "C": float(C),
      "num_test_clips": len(truth),
      "num_train_clips": len(np.unique(train["video_index"])),
      "probe": probe,
      **checks,
  }


def _rows(data: dict, keep: np.ndarray) -> dict:
  return {k: v[keep] for k, v in data.items()}


def episodes_accuracy(
    train: dict,
    test: dict,
    *,
    episodes: int,
    clips_per_class: int,
    seed: int = 0,
    **probe_kwargs,
) -> dict:
  """Mean accuracy over `episodes` draws (seeds seed, seed + 1, ...) of the labelled clips.

  Few labelled clips per class make one draw's accuracy depend on which clips
  were drawn; the mean over draws (each scored on all of `test`) does not, and
  `accuracy_std` says how much one draw varies.
  """
  if episodes < 1 or clips_per_class < 1:
    raise ValueError(
        f"episodes ({episodes}) and clips_per_class ({clips_per_class}) "
        "must be >= 1"
    )
  runs = [
      probe_accuracy(
          train,
          test,
          seed=seed + e,
          clips_per_class=clips_per_class,
          **probe_kwargs,
      )
      for e in range(episodes)
  ]
  accuracies = [r["accuracy"] for r in runs]
  return {
      "accuracy": float(np.mean(accuracies)),
      "accuracy_std": float(np.std(accuracies)),
      "episode_accuracies": accuracies,
      "num_episodes": episodes,
      "C": runs[0]["C"],
      "num_test_clips": runs[0]["num_test_clips"],
      "num_train_clips": runs[0]["num_train_clips"],
      **{k: runs[0][k] for k in (*WARNING_METRICS, "warnings")},
  }


def cross_validate(data: dict, folds: np.ndarray, **probe_kwargs) -> dict:
  """Mean clip accuracy over folds (each fold tests once, the others train).

  `data` as for `probe_accuracy`; `folds` [N] is each window's fold.
  """
  accuracies, clips, results = [], 0, []
  for fold in np.unique(folds):
    result = probe_accuracy(
        _rows(data, folds != fold), _rows(data, folds == fold), **probe_kwargs
    )
    accuracies.append(result["accuracy"])
    clips += result["num_test_clips"]
    results.append(result)
  return {
      "unseen_class_test_clips": sum(
          r["unseen_class_test_clips"] for r in results
      ),
      "classes_short_of_labels": max(
          r["classes_short_of_labels"] for r in results
      ),
      "warnings": [
          f"fold {fold}: {w}"
          for fold, r in zip(np.unique(folds), results)
          for w in r["warnings"]
      ],
      "accuracy": float(np.mean(accuracies)),
      "accuracy_std": float(np.std(accuracies)),
      "fold_accuracies": accuracies,
      "num_folds": len(accuracies),
      "num_test_clips": clips,
  }
