"""ESC-50: 2,000 five-second environmental sound clips in 50 classes (Piczak 2015).

Built from the GitHub archive, unzipped or not, in `manual_dir`:

    manual_dir/ESC-50-master/audio/{fold}-{clip_id}-{take}-{target}.wav
    manual_dir/ESC-50-master/meta/esc50.csv
    (or manual_dir/ESC-50-master.zip, extracted by the builder)

One `train` split holds every clip; `fold` (1..5) is a feature, because the
protocol is 5-fold cross-validation over the predefined folds (clips cut from
one recording share a fold, so never split them by hand).
"""

import csv
import os

import numpy as np
import tensorflow_datasets as tfds

from avself.datasets import features
from avself.datasets import files

ARCHIVE_FOLDER = "ESC-50-master"
SAMPLE_RATE = 44100
NUM_FOLDS = 5

# Category names in `target` order (meta/esc50.csv).
CATEGORIES = (
    "dog",
    "rooster",
    "pig",
    "cow",
    "frog",
    "cat",
    "hen",
    "insects",
    "sheep",
    "crow",
    "rain",
    "sea_waves",
    "crackling_fire",
    "crickets",
    "chirping_birds",
    "water_drops",
    "wind",
    "pouring_water",
    "toilet_flush",
    "thunderstorm",
    "crying_baby",
    "sneezing",
    "clapping",
    "breathing",
    "coughing",
    "footsteps",
    "laughing",
    "brushing_teeth",
    "snoring",
    "drinking_sipping",
    "door_wood_knock",
    "mouse_click",
    "keyboard_typing",
    "door_wood_creaks",
    "can_opening",
    "washing_machine",
    "vacuum_cleaner",
    "clock_alarm",
    "clock_tick",
    "glass_breaking",
    "helicopter",
    "chainsaw",
    "siren",
    "car_horn",
    "engine",
    "train",
    "church_bells",
    "airplane",
    "fireworks",
    "hand_saw",
)
# The ESC-10 subset (the `esc10` column).
ESC10 = (
    "dog",
    "rooster",
    "rain",
    "sea_waves",
    "crackling_fire",
    "crying_baby",
    "sneezing",
    "clock_tick",
    "helicopter",
    "chainsaw",
)

_CITATION = """@inproceedings{piczak2015esc,
  title={{ESC}: Dataset for Environmental Sound Classification},
  author={Piczak, Karol J.},
  booktitle={Proceedings of the 23rd ACM International Conference on Multimedia},
  pages={1015--1018},
  year={2015}
}"""


class Esc50(tfds.core.GeneratorBasedBuilder):
  """ESC-50 environmental sound classification (manual download)."""

  name = "esc50"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {
      "1.0.0": "Initial release: int16 audio at 44.1 kHz, fold feature."
  }
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
  Download https://github.com/karolpiczak/ESC-50/archive/master.zip and unzip it
  in manual_dir, so that manual_dir/{ARCHIVE_FOLDER}/audio/*.wav and
  manual_dir/{ARCHIVE_FOLDER}/meta/esc50.csv exist (or leave it zipped as
  manual_dir/{ARCHIVE_FOLDER}.zip).
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=(
            "ESC-50: 2,000 5-second clips of environmental sounds in 50 "
            "classes, in 5 folds for cross-validation. Audio is the "
            "original 44.1 kHz mono 16-bit PCM (int16; divide by 32768)."
        ),
        features=tfds.features.FeaturesDict(
            {
                "audio": features.pcm_audio(SAMPLE_RATE),
                "label": tfds.features.ClassLabel(names=CATEGORIES),
                "fold": np.int32,
                "filename": tfds.features.Text(),
                "esc10": np.bool_,
            }
        ),
        supervised_keys=("audio", "label"),
        homepage="https://github.com/karolpiczak/ESC-50",
        citation=_CITATION,
    )

  def _split_generators(self, dl_manager):
    root = files.require_folder(
        os.fspath(dl_manager.manual_dir), ARCHIVE_FOLDER, dl_manager
    )
    return {"train": self._generate_examples(root)}

  def _generate_examples(self, root: str):
    """One example per row of meta/esc50.csv."""
    with open(os.path.join(root, "meta", "esc50.csv"), newline="") as f:
      rows = list(csv.DictReader(f))
    for row in rows:
      target = int(row["target"])
      if (
          CATEGORIES[target] != row["category"]
      ):  # a CSV from another dataset version
        raise ValueError(
            f"{row['filename']}: target {target} is {CATEGORIES[target]!r}, "
            f"the CSV says {row['category']!r}"
        )
      audio = files.read_wav(
          os.path.join(root, "audio", row["filename"]), SAMPLE_RATE, channels=1
      )
      yield row["filename"], {
          "audio": audio,
          "label": target,
          "fold": int(row["fold"]),
          "filename": row["filename"],
          "esc10": row["esc10"].strip().lower() == "true",
      }
