"""DCASE 2013 acoustic scene classification (Stowell et al. 2015).

10 scenes, 30 s stereo 44.1 kHz recordings; the public development set has 10
per scene. Layout in `manual_dir` (folders, or the same names as .zip):

    manual_dir/scenes_stereo/{scene}{NN}.wav           e.g. busystreet07.wav
    manual_dir/scenes_stereo_testset/{scene}{NN}.wav   optional: split `test`

Folds: the challenge evaluated 5-fold cross-validation on the development set,
but its fold lists are not in the archive, so this builder fixes its own: within
each scene the files, sorted by number, are cut into 5 consecutive blocks
(01-02 -> fold 1, 03-04 -> fold 2, ..., 09-10 -> fold 5). Consecutive numbers
tend to come from the same session, so keeping them in one fold avoids
training and testing on near-duplicate recordings.
"""

import os
import re

import numpy as np
import tensorflow_datasets as tfds

from avself.datasets import features
from avself.datasets import files

SCENES = (
    "bus",
    "busystreet",
    "office",
    "openairmarket",
    "park",
    "quietstreet",
    "restaurant",
    "supermarket",
    "tube",
    "tubestation",
)
SAMPLE_RATE = 44100
NUM_FOLDS = 5
DEV_FOLDER = "scenes_stereo"
TEST_FOLDER = "scenes_stereo_testset"

# Longest names first, so "busystreet01" is not read as "bus" + "ystreet01".
_NAME_RE = re.compile(
    r"^(%s)(\d+)\.wav$" % "|".join(sorted(SCENES, key=len, reverse=True)),
    re.IGNORECASE,
)

_CITATION = """@article{stowell2015detection,
  title={Detection and Classification of Acoustic Scenes and Events},
  author={Stowell, Dan and Giannoulis, Dimitrios and Benetos, Emmanouil and
          Lagrange, Mathieu and Plumbley, Mark D.},
  journal={IEEE Transactions on Multimedia},
  volume={17}, number={10}, pages={1733--1746}, year={2015}
}"""


def parse_name(filename: str):
  """(scene, number) of '{scene}{NN}.wav', or None for any other file."""
  match = _NAME_RE.match(filename)
  return (match.group(1).lower(), int(match.group(2))) if match else None


def assign_folds(
    filenames: list[str], num_folds: int = NUM_FOLDS
) -> dict[str, int]:
  """Fold (1..num_folds) of each dev file: consecutive blocks within each scene."""
  by_scene = {}
  for name in filenames:
    scene, number = parse_name(name)
    by_scene.setdefault(scene, []).append((number, name))
  folds = {}
  for entries in by_scene.values():
    entries.sort()
    for rank, (_, name) in enumerate(entries):
      folds[name] = rank * num_folds // len(entries) + 1
  return folds


def list_scene_files(folder: str) -> list[str]:
  """Sorted '{scene}{NN}.wav' names in folder; raises if there are none."""
  names = sorted(n for n in os.listdir(folder) if parse_name(n))
  if not names:
    raise FileNotFoundError(f"No '{{scene}}{{NN}}.wav' files in {folder}")
  return names


class Dcase2013Scenes(tfds.core.GeneratorBasedBuilder):
  """DCASE 2013 scene classification, stereo 44.1 kHz (manual download)."""

  name = "dcase2013_scenes"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {
      "1.0.0": "Initial release: int16 stereo audio, fixed 5 folds."
  }
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
  Download the DCASE 2013 scene classification development set (and, optionally,
  the test set released after the challenge), linked from the challenge page
  https://c4dm.eecs.qmul.ac.uk/sceneseventschallenge/, and unpack it so that
  manual_dir/{DEV_FOLDER}/bus01.wav ... exist (and manual_dir/{TEST_FOLDER}/*.wav
  for the test set), or leave the zips as
  manual_dir/{DEV_FOLDER}.zip and manual_dir/{TEST_FOLDER}.zip.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=(
            "DCASE 2013 acoustic scene classification: 30 s stereo "
            "recordings of 10 scenes. Audio is the original 44.1 kHz "
            "16-bit PCM, int16 [N, 2]. `fold` 1..5 (see the builder's "
            "docstring for the fold rule); -1 in `test`."
        ),
        features=tfds.features.FeaturesDict(
            {
                "audio": features.pcm_audio(SAMPLE_RATE, channels=2),
                "label": tfds.features.ClassLabel(names=SCENES),
                "fold": np.int32,
                "filename": tfds.features.Text(),
            }
        ),
        supervised_keys=("audio", "label"),
        homepage="https://c4dm.eecs.qmul.ac.uk/sceneseventschallenge/",
        citation=_CITATION,
    )

  def _split_generators(self, dl_manager):
    manual_dir = os.fspath(dl_manager.manual_dir)
    splits = {
        "train": self._generate_examples(
            files.require_folder(manual_dir, DEV_FOLDER, dl_manager),
            with_folds=True,
        )
    }
    test = files.find_folder(manual_dir, TEST_FOLDER, dl_manager)
    if test is not None:
      splits["test"] = self._generate_examples(test, with_folds=False)
    return splits

  def _generate_examples(self, folder: str, with_folds: bool):
    """One example per '{scene}{NN}.wav' in folder."""
    names = list_scene_files(folder)
    folds = assign_folds(names) if with_folds else {}
    for name in names:
      scene, _ = parse_name(name)
      yield name, {
          "audio": files.read_wav(
              os.path.join(folder, name), SAMPLE_RATE, channels=2
          ),
          "label": SCENES.index(scene),
          "fold": folds.get(name, -1),
          "filename": name,
      }
