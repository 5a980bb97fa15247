"""Evaluation from checkpoints: the linear probe, its TFDS path, the evaluate CLI."""

import json
import os
import shutil
import sys

import ml_collections
import numpy as np
import pytest

from avself import evaluate
from avself import sharding
from avself import state as state_lib
from avself.evaluators import linear_probe
from avself.evaluators import probe as probe_lib
from avself.evaluators import tfds_windows

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGRESSION_CHECKPOINT = os.path.join(REPO, "tests", "data", "regression")


def _clips(rng, centres, num_clips, windows, noise=1.0):
  """Windows of clips whose class is one of `centres` rows: {features, label, video_index}."""
  labels = rng.integers(0, len(centres), num_clips)
  label = np.repeat(labels, windows)
  features = centres[label] + noise * rng.standard_normal(
      (len(label), centres.shape[1])
  )
  return {
      "features": features.astype(np.float32),
      "label": label,
      "video_index": np.repeat(np.arange(num_clips), windows),
  }


# ### The probe on NumPy features ############################################


def test_probe_separable_features_near_perfect_and_shuffled_labels_near_chance():
  rng = np.random.default_rng(0)
  centres = 3.0 * rng.standard_normal((5, 40))
  train_set, test_set = _clips(rng, centres, 100, 3), _clips(
      rng, centres, 100, 3
  )
  result = probe_lib.probe_accuracy(
      train_set, test_set, Cs=(0.01, 1.0)
  )  # inner CV
  assert result["accuracy"] >= 0.98 and result["num_test_clips"] == 100
  assert result["C"] in (0.01, 1.0)
  shuffled = dict(train_set, label=rng.permutation(train_set["label"]))
  chance = probe_lib.probe_accuracy(shuffled, test_set, C=0.1)["accuracy"]
  assert 0.05 <= chance <= 0.4, chance  # 5 classes: chance is 0.2


def test_zscore_is_fitted_on_training_windows_only():
  rng = np.random.default_rng(1)
  centres = 2.0 * rng.standard_normal((3, 20)) + 5.0
  train_set, test_set = _clips(rng, centres, 30, 2), _clips(rng, centres, 20, 2)
  result = probe_lib.probe_accuracy(train_set, test_set, C=1.0)
  scaler = result["probe"].named_steps["standardscaler"]
  np.testing.assert_allclose(
      scaler.mean_, train_set["features"].mean(0), rtol=1e-5
  )
  np.testing.assert_allclose(
      scaler.scale_, train_set["features"].std(0), rtol=1e-5
  )
  # Wild test clips added to the test set change nothing for the others: no
  # statistic is taken from the test set.
  wild = {
      "features": 1e3 * np.ones((4, 20), np.float32),
      "label": np.zeros(4, np.int64),
      "video_index": np.array([100, 100, 101, 101]),
  }
  both = {k: np.concatenate([test_set[k], wild[k]]) for k in test_set}
  probe = result["probe"]
  alone = probe_lib.class_scores(probe, test_set["features"])
  mixed = probe_lib.class_scores(probe, both["features"])[: len(alone)]
  np.testing.assert_allclose(alone, mixed)


def test_clip_score_is_the_mean_of_its_windows_not_a_vote():
  # Video 7: one window strongly class 0, two weakly class 1 -> mean says 0.
  scores = np.array([[10.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 2.0]])
  video_index = np.array([7, 7, 7, 3])
  predicted, videos = probe_lib.clip_predictions(
      scores, video_index, np.array([4, 9])
  )
  np.testing.assert_array_equal(videos, [3, 7])
  np.testing.assert_array_equal(
      predicted, [9, 4]
  )  # class ids, not column indices


def test_cross_validation_tests_every_clip_once_by_fold():
  rng = np.random.default_rng(2)
  centres = 3.0 * rng.standard_normal((4, 16))
  data = _clips(rng, centres, 40, 3)
  folds = np.repeat(np.arange(40) % 5 + 1, 3)
  result = probe_lib.cross_validate(data, folds, C=1.0)
  assert result["num_folds"] == 5 and result["num_test_clips"] == 40
  assert result["accuracy"] >= 0.95
  assert result["accuracy"] == pytest.approx(np.mean(result["fold_accuracies"]))


def test_labelled_subset_keeps_whole_clips_per_class_reproducibly():
  rng = np.random.default_rng(3)
  centres = 3.0 * rng.standard_normal((4, 16))
  data = _clips(rng, centres, 60, 3)
  subset = probe_lib.labelled_subset(data, 2, seed=5)
  labels = probe_lib.clip_labels(subset["label"], subset["video_index"])
  np.testing.assert_array_equal(np.bincount(labels, minlength=4), [2, 2, 2, 2])
  assert len(subset["label"]) == 8 * 3  # every window of each chosen clip
  again = probe_lib.labelled_subset(data, 2, seed=5)
  np.testing.assert_array_equal(subset["video_index"], again["video_index"])
  other = probe_lib.labelled_subset(data, 2, seed=6)
  assert set(other["video_index"]) != set(subset["video_index"])
  # A class with fewer clips than asked keeps all of them.
  assert len(probe_lib.labelled_subset(data, 1000)["label"]) == len(
      data["label"]
  )
  result = probe_lib.probe_accuracy(
      data, _clips(rng, centres, 40, 3), C=1.0, clips_per_class=2
  )
  assert result["num_train_clips"] == 8 and result["accuracy"] >= 0.9


def test_episodes_average_probes_over_draws_of_the_labelled_clips():
  rng = np.random.default_rng(4)
  centres = 1.0 * rng.standard_normal((4, 16))  # close classes: draws matter
  train, test = _clips(rng, centres, 80, 3, noise=1.5), _clips(
      rng, centres, 40, 3, noise=1.5
  )
  result = probe_lib.episodes_accuracy(
      train, test, episodes=4, clips_per_class=1, C=1.0
  )
  singles = [
      probe_lib.probe_accuracy(train, test, C=1.0, seed=s, clips_per_class=1)[
          "accuracy"
      ]
      for s in range(4)
  ]
  assert result["episode_accuracies"] == singles
  assert result["accuracy"] == pytest.approx(np.mean(singles))
  assert result["accuracy_std"] == pytest.approx(np.std(singles))
  assert result["num_episodes"] == 4 and result["num_train_clips"] == 4
  assert len(set(singles)) > 1  # the draws differ, so the mean is worth having
  with pytest.raises(ValueError, match="episodes"):
    probe_lib.episodes_accuracy(train, test, episodes=2, clips_per_class=0)


# ### The probe checks its split ###########################################


def _of_classes(data: dict, classes) -> dict:
  keep = np.isin(data["label"], classes)
  return {k: v[keep] for k, v in data.items()}


def test_probe_refuses_a_test_split_of_classes_it_never_trained_on():
  # Fitted on classes 0-7, scored on 8-9: every prediction is wrong for any
  # features (trained and random alike score 0.0); the probe says why.
  rng = np.random.default_rng(5)
  centres = 3.0 * rng.standard_normal((10, 16))
  train = _of_classes(_clips(rng, centres, 200, 2), range(8))
  test = _of_classes(_clips(rng, centres, 100, 2), [8, 9])
  with pytest.raises(ValueError, match=r"no test clip is of a class.*\[8, 9\]"):
    probe_lib.probe_accuracy(train, test, C=1.0)
  with pytest.raises(ValueError, match="no test clip"):
    probe_lib.episodes_accuracy(train, test, episodes=2, clips_per_class=1)
  with pytest.raises(ValueError, match="at least 2"):
    probe_lib.probe_accuracy(_of_classes(train, [3]), test, C=1.0)


def test_probe_reports_test_clips_of_untrained_classes():
  rng = np.random.default_rng(6)
  centres = 3.0 * rng.standard_normal((5, 16))
  train = _of_classes(_clips(rng, centres, 150, 2), range(4))
  test = _clips(rng, centres, 60, 2)
  unseen = len(np.unique(test["video_index"][test["label"] == 4]))
  result = probe_lib.probe_accuracy(train, test, C=1.0)
  assert unseen > 0 and result["unseen_class_test_clips"] == unseen
  assert result["classes_short_of_labels"] == 0
  (warning,) = result["warnings"]
  assert f"{unseen} of 60 test clips" in warning and "[4]" in warning
  # The unseen clips cap the accuracy, as the warning says.
  assert result["accuracy"] <= 1 - unseen / 60
  assert result["accuracy"] >= 0.9 * (1 - unseen / 60)
  folds = np.repeat(np.arange(150) % 3, 2)[: len(train["label"])]
  clean = probe_lib.cross_validate(train, folds, C=1.0)
  assert clean["unseen_class_test_clips"] == 0 and clean["warnings"] == []


def test_probe_reports_classes_with_fewer_clips_than_asked_for():
  rng = np.random.default_rng(7)
  centres = 3.0 * rng.standard_normal((4, 16))
  train = _clips(rng, centres, 80, 2)
  # Class 2 keeps 2 of its clips: fewer than the 5 per class asked for.
  class2 = np.unique(train["video_index"][train["label"] == 2])
  train = {
      k: v[~np.isin(train["video_index"], class2[2:])] for k, v in train.items()
  }
  test = _clips(rng, centres, 40, 2)
  result = probe_lib.probe_accuracy(train, test, C=1.0, clips_per_class=5)
  assert result["classes_short_of_labels"] == 1
  assert result["num_train_clips"] == 3 * 5 + 2
  (warning,) = result["warnings"]
  assert "1 of 4 classes" in warning and "fewest: 2" in warning
  episodes = probe_lib.episodes_accuracy(
      train, test, episodes=2, clips_per_class=5, C=1.0
  )
  assert episodes["classes_short_of_labels"] == 1
  assert episodes["warnings"] == result["warnings"]
  # Enough clips of every class: nothing to say.
  enough = probe_lib.probe_accuracy(train, test, C=1.0, clips_per_class=2)
  assert enough["classes_short_of_labels"] == 0 and not enough["warnings"]


def test_evaluate_prints_a_warning_for_each_suspect_probe():
  lines = evaluate.split_warnings(
      {
          "audio_probe/accuracy": 0.5,
          "audio_probe/classes_short_of_labels": 3.0,
          "vision_probe/unseen_class_test_clips": 0.0,
          "audio_probe_all/unseen_class_test_clips": 12.0,
      }
  )
  assert lines == [
      "WARNING audio_probe: 3 classes with fewer training clips than "
      "train_clips_per_class asks for",
      "WARNING audio_probe_all: 12 test clips of classes with no training "
      "clips (always mispredicted)",
  ]


# ### The TFDS path on a fake ESC-50 #########################################


def test_tfds_probe_cross_validates_esc50_fixture_by_fold(tmp_path):
  from avself.datasets import fixtures  # pylint: disable=g-import-not-at-top

  manual_dir = fixtures.make_esc50(
      str(tmp_path / "download"), clips_per_class=5, num_classes=4, seconds=1.5
  )
  mesh = sharding.make_mesh()
  config, task, model, state = state_lib.restore(
      REGRESSION_CHECKPOINT, mesh=mesh
  )
  eval_config = ml_collections.ConfigDict(
      dict(
          type="linear_probe",
          modality="audio",
          source="tfds",
          dataset="esc50",
          data_dir=str(tmp_path / "tfds"),
          manual_dir=manual_dir,
          hop_seconds=0.5,
          C=1.0,
      )
  )
  evaluator = linear_probe.Evaluator(
      config, eval_config, task=task, model=model, mesh=mesh
  )
  # 1.5 s at hop 0.5 s: 2 complete 1 s windows per clip, cut from 16 kHz audio.
  windows = list(
      tfds_windows.tfds_windows(
          "esc50",
          eval_config.data_dir,
          manual_dir,
          "train",
          config.data,
          hop_seconds=0.5,
      )
  )
  assert len(windows) == 2 * 20
  assert windows[0]["audio"].shape == (*config.model.spectrogram_shape, 1)
  assert {w["fold"] for w in windows} == {1, 2, 3, 4, 5}
  results = dict(evaluator.run(state))
  assert results["num_folds"] == 5 and results["num_test_clips"] == 20
  # Four pure tones: both nets separate them far above chance (0.25).
  assert results["accuracy"] >= 0.75, results
  assert results["random_init_accuracy"] >= 0.5, results
  assert (
      results["feature_dim"] == 4 * 3 * 32
  )  # conv4 at width 1/16: 32 channels


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(episodes=3), "needs train_clips_per_class"),
        (dict(episodes=-1, train_clips_per_class=2), ">= 1"),
        (
            dict(
                episodes=3,
                train_clips_per_class=2,
                source="tfds",
                dataset="esc50",
            ),
            "train/test split",
        ),
    ],
)
def test_probe_refuses_bad_episodes_before_extracting_features(bad, message):
  mesh = sharding.make_mesh()
  config, task, model, _ = state_lib.restore(REGRESSION_CHECKPOINT, mesh=mesh)
  eval_config = ml_collections.ConfigDict(
      dict(dict(type="linear_probe", modality="audio"), **bad)
  )
  with pytest.raises(ValueError, match=message):
    linear_probe.Evaluator(
        config, eval_config, task=task, model=model, mesh=mesh
    )


# ### Evaluate CLI on a checkpoint ###########################################


def test_evaluate_restores_checkpoint_and_writes_results(
    tmp_path, tiny_records, monkeypatch, capsys
):
  # The stored regression checkpoint (tiny config, width 1/16, 2 steps), scored
  # on the tiny world's records; copied so that eval/ is written under tmp.
  workdir = str(tmp_path / "run")
  shutil.copytree(REGRESSION_CHECKPOINT, workdir)
  on_tiny = ml_collections.ConfigDict({"data": {"path": tiny_records}})
  # No evals in the eval config: the training config's own (avc, 64 pairs).
  default = evaluate.evaluate(workdir, on_tiny)
  assert set(default) == {
      "step",
      "avc/avc_accuracy",
      "avc/loss",
      "avc/positive_fraction",
      "avc/num_examples",
  }
  assert default["step"] == 2 and default["avc/num_examples"] == 64

  # The command line, with an eval config file and flag overrides.
  from absl import flags  # pylint: disable=g-import-not-at-top

  argv = [
      "evaluate",
      f"--workdir={workdir}",
      "--step=2",
      f"--config={os.path.join(REPO, 'configs', 'eval', 'probe_synthetic.py')}",
      f"--config.data.path={tiny_records}",
      "--config.evals.avc.num_examples=64",
      "--config.evals.audio_probe.C=1.0",
      "--config.evals.vision_probe.C=1.0",
  ]
  monkeypatch.setattr(
      sys, "argv", argv
  )  # config_flags finds --config.* overrides there
  flags.FLAGS.unparse_flags()
  flags.FLAGS(argv)
  try:
    evaluate.main(["evaluate"])
  finally:
    flags.FLAGS.unparse_flags()
  with open(os.path.join(workdir, "eval", "results.json")) as f:
    stored = json.load(f)
  # The console table lists every stored number.
  table = capsys.readouterr().out
  for key, value in stored.items():
    assert any(
        line.split()
        == [key, f"{value:.4f}" if isinstance(value, float) else str(value)]
        for line in table.splitlines()
    ), key
  expected = {"step", "avc/avc_accuracy", "avc/positive_fraction"} | {
      f"{m}_probe/{k}"
      for m in ("audio", "vision")
      for k in (
          "accuracy",
          "random_init_accuracy",
          "num_test_clips",
          "feature_dim",
      )
  }
  assert expected <= set(stored), sorted(stored)
  # Same checkpoint, same pairs (fixed seed): AVC accuracy reproduces exactly.
  assert stored["avc/avc_accuracy"] == default["avc/avc_accuracy"]
  # 12 test clips of 3 s in the tiny world, 1 s windows; width 1/16: 32 channels.
  assert stored["audio_probe/num_test_clips"] == 12
  assert stored["audio_probe/C"] == 1.0  # the flag override reached the probe
  assert stored["audio_probe/feature_dim"] == 4 * 3 * 32
  assert stored["vision_probe/feature_dim"] == 4 * 4 * 32
  # The few-label audio probe: 10 draws of at most 5 clips per class (the tiny
  # world has 3-4 training clips per class, so here every draw takes them all).
  assert stored["audio_probe/num_episodes"] == 10
  assert (
      stored["audio_probe/num_train_clips"]
      <= stored["audio_probe_all/num_train_clips"]
  )
  assert {
      "audio_probe/accuracy_std",
      "audio_probe/random_init_accuracy_std",
  } <= set(stored)
  # ... so the probe reports the classes short of labels, and so does the CLI.
  assert stored["audio_probe/classes_short_of_labels"] > 0
  assert "audio_probe_all/classes_short_of_labels" not in stored
  assert "WARNING audio_probe: " in table
  for key in expected - {"step"}:
    assert np.isfinite(stored[key]), key
  assert 0.0 <= stored["vision_probe/random_init_accuracy"] <= 1.0
  assert any(
      n.startswith("events.out")
      for n in os.listdir(os.path.join(workdir, "eval"))
  )
