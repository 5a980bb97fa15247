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
(`state.random_init`), the paper's "ours random" row: `random_init_accuracy`.
Its BatchNorm layers keep their initial running statistics (mean 0, var 1),
so they pass activations through nearly unchanged and its features have an
arbitrary scale; the trained net uses its checkpoint's statistics. Neither is
re-estimated: at conv4_2 a per-channel scale and offset is exactly what the
per-dimension z-scoring removes (earlier layers' statistics do change what
passes their ReLUs, which is part of what "random" means here).
"""

import functools

from absl import logging
import jax
import numpy as np

from avself import sharding
from avself.evaluators import features as features_lib
from avself.evaluators import probe as probe_lib
from avself.evaluators import tfds_windows as tfds_windows_lib
from avself.evaluators import transfer

MODALITIES = ("audio", "vision")


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
    self.C = float(eval_config.get("C") or probe_lib.DEFAULT_C)
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
    nets = {"trained": transfer.variables_of(state)}
    if self.with_random and self._random_results is None:
      nets["random"] = transfer.random_init_variables(
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
    # A suspect split (probe_lib.check_split) is said in the results, not
    # only in the log: counts beside the accuracy, nonzero only.
    for metric in probe_lib.WARNING_METRICS:
      if trained.get(metric):
        yield metric, float(trained[metric])

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
      result = probe_lib.episodes_accuracy(
          view(data["train"]),
          view(data["test"]),
          episodes=self.episodes,
          **kwargs,
      )
    elif "test" in data:
      result = probe_lib.probe_accuracy(
          view(data["train"]), view(data["test"]), **kwargs
      )
    else:
      result = probe_lib.cross_validate(
          view(data["train"]), data["train"]["fold"], **kwargs
      )
    result["feature_dim"] = data["train"][f"{net}/{self.modality}"].shape[1]
    if net == "trained":  # the same labels for both nets: say it once
      for warning in result.get("warnings", ()):
        logging.warning("linear_probe (%s): %s", self.modality, warning)
    return result

  def _features(self, nets: dict) -> dict:
    """{'train': {...}, 'test': {...}} (or only 'train' with `fold` for CV)."""
    fn = functools.partial(transfer.per_network, modalities=(self.modality,))
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
      examples = tfds_windows_lib.tfds_windows(
          c.dataset,
          c.get("data_dir") or None,
          c.get("manual_dir") or None,
          split,
          self.config.data,
          modality=self.modality,
          hop_seconds=c.get("hop_seconds"),
      )
      out[part] = tfds_windows_lib.extract_batches(
          feature_fn, nets, examples, self.global_batch, self.mesh
      )
    return out


################################################################################
# TFDS probe datasets: clips -> windows -> features.
################################################################################
