"""Linear probes on frozen transfer features, beside a random-init network.

The protocol of L3-Net (Arandjelović & Zisserman 2017, Sec. 4):
  audio   conv4_2 before the ReLU, max-pooled to 4x3xC (6144-D at full
          width), one vector per 1 s window (`l3.audio_transfer_features`);
  vision  conv4_2 after the ReLU, max-pooled to 4x4xC (8192-D), one vector
          per frame (the centre frame of each window; `vision_transfer_features`).
Each window carries its clip's label. Features are z-scored with statistics
of the training windows only, a one-vs-all linear SVM (scikit-learn
`LinearSVC`) is fitted on the training windows, and a clip's class scores are
the mean of its windows' SVM scores; accuracy is over clips.

Data (`eval_config.source`):
  'records'  the run's own records (`config.data.path`), pipeline `clips` mode:
             `train_split` fits, `test_split` scores (labels = record classes).
  'tfds'     a probe dataset via `avself.datasets.load_probe_dataset`: audio
             resampled to `config.data.sample_rate`, cut into windows of
             `data.audio_seconds` every `hop_seconds`, spectrograms as in
             training; k-fold cross-validation by `fold` where the dataset
             defines folds (ESC-50, DCASE 2013: 5), else train/test splits.

Every probe also runs on a randomly initialised network of the same config
(`train.random_init`), the paper's "ours random" row: `random_init_accuracy`.
Its BatchNorm layers keep their initial running statistics (mean 0, var 1),
so they pass activations through nearly unchanged and its features have an
arbitrary scale; the trained net uses its checkpoint's statistics. Neither is
re-estimated: at conv4_2 a per-channel scale and offset is exactly what the
per-dimension z-scoring removes (earlier layers' statistics do change what
passes their ReLUs, which is part of what "random" means here).
"""

import functools
import json
import os
from typing import Optional, Sequence

import jax
import numpy as np
from sklearn import model_selection
from sklearn import pipeline
from sklearn import preprocessing
from sklearn import svm

from avself import sharding
from avself.evaluators import features as features_lib

MODALITIES = ("audio", "vision")
DEFAULT_C = 0.01  # see make_probe and docs/evaluation.md


################################################################################
# The probe itself: NumPy features in, accuracy out.
################################################################################


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
  (`labelled_subset`). Returns {accuracy, C, num_test_clips,
  num_train_clips, probe} (the fitted sklearn pipeline).
  """
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
  }


def cross_validate(data: dict, folds: np.ndarray, **probe_kwargs) -> dict:
  """Mean clip accuracy over folds (each fold tests once, the others train).

  `data` as for `probe_accuracy`; `folds` [N] is each window's fold.
  """
  accuracies, clips = [], 0
  for fold in np.unique(folds):
    result = probe_accuracy(
        _rows(data, folds != fold), _rows(data, folds == fold), **probe_kwargs
    )
    accuracies.append(result["accuracy"])
    clips += result["num_test_clips"]
  return {
      "accuracy": float(np.mean(accuracies)),
      "accuracy_std": float(np.std(accuracies)),
      "fold_accuracies": accuracies,
      "num_folds": len(accuracies),
      "num_test_clips": clips,
  }


################################################################################
# Frozen features.
################################################################################


def transfer_features(
    model, variables, batch, *, modalities: Sequence[str]
) -> dict:
  """{'<modality>': transfer features [B, D] float32} from the trunks' conv4_2."""
  from avself.models import l3  # pylint: disable=g-import-not-at-top

  out = {}
  if "audio" in modalities:
    trunk = model.apply(variables, batch["audio"], method=model.embed_audio)
    # A trunk that defines its own transfer features (SoundNet) gives them.
    out["audio"] = trunk.get("transfer", None)
    if out["audio"] is None:
      out["audio"] = l3.audio_transfer_features(trunk)
  if "vision" in modalities:
    trunk = model.apply(variables, batch["image"], method=model.embed_vision)
    out["vision"] = l3.vision_transfer_features(trunk)
  return out


def _per_network(model, variables_by_net: dict, batch, *, modalities) -> dict:
  """Features of several networks (same model, different variables) in one pass."""
  return {
      f"{net}/{name}": value
      for net, variables in variables_by_net.items()
      for name, value in transfer_features(
          model, variables, batch, modalities=modalities
      ).items()
  }


def variables_of(state) -> dict:
  """Flax variables {'params', 'batch_stats', ...} of a train state."""
  return {"params": state.params, **state.model_state}


# One random-init network per process, shared by the probes of an evaluation
# (audio and vision score the same baseline net, initialised once).
_RANDOM_INIT: dict = {}


def _network_key(config) -> str:
  """What decides the random network: the task, the model config, the input shapes."""
  from avself import train  # pylint: disable=g-import-not-at-top

  inputs = {
      k: v.shape
      for k, v in train.get_task(config.task).dummy_batch(config, 1).items()
  }
  return json.dumps(
      {"task": config.task, "model": config.model.to_dict(), "inputs": inputs},
      sort_keys=True,
      default=str,
  )


def random_init_variables(config, seed: int, mesh) -> dict:
  """Variables of `train.random_init(config, seed)`, the paper's "ours random" net."""
  key = (_network_key(config), seed, mesh)
  if key not in _RANDOM_INIT:
    from avself import train  # pylint: disable=g-import-not-at-top

    _RANDOM_INIT.clear()  # hold one network at most
    _, _, state = train.random_init(config, mesh=mesh, seed=seed)
    _RANDOM_INIT[key] = variables_of(state)
  return _RANDOM_INIT[key]


################################################################################
# The evaluator.
################################################################################


class Evaluator:
  """Linear-probe accuracy of the trained and of a random-init network.

  Attributes (from `eval_config`):
    modality: 'audio' or 'vision'.
    source: 'records' (default) or 'tfds'.
    train_split, test_split: records: default config.data.train_split /
      eval_split; tfds: 'train' / '' (no test split: cross-validate by fold).
    dataset, data_dir, manual_dir: the TFDS dataset (source 'tfds').
    hop_seconds: tfds window hop (default: config.data.audio_seconds).
    C: the SVM's C (default 0.01).
    Cs: candidates for C, chosen by a grouped inner 3-fold CV on the
      training windows; empty (default): use `C`.
    random_init: also probe a random-init network (default True).
    random_seed: its initialisation seed (default 0).
    batch_size: global batch for feature extraction (default config.batch_size).
    train_clips_per_class: fit on at most this many labelled clips of each
      class, drawn with seed 0 (default 0: all), as small labelled sets
      (ESC-50: 32 per class per training fold; DCASE 2013: 8) beside a large
      unlabelled pretraining set.
    episodes: with train_clips_per_class, fit this many times on different
      draws of the labelled clips (seeds 0, 1, ...) and report the mean
      accuracy (default 1); `accuracy_std` and `random_init_accuracy_std`
      are over episodes.
  """

  def __init__(self, config, eval_config, *, task, model, mesh):
    del task
    self.config, self.model, self.mesh = config, model, mesh
    self.modality = eval_config.get("modality", "audio")
    if self.modality not in MODALITIES:
      raise ValueError(
          f"linear_probe modality must be one of {MODALITIES}, "
          f"got {self.modality!r}"
      )
    if not hasattr(model, f"embed_{self.modality}"):
      raise ValueError(
          f"linear_probe: {type(model).__name__} has no embed_{self.modality}; "
          "the probe takes L3-Net or AVE-Net trunks"
      )
    self.eval_config = eval_config
    self.source = eval_config.get("source", "records")
    self.C = float(eval_config.get("C") or DEFAULT_C)
    self.Cs = tuple(eval_config.get("Cs") or ())
    self.global_batch = int(eval_config.get("batch_size") or config.batch_size)
    self.with_random = bool(eval_config.get("random_init", True))
    self.random_seed = int(eval_config.get("random_seed", 0))
    self.clips_per_class = int(eval_config.get("train_clips_per_class") or 0)
    self.episodes = int(eval_config.get("episodes") or 1)
    # Checked here, not after minutes of feature extraction.
    if self.episodes < 1:
      raise ValueError(
          f"linear_probe: episodes must be >= 1, got {self.episodes}"
      )
    if self.episodes > 1 and not self.clips_per_class:
      raise ValueError(
          "linear_probe: episodes > 1 needs train_clips_per_class (each "
          "episode draws that many labelled clips per class)"
      )
    if (
        self.episodes > 1
        and self.source == "tfds"
        and not eval_config.get("test_split")
    ):
      raise ValueError(
          "linear_probe: episodes > 1 takes a train/test split, not "
          "cross-validation by fold; set test_split"
      )
    self._random_results = None  # fixed net, fixed data: computed once

  def run(self, state):
    """Yields (metric, value) pairs: accuracy (+ random_init_accuracy) and counts."""
    nets = {"trained": variables_of(state)}
    if self.with_random and self._random_results is None:
      nets["random"] = random_init_variables(
          self.config, self.random_seed, self.mesh
      )
    data = self._features(nets)
    results = {net: self._probe(data, net) for net in nets}
    if "random" in results:
      self._random_results = results.pop("random")
    trained = results["trained"]
    yield "accuracy", trained["accuracy"]
    if self._random_results is not None:
      yield "random_init_accuracy", self._random_results["accuracy"]
    if "accuracy_std" in trained:  # over folds or over episodes
      yield "accuracy_std", trained["accuracy_std"]
    if "num_folds" in trained:
      yield "num_folds", float(trained["num_folds"])
    else:
      yield "C", trained["C"]  # as chosen by the inner CV (or fixed)
    if "num_episodes" in trained:
      yield "num_episodes", float(trained["num_episodes"])
      if self._random_results is not None:
        yield "random_init_accuracy_std", self._random_results["accuracy_std"]
    yield "num_test_clips", float(trained["num_test_clips"])
    if "num_train_clips" in trained:
      yield "num_train_clips", float(trained["num_train_clips"])
    yield "feature_dim", float(trained["feature_dim"])

  def _probe(self, data: dict, net: str) -> dict:
    """Probe result of one network's features: CV by fold, or train -> test."""

    def view(part):
      return {
          "features": part[f"{net}/{self.modality}"],
          "label": part["label"],
          "video_index": part["video_index"],
      }

    if any(np.any(part["label"] < 0) for part in data.values()):
      raise ValueError(
          "linear_probe: some clips are unlabelled (label -1); prepare the "
          "records with --labels"
      )
    kwargs = dict(C=self.C, Cs=self.Cs, clips_per_class=self.clips_per_class)
    if "test" not in data and np.unique(data["train"]["fold"]).size < 2:
      raise ValueError(
          f"linear_probe: {self.eval_config.get('dataset')!r} defines no folds; "
          "set test_split (e.g. 'validation') to fit on train and score it"
      )
    if self.episodes > 1:  # a train/test split: __init__ refused CV
      result = episodes_accuracy(
          view(data["train"]),
          view(data["test"]),
          episodes=self.episodes,
          **kwargs,
      )
    elif "test" in data:
      result = probe_accuracy(view(data["train"]), view(data["test"]), **kwargs)
    else:
      result = cross_validate(
          view(data["train"]), data["train"]["fold"], **kwargs
      )
    result["feature_dim"] = data["train"][f"{net}/{self.modality}"].shape[1]
    return result

  def _features(self, nets: dict) -> dict:
    """{'train': {...}, 'test': {...}} (or only 'train' with `fold` for CV)."""
    fn = functools.partial(_per_network, modalities=(self.modality,))
    if self.source == "records":
      return self._records_features(fn, nets)
    if self.source == "tfds":
      return self._tfds_features(fn, nets)
    raise ValueError(
        f"linear_probe source must be 'records' or 'tfds', got {self.source!r}"
    )

  def _records_features(self, fn, nets) -> dict:
    c = self.eval_config
    feature_fn = features_lib.make_feature_fn(fn, self.model, self.mesh)
    splits = {
        "train": c.get("train_split") or self.config.data.train_split,
        "test": c.get("test_split") or self.config.data.eval_split,
    }
    return {
        part: features_lib.extract(
            feature_fn,
            nets,
            self.config.data,
            split,
            self.global_batch,
            self.mesh,
        )
        for part, split in splits.items()
    }

  def _tfds_features(self, fn, nets) -> dict:
    c = self.eval_config
    feature_fn = jax.jit(
        functools.partial(fn, self.model),
        in_shardings=(
            sharding.replicated(self.mesh),
            sharding.batch_sharding(self.mesh),
        ),
        out_shardings=sharding.replicated(self.mesh),
    )
    parts = {"train": c.get("train_split") or "train"}
    if c.get("test_split"):
      parts["test"] = c.test_split
    out = {}
    for part, split in parts.items():
      examples = tfds_windows(
          c.dataset,
          c.get("data_dir") or None,
          c.get("manual_dir") or None,
          split,
          self.config.data,
          modality=self.modality,
          hop_seconds=c.get("hop_seconds"),
      )
      out[part] = _extract_batches(
          feature_fn, nets, examples, self.global_batch, self.mesh
      )
    return out


################################################################################
# TFDS probe datasets: clips -> windows -> features.
################################################################################


def tfds_windows(
    name: str,
    data_dir: Optional[str],
    manual_dir: Optional[str],
    split: str,
    data_config,
    *,
    modality: str = "audio",
    hop_seconds=None,
):
  """Yields one dict per window of every clip: model input, label, video_index, fold.

  Audio is resampled to `data_config.sample_rate` (`scipy.signal.resample_poly`)
  and cut into `audio_seconds` windows every `hop_seconds` (default: no
  overlap; a clip shorter than one window is zero-padded to one). Vision
  (Kinetics-Sounds) takes the frame at each window's centre, resized and
  centre-cropped as in evaluation.
  """
  from avself import datasets  # pylint: disable=g-import-not-at-top  (slow TF import)
  from avself import embed  # pylint: disable=g-import-not-at-top

  rate = int(data_config.sample_rate)
  window = int(round(data_config.audio_seconds * rate))
  hop = int(round((hop_seconds or data_config.audio_seconds) * rate))
  data_dir = os.path.expanduser(data_dir or "~/tensorflow_datasets")
  ds = datasets.load_probe_dataset(
      name, data_dir, manual_dir and os.path.expanduser(manual_dir), split
  )
  for clip, example in enumerate(ds.as_numpy_iterator()):
    waveform = embed.resample(
        example["audio"], int(example["sample_rate"]), rate
    )
    windows, starts = embed.cut_windows(waveform, window, hop, pad_end=False)
    meta = dict(
        label=int(example["label"]), video_index=clip, fold=int(example["fold"])
    )
    if modality == "audio":
      inputs = embed.spectrograms(windows, data_config)  # [W, F, T, 1]
    else:
      if "frames" not in example:
        raise ValueError(
            f"{name!r} has no frames: the vision probe needs Kinetics-Sounds"
        )
      centres = (starts + window / 2) / rate
      inputs = _centre_frames(
          example["frames"], float(example["fps"]), centres, data_config
      )
    key = "audio" if modality == "audio" else "image"
    for row in inputs:
      yield {key: row, **meta}


def _centre_frames(
    jpegs: np.ndarray, fps: float, seconds: np.ndarray, data_config
) -> np.ndarray:
  """Frames showing `seconds`, decoded, resized and centre-cropped -> float32 [W, S, S, 3] in [-1, 1]."""
  from avself.data import ops  # pylint: disable=g-import-not-at-top

  index = np.minimum(
      np.floor(seconds * fps + 1e-6).astype(np.int64), len(jpegs) - 1
  )
  crops = [
      ops.decode_crop(
          jpegs[i],
          size=data_config.image_size,
          resize_shorter=data_config.resize_shorter,
      )
      for i in index
  ]
  return np.asarray(ops.finish_images(np.stack(crops)))


def _extract_batches(
    feature_fn, nets, examples, global_batch: int, mesh
) -> dict:
  """Runs `feature_fn` over windows in global batches (padded); returns stacked arrays.

  Every host reads every window and feeds its own slice of each global batch;
  features come back replicated, so all hosts hold all of them.
  """
  local = sharding.local_batch_size(global_batch)
  lo = jax.process_index() * local
  out, pending = {}, []

  def flush():
    rows = len(pending)
    batch = {k: np.stack([p[k] for p in pending]) for k in pending[0]}
    inputs = {k: v for k, v in batch.items() if k in ("audio", "image")}
    inputs = {
        k: np.concatenate(
            [v, np.zeros((global_batch - rows, *v.shape[1:]), v.dtype)]
        )
        for k, v in inputs.items()
    }
    feats = sharding.to_host(
        feature_fn(
            nets,
            sharding.to_global(
                {k: v[lo : lo + local] for k, v in inputs.items()}, mesh
            ),
        )
    )
    for k, v in {**feats, **batch}.items():
      if k not in inputs:
        out.setdefault(k, []).append(np.asarray(v)[:rows])
    pending.clear()

  for example in examples:
    pending.append(example)
    if len(pending) == global_batch:
      flush()
  if pending:
    flush()
  if not out:
    raise ValueError("the probe dataset split has no windows")
  return {k: np.concatenate(v) for k, v in out.items()}
