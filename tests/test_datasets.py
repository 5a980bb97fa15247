"""The probe-dataset builders, built from tiny fakes laid out like the real downloads."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from avself import datasets
from avself.datasets import build
from avself.datasets import dcase2013
from avself.datasets import esc50
from avself.datasets import files
from avself.datasets import fixtures
from avself.datasets import kinetics_sounds

SECONDS = 0.5
ESC_CLASSES, ESC_CLIPS = 6, 5
DCASE_CLASSES = 3
KS_LABELS = (
    0,
    8,
    18,
)  # blowing nose; blowing out (K400: blowing out candles); patting
KS_CLIPS = 2


def peak_hz(audio: np.ndarray, sample_rate: int) -> float:
  """Frequency of the strongest spectral peak of a mono signal."""
  spectrum = np.abs(
      np.fft.rfft(audio.astype(np.float64) * np.hanning(len(audio)))
  )
  return np.argmax(spectrum) * sample_rate / len(audio)


def examples(builder, split: str = "train", **kwargs) -> list[dict]:
  """All examples of a split as numpy dicts."""
  return list(
      tfds.as_numpy(
          builder.as_dataset(split=split, shuffle_files=False, **kwargs)
      )
  )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="module")
def esc_download(tmp_path_factory):
  return fixtures.make_esc50(
      str(tmp_path_factory.mktemp("esc50")),
      clips_per_class=ESC_CLIPS,
      num_classes=ESC_CLASSES,
      seconds=SECONDS,
  )


@pytest.fixture(scope="module")
def esc_builder(esc_download, data_dir):
  return datasets.get_builder("esc50", data_dir, esc_download)


@pytest.fixture(scope="module")
def dcase_builder(tmp_path_factory, data_dir):
  download = fixtures.make_dcase2013(
      str(tmp_path_factory.mktemp("dcase")),
      clips_per_class=10,
      num_classes=DCASE_CLASSES,
      seconds=SECONDS,
      test_clips_per_class=1,
  )
  return datasets.get_builder("dcase2013_scenes", data_dir, download)


@pytest.fixture(scope="module")
def ks_download(tmp_path_factory):
  root = fixtures.make_kinetics_sounds(
      str(tmp_path_factory.mktemp("ks")),
      KS_CLIPS,
      labels=KS_LABELS,
      seconds=1.0,
  )
  os.remove(
      os.path.join(root, "kinetics_val.csv")
  )  # 'val' is then read from its folders
  # A test folder with no Kinetics-Sounds class must not become an (empty) split.
  os.makedirs(os.path.join(root, "test", "abseiling"))
  shutil.copy(
      os.path.join(root, "train", "abseiling", "other_train_000010_000020.mp4"),
      os.path.join(root, "test", "abseiling"),
  )
  return root


@pytest.fixture(scope="module")
def ks_builder(ks_download, data_dir):
  return datasets.get_builder("kinetics_sounds", data_dir, ks_download)


# ---------------------------------------------------------------- ESC-50


def test_builders_are_registered_under_their_names():
  assert {"esc50", "dcase2013_scenes", "kinetics_sounds"} <= set(
      tfds.list_builders(with_community_datasets=False)
  )
  assert tfds.builder_cls("esc50") is esc50.Esc50


def test_esc50_counts_labels_and_folds(esc_builder):
  exs = examples(esc_builder)
  assert (
      esc_builder.info.splits["train"].num_examples
      == ESC_CLASSES * ESC_CLIPS
      == len(exs)
  )
  assert esc_builder.info.features["label"].names == list(esc50.CATEGORIES)
  assert esc_builder.info.features["label"].names[:3] == [
      "dog",
      "rooster",
      "pig",
  ]
  for ex in exs:
    fold, _, _, target = ex["filename"].decode()[:-4].split("-")
    assert (ex["label"], ex["fold"]) == (int(target), int(fold))
    assert ex["esc10"] == (esc50.CATEGORIES[ex["label"]] in esc50.ESC10)
  assert (
      sorted(np.bincount([ex["fold"] for ex in exs])[1:]) == [ESC_CLASSES] * 5
  )
  assert {ex["label"] for ex in exs} == set(range(ESC_CLASSES))


def test_esc50_audio_is_the_files_samples(esc_builder, esc_download):
  assert esc_builder.info.features["audio"].sample_rate == 44100
  for ex in examples(esc_builder)[: ESC_CLASSES * 2]:
    assert ex["audio"].dtype == np.int16 and ex["audio"].shape == (
        int(SECONDS * 44100),
    )
    path = os.path.join(
        esc_download, "ESC-50-master", "audio", ex["filename"].decode()
    )
    np.testing.assert_array_equal(ex["audio"], files.read_int16(path)[1])
    assert abs(peak_hz(ex["audio"], 44100) - fixtures.tone_hz(ex["label"])) < 3


def test_esc50_builds_from_the_zip(esc_download, tmp_path):
  manual_dir = tmp_path / "zipped"
  shutil.make_archive(
      str(manual_dir / "ESC-50-master"), "zip", esc_download, "ESC-50-master"
  )
  builder = datasets.get_builder(
      "esc50", str(tmp_path / "tfds"), str(manual_dir)
  )
  assert builder.info.splits["train"].num_examples == ESC_CLASSES * ESC_CLIPS


def test_wav_reader_refuses_another_rate_and_layout(tmp_path):
  path = files.write_int16(
      str(tmp_path / "a.wav"), 22050, np.zeros((100, 2), np.float32)
  )
  with pytest.raises(ValueError, match="22050 Hz, expected 44100"):
    files.read_wav(path, 44100)
  with pytest.raises(ValueError, match="2 channels, expected 1"):
    files.read_wav(path, 22050, channels=1)
  mono = files.write_int16(
      str(tmp_path / "m.wav"), 22050, np.full(10, 0.5, np.float32)
  )
  assert files.read_wav(mono, 22050, channels=2).shape == (10, 2)


# ---------------------------------------------------------------- DCASE 2013


def test_dcase_names_parse_longest_scene_first():
  assert dcase2013.parse_name("busystreet07.wav") == ("busystreet", 7)
  assert dcase2013.parse_name("bus01.wav") == ("bus", 1)
  assert dcase2013.parse_name("tubestation10.wav") == ("tubestation", 10)
  assert dcase2013.parse_name("readme.txt") is None


def test_dcase_folds_are_consecutive_blocks_per_scene():
  names = [
      f"{scene}{n:02d}.wav" for scene in ("bus", "park") for n in range(1, 11)
  ]
  folds = dcase2013.assign_folds(names)
  assert [folds[f"bus{n:02d}.wav"] for n in range(1, 11)] == [
      1,
      1,
      2,
      2,
      3,
      3,
      4,
      4,
      5,
      5,
  ]
  assert folds["park09.wav"] == 5


def test_dcase_splits_labels_folds_and_stereo_audio(dcase_builder):
  train, test = examples(dcase_builder), examples(dcase_builder, "test")
  assert (len(train), len(test)) == (DCASE_CLASSES * 10, DCASE_CLASSES)
  assert dcase_builder.info.features["label"].names == list(dcase2013.SCENES)
  for split, exs in (("train", train), ("test", test)):
    for ex in exs:
      scene, number = dcase2013.parse_name(ex["filename"].decode())
      assert ex["label"] == dcase2013.SCENES.index(scene)
      assert ex["fold"] == ((number - 1) // 2 + 1 if split == "train" else -1)
  audio = train[0]["audio"]
  assert audio.dtype == np.int16 and audio.shape == (int(SECONDS * 44100), 2)
  left, right = np.abs(audio).max(axis=0) / files.INT16_SCALE
  assert left == pytest.approx(fixtures.LEFT_AMPLITUDE, abs=0.05)
  assert right == pytest.approx(fixtures.RIGHT_AMPLITUDE, abs=0.05)
  assert (
      abs(peak_hz(audio[:, 0], 44100) - fixtures.tone_hz(train[0]["label"])) < 3
  )


# ---------------------------------------------------------------- Kinetics-Sounds


def test_kinetics_sounds_class_names():
  names = kinetics_sounds.CLASSES
  assert len(names) == len(set(names)) == 34
  assert {
      "playing bagpipes",
      "playing bass guitar",
      "shoveling snow",
      "ripping paper",
  } <= set(names)
  assert kinetics_sounds.class_index("blowing_out_candles") == names.index(
      "blowing out"
  )
  assert kinetics_sounds.class_index("Mowing lawn") == names.index(
      "mowing the lawn by pushing lawnmower"
  )
  assert kinetics_sounds.class_index("playing cello") is None
  assert kinetics_sounds.parse_stem("a_b-c_000012_000022") == ("a_b-c", 12, 22)


def test_kinetics_sounds_keeps_its_classes_and_counts_skips(
    ks_builder, data_dir
):
  assert {k: v.num_examples for k, v in ks_builder.info.splits.items()} == {
      "train": len(KS_LABELS) * KS_CLIPS,
      "validation": len(KS_LABELS) * KS_CLIPS,
  }
  for split in ("train", "validation"):
    exs = examples(
        ks_builder, split, decoders={"video": tfds.decode.SkipDecoding()}
    )
    assert sorted(ex["label"] for ex in exs) == sorted(KS_LABELS * KS_CLIPS)
    for ex in exs:  # a Kinetics-400 folder name maps onto the paper's class
      folder = ex["filename"].decode().split("/")[1]
      assert kinetics_sounds.class_index(folder) == ex["label"]
      assert (ex["time_end"] - ex["time_start"], ex["youtube_id"][:1]) == (
          10,
          b"v",
      )
    names = " ".join(ex["filename"].decode() for ex in exs)
    assert "/blowing out candles/" in names and "abseiling" not in names
  # A fresh builder reads the skip report back from data_dir.
  metadata = tfds.builder("kinetics_sounds", data_dir=data_dir).info.metadata
  assert metadata["skipped"] == {
      "train": {"no_audio": 1, "undecodable": 1, "missing": 1},
      "validation": {},
  }
  assert {reason for _, reason, _ in metadata["skipped_files"]["train"]} == {
      "no_audio",
      "undecodable",
  }


def test_kinetics_sounds_frames_and_audio(ks_builder):
  config = ks_builder.builder_config
  assert (config.fps, config.sample_rate, config.shorter_side) == (
      8.0,
      48000,
      256,
  )
  assert ks_builder.info.features["audio"].sample_rate == 48000
  for ex in examples(ks_builder)[:3]:
    assert (
        ex["video"].shape == (8, 256, 256, 3) and ex["video"].dtype == np.uint8
    )
    colour = ex["video"].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(
        colour, fixtures.frame_colour(ex["label"]), atol=12
    )
    assert (
        ex["audio"].dtype == np.int16 and abs(len(ex["audio"]) - 48000) <= 480
    )
    assert abs(peak_hz(ex["audio"], 48000) - fixtures.tone_hz(ex["label"])) < 3


# ---------------------------------------------------------------- load_probe_dataset


@pytest.mark.parametrize(
    "name", ["esc50", "dcase2013_scenes", "kinetics_sounds"]
)
def test_load_probe_dataset_uniform_layout(
    name, esc_builder, dcase_builder, ks_builder, data_dir
):
  builder = {
      "esc50": esc_builder,
      "dcase2013_scenes": dcase_builder,
      "kinetics_sounds": ks_builder,
  }[name]
  ds = datasets.load_probe_dataset(name, data_dir)
  spec = ds.element_spec
  assert spec["audio"].dtype == tf.float32 and spec["audio"].shape.rank == 1
  assert (
      spec["sample_rate"].dtype,
      spec["label"].dtype,
      spec["fold"].dtype,
      spec["filename"].dtype,
  ) == (tf.int32, tf.int64, tf.int32, tf.string)
  assert ("frames" in spec) == (name == "kinetics_sounds")
  probe = list(tfds.as_numpy(ds))
  skip_video = (
      {"video": tfds.decode.SkipDecoding()} if "frames" in spec else None
  )
  raw = examples(builder, decoders=skip_video)
  assert len(probe) == len(raw)
  for p, r in zip(probe[:4], raw[:4]):
    assert p["sample_rate"] == builder.info.features["audio"].sample_rate
    expected = r["audio"].astype(np.float32) / 32768.0
    mono = expected.mean(axis=-1) if expected.ndim == 2 else expected
    np.testing.assert_allclose(p["audio"], mono, rtol=1e-6)
    assert p["fold"] == r.get("fold", -1) and p["label"] == r["label"]
    assert np.abs(p["audio"]).max() <= 1.0
  if name == "kinetics_sounds":
    assert probe[0]["frames"].shape == (8,) and probe[0]["fps"] == 8.0
    assert tf.io.decode_jpeg(probe[0]["frames"][0]).shape == (256, 256, 3)


def test_load_probe_dataset_decoded_frames_and_stereo_mix(
    dcase_builder, ks_builder, data_dir
):
  ks = next(
      iter(
          tfds.as_numpy(
              datasets.load_probe_dataset(
                  "kinetics_sounds",
                  data_dir,
                  split="validation",
                  decode_frames=True,
              )
          )
      )
  )
  assert (
      ks["frames"].shape == (8, 256, 256, 3) and ks["frames"].dtype == np.uint8
  )
  assert ks["fold"] == -1
  dcase = next(
      iter(
          tfds.as_numpy(
              datasets.load_probe_dataset("dcase2013_scenes", data_dir)
          )
      )
  )
  mix = (fixtures.LEFT_AMPLITUDE + fixtures.RIGHT_AMPLITUDE) / 2
  assert np.abs(dcase["audio"]).max() == pytest.approx(mix, abs=0.05)


def test_load_probe_dataset_without_a_build_says_how(tmp_path):
  with pytest.raises(FileNotFoundError, match="avself.datasets.build"):
    datasets.load_probe_dataset("esc50", str(tmp_path))


def test_build_cli_builds_a_fake_download(tmp_path, capsys):
  summary = build.main(
      [
          "--name=esc50",
          "--fake",
          f"--manual_dir={tmp_path / 'fake'}",
          f"--data_dir={tmp_path / 'tfds'}",
      ]
  )
  assert summary["splits"] == {"train": 50} and summary["labels"] == 50
  assert '"train": 50' in capsys.readouterr().out
