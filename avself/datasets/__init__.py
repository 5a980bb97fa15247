"""TFDS builders for the linear-probe datasets, and one loader for the probe.

Importing this package registers three builders with TFDS (manual download:
the files go in `manual_dir`, laid out as docs/datasets.md says):

  esc50             ESC-50, 2,000 clips, 50 classes, 5 folds, 44.1 kHz mono
  dcase2013_scenes  DCASE 2013 scenes, 100 dev clips, 10 classes, 44.1 kHz stereo
  kinetics_sounds   Kinetics-Sounds, 34 classes, JPEG frames + 48 kHz mono

The linear-probe evaluator reads all three the same way:

    ds = load_probe_dataset("esc50", data_dir="/data/tfds",
                            manual_dir="/data/downloads/esc50")
    # {"audio": float32 [N] mono in [-1, 1), "sample_rate": int32,
    #  "label": int64, "fold": int32 (-1 if none), "filename": string,
    #  Kinetics-Sounds only: "frames": string [T] JPEG, "fps": float32}
"""

import functools
import importlib.resources
import importlib.resources.abc
import sys
from typing import Optional

import tensorflow as tf
import tensorflow_datasets as tfds


def _provide_importlib_resources() -> None:
  """Lets TFDS 4.9.10 build datasets where the `importlib_resources` backport is absent.

  TFDS imports the backport on every Python but declares it only for < 3.9
  (tensorflow/datasets#11212), so `download_and_prepare` fails without it; the
  standard library's `importlib.resources` has all TFDS uses (`abc.Traversable`).
  """
  try:
    import importlib_resources  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    sys.modules["importlib_resources"] = importlib.resources


_provide_importlib_resources()

# Importing the builder modules registers them with TFDS.
from avself.datasets import dcase2013  # noqa: F401
from avself.datasets import esc50  # noqa: F401
from avself.datasets import kinetics_sounds  # noqa: F401
from avself.datasets.files import INT16_SCALE

PROBE_DATASETS = ("esc50", "dcase2013_scenes", "kinetics_sounds")


def get_builder(name: str, data_dir: str, manual_dir: Optional[str] = None):
  """The TFDS builder of `name` ('name' or 'name/config'), built from manual_dir if given.

  Building is a no-op when data_dir already holds the dataset.
  """
  builder = tfds.builder(name, data_dir=data_dir)
  if manual_dir is not None:
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
  elif not builder.is_prepared():
    raise FileNotFoundError(
        f"{name!r} is not built in {data_dir!r}: pass manual_dir, or run "
        f"`python -m avself.datasets.build --name={name} --manual_dir=DIR "
        f"--data_dir={data_dir}` (see docs/datasets.md)."
    )
  return builder


def label_names(name: str, data_dir: Optional[str] = None) -> list[str]:
  """Class names of a probe dataset, in label-index order."""
  return list(
      tfds.builder(name, data_dir=data_dir).info.features["label"].names
  )


def load_probe_dataset(
    name: str,
    data_dir: str,
    manual_dir: Optional[str] = None,
    split: str = "train",
    *,
    decode_frames: bool = False,
) -> tf.data.Dataset:
  """One probe dataset as dicts with mono float32 audio (see the module docstring).

  Args:
    name: 'esc50', 'dcase2013_scenes', 'kinetics_sounds' or 'kinetics_sounds/fps1'.
    data_dir: where TFDS keeps built datasets.
    manual_dir: the download; when given, the dataset is built first if needed.
    split: a TFDS split ('train'; 'test' for DCASE if present; 'validation' and
      'test' for Kinetics-Sounds), slicing such as 'train[:10%]' included.
    decode_frames: Kinetics-Sounds `frames` as uint8 [T, H, W, 3] instead of
      JPEG strings (decoding every frame of every clip is costly; the probe
      usually needs one or a few).
  """
  builder = get_builder(name, data_dir, manual_dir)
  has_video = "video" in builder.info.features
  decoders = (
      {"video": tfds.decode.SkipDecoding()}
      if has_video and not decode_frames
      else None
  )
  ds = builder.as_dataset(split=split, shuffle_files=False, decoders=decoders)
  fps = getattr(builder.builder_config, "fps", None)
  return ds.map(
      functools.partial(
          _probe_example,
          sample_rate=builder.info.features["audio"].sample_rate,
          fps=fps,
      ),
      num_parallel_calls=tf.data.AUTOTUNE,
  )


def _probe_example(
    example: dict, *, sample_rate: int, fps: Optional[float]
) -> dict:
  """A builder's example in the probe's uniform layout."""
  audio = tf.cast(example["audio"], tf.float32) / INT16_SCALE  # [N] or [N, C]
  if audio.shape.rank == 2:
    audio = tf.reduce_mean(audio, axis=-1)  # the probes are mono
  out = {
      "audio": audio,
      "sample_rate": tf.constant(sample_rate, tf.int32),
      "label": example["label"],
      "fold": tf.cast(example["fold"], tf.int32)
      if "fold" in example
      else tf.constant(-1),
      "filename": example["filename"],
  }
  if "video" in example:
    out["frames"] = example["video"]
    out["fps"] = tf.constant(fps, tf.float32)
  return out
