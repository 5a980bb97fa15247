"""Kinetics-Sounds: the 34 Kinetics classes that can be heard (Arandjelović & Zisserman 2017).

Built from a Kinetics download in `manual_dir`, laid out like Kinetics-400:

    manual_dir/{train,val,test}/{class name}/{youtube_id}_{start:06d}_{end:06d}.mp4
    manual_dir/kinetics_{train,val,test}.csv   optional: label,youtube_id,time_start,time_end,split

Only the 34 Kinetics-Sounds classes are kept. Each video is decoded with PyAV
(`avself.data.media`) into JPEG frames at `config.fps` (shorter side
`config.shorter_side`) and mono int16 audio at `config.sample_rate`; a video
without audio, or one that does not decode, is skipped and counted (the counts
are logged and kept in `info.metadata['skipped']`), never fatal.

Class names: `CLASSES` spells them as the L3-Net paper does. The paper used a
pre-release of Kinetics; for four of them the public Kinetics-400 folder is
named differently (`KINETICS_400_NAMES`), and three (`NOT_IN_KINETICS_400`)
have no Kinetics-400 folder at all, so a Kinetics-400 download yields 31
classes (the 31-class "Kinetics-Sounds" later papers report). A folder named
exactly as the paper names a class is accepted too.
"""

import collections
import csv
import dataclasses
import os
import re
from typing import NamedTuple, Optional

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from avself.data import media
from avself.datasets import features
from avself.datasets import files

# The 34 classes in the order the paper lists them (label index = position).
CLASSES = (
    "blowing nose",
    "bowling",
    "chopping wood",
    "ripping paper",
    "shuffling cards",
    "singing",
    "tapping pen",
    "typing",
    "blowing out",
    "dribbling ball",
    "laughing",
    "mowing the lawn by pushing lawnmower",
    "shoveling snow",
    "stomping",
    "tap dancing",
    "tapping guitar",
    "tickling",
    "fingerpicking",
    "patting",
    "playing accordion",
    "playing bagpipes",
    "playing bass guitar",
    "playing clarinet",
    "playing drums",
    "playing guitar",
    "playing harmonica",
    "playing keyboard",
    "playing organ",
    "playing piano",
    "playing saxophone",
    "playing trombone",
    "playing trumpet",
    "playing violin",
    "playing xylophone",
)
# Paper name -> Kinetics-400 folder name, where they differ.
KINETICS_400_NAMES = {
    "blowing out": "blowing out candles",
    "dribbling ball": "dribbling basketball",
    "mowing the lawn by pushing lawnmower": "mowing lawn",
    "stomping": "stomping grapes",
}
NOT_IN_KINETICS_400 = ("typing", "fingerpicking", "patting")

# Folder names of each split in a download; the first one found is used.
SPLIT_FOLDERS = {
    "train": ("train",),
    "validation": ("val", "validation", "valid"),
    "test": ("test",),
}
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mov")
_MAX_LISTED_SKIPS = 1000  # per split, in info.metadata['skipped_files']

_CITATION = """@inproceedings{arandjelovic2017look,
  title={Look, Listen and Learn},
  author={Arandjelovi{\\'c}, Relja and Zisserman, Andrew},
  booktitle={ICCV},
  year={2017}
}"""


def normalize(name: str) -> str:
  """Folder or CSV label in one spelling: lower case, '_' as ' ', no quotes."""
  return " ".join(name.replace("_", " ").strip().strip("\"'").lower().split())


_INDEX = {normalize(n): i for i, n in enumerate(CLASSES)}
_INDEX.update(
    {
        normalize(k400): CLASSES.index(n)
        for n, k400 in KINETICS_400_NAMES.items()
    }
)


def class_index(name: str) -> Optional[int]:
  """Label index of a Kinetics folder or CSV label; None if not Kinetics-Sounds."""
  return _INDEX.get(normalize(name))


class Video(NamedTuple):
  """One video to decode, with what its name and the CSV say about it."""

  path: str
  label: int
  youtube_id: str
  time_start: int
  time_end: int


_STEM_RE = re.compile(r"^(?P<id>.+)_(?P<start>\d+)_(?P<end>\d+)$")


def parse_stem(stem: str) -> tuple[str, int, int]:
  """(youtube_id, start, end) of '{id}_{start:06d}_{end:06d}'; ids may hold '_'."""
  match = _STEM_RE.match(stem)
  if not match:
    return stem, -1, -1
  return match["id"], int(match["start"]), int(match["end"])


def _is_video(name: str) -> bool:
  return os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS


def videos_from_folders(split_dir: str) -> list[Video]:
  """Videos in the class folders of split_dir that name a Kinetics-Sounds class."""
  videos = []
  for folder in sorted(os.listdir(split_dir)):
    label = class_index(folder)
    if label is None or not os.path.isdir(os.path.join(split_dir, folder)):
      continue
    for name in sorted(
        filter(_is_video, os.listdir(os.path.join(split_dir, folder)))
    ):
      stem = os.path.splitext(name)[0]
      videos.append(
          Video(os.path.join(split_dir, folder, name), label, *parse_stem(stem))
      )
  return videos


def videos_from_csv(split_dir: str, csv_path: str) -> tuple[list[Video], int]:
  """(videos, rows without a file) for the CSV's Kinetics-Sounds rows.

  The CSV's label wins over the folder a file sits in, and files may sit in
  any sub-folder of split_dir (or directly in it).
  """
  by_stem = {}
  for root, _, names in os.walk(split_dir):
    for name in filter(_is_video, names):
      by_stem.setdefault(os.path.splitext(name)[0], os.path.join(root, name))
  videos, missing = {}, 0
  with open(csv_path, newline="") as f:
    for row in csv.DictReader(f):
      label = class_index(row.get("label") or "")
      if label is None:
        continue
      start, end = int(float(row["time_start"])), int(float(row["time_end"]))
      path = by_stem.get(f"{row['youtube_id']}_{start:06d}_{end:06d}")
      if path is None:
        missing += 1
      else:  # a repeated row keeps its first label (TFDS keys must be unique)
        videos.setdefault(
            path, Video(path, label, row["youtube_id"], start, end)
        )
  return sorted(videos.values()), missing


def list_videos(manual_dir: str, folder: str) -> tuple[list[Video], int]:
  """(videos, CSV rows without a file) of one split folder; the CSV is used if present."""
  split_dir = os.path.join(manual_dir, folder)
  csv_path = os.path.join(manual_dir, f"kinetics_{folder}.csv")
  if os.path.isfile(csv_path):
    return videos_from_csv(split_dir, csv_path)
  return videos_from_folders(split_dir), 0


@dataclasses.dataclass(eq=False)
class KineticsSoundsConfig(tfds.core.BuilderConfig):
  """How videos are decoded.

  Attributes:
    fps: frames kept per second.
    sample_rate: audio samples per second (mono).
    shorter_side: frames are resized so that min(height, width) is this.
    jpeg_quality: quality of the stored JPEG frames.
  """

  fps: float = 8.0
  sample_rate: int = 48000
  shorter_side: int = 256
  jpeg_quality: int = 90


class KineticsSounds(tfds.core.GeneratorBasedBuilder):
  """Kinetics-Sounds: frames + 48 kHz mono audio of 34 classes (manual download)."""

  name = "kinetics_sounds"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release: JPEG frames, int16 mono audio."}
  BUILDER_CONFIGS = [
      KineticsSoundsConfig(
          name="fps8", description="8 frames/s, 48 kHz mono, shorter side 256."
      ),
      KineticsSoundsConfig(
          name="fps1",
          fps=1.0,
          description="1 frame/s (single-frame probes), 48 kHz mono, "
          "shorter side 256.",
      ),
  ]
  DEFAULT_CONFIG_NAME = "fps8"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download Kinetics (e.g. Kinetics-400 with the ActivityNet/CVDF scripts), laid
  out as manual_dir/{train,val,test}/{class name}/{youtube_id}_{start:06d}_{end:06d}.mp4,
  optionally with manual_dir/kinetics_{train,val,test}.csv
  (label,youtube_id,time_start,time_end,split). Only the 34 Kinetics-Sounds
  class folders are needed.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    cfg = self.builder_config
    return tfds.core.DatasetInfo(
        builder=self,
        description=(
            f"Kinetics-Sounds (34 classes): JPEG frames at {cfg.fps:g} fps "
            f"(shorter side {cfg.shorter_side}) and mono int16 audio at "
            f"{cfg.sample_rate} Hz of each clip."
        ),
        features=tfds.features.FeaturesDict(
            {
                "video": tfds.features.Video(
                    shape=(None, None, None, 3), encoding_format="jpeg"
                ),
                "audio": features.pcm_audio(cfg.sample_rate),
                "label": tfds.features.ClassLabel(names=CLASSES),
                "filename": tfds.features.Text(),
                "youtube_id": tfds.features.Text(),
                "time_start": np.int32,  # seconds into the YouTube video; -1 if unknown
                "time_end": np.int32,
            }
        ),
        supervised_keys=None,
        homepage="https://www.robots.ox.ac.uk/~vgg/publications/2017/Arandjelovic17/",
        citation=_CITATION,
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    manual_dir = os.fspath(dl_manager.manual_dir)
    splits = {}
    for split, folders in SPLIT_FOLDERS.items():
      folder = next(
          (f for f in folders if os.path.isdir(os.path.join(manual_dir, f))),
          None,
      )
      if folder is None:
        continue
      videos, missing = list_videos(manual_dir, folder)
      if videos:
        splits[split] = self._generate_examples(
            manual_dir, videos, missing, split
        )
      else:  # e.g. an unlabelled test folder: TFDS cannot write an empty split
        logging.warning(
            "kinetics_sounds: no Kinetics-Sounds videos in %s/%s; no %r split.",
            manual_dir,
            folder,
            split,
        )
    if not splits:
      raise FileNotFoundError(
          f"No Kinetics-Sounds videos in train/val/test of {manual_dir}; see docs/datasets.md."
      )
    return splits

  def _generate_examples(
      self, manual_dir: str, videos: list[Video], missing: int, split: str
  ):
    """Decodes the videos of one split, skipping (and counting) bad ones."""
    skips = collections.Counter({"missing": missing} if missing else {})
    listed, partial, kept = [], 0, 0
    for video in videos:
      relpath = os.path.relpath(video.path, manual_dir)
      try:
        example = self._decode(video)
      except Exception as e:  # pylint: disable=broad-except  (never fatal)
        reason = e.reason if isinstance(e, media.MediaError) else "error"
        skips[reason] += 1
        if len(listed) < _MAX_LISTED_SKIPS:
          listed.append([relpath, reason, str(e)[:200]])
        continue
      partial += example.pop("partial")
      kept += 1
      yield relpath, dict(example, filename=relpath)
    self._report(split, len(videos), skips, listed, partial)
    if (
        not kept
    ):  # TFDS would fail with "No examples were yielded"; say why instead
      raise RuntimeError(
          f"kinetics_sounds {split}: none of the {len(videos)} videos could "
          f"be used ({dict(skips)}); first ones: {listed[:3]}"
      )

  def _decode(self, video: Video) -> dict:
    """Frames (JPEG bytes) and int16 audio of one video; raises MediaError."""
    cfg = self.builder_config
    encode = lambda pixels: tf.io.encode_jpeg(
        pixels, quality=cfg.jpeg_quality
    ).numpy()
    # clip_seconds=0: one clip, the whole video; list() closes the file.
    clips = list(
        media.iter_clips(
            video.path,
            fps=cfg.fps,
            shorter_side=cfg.shorter_side,
            sample_rate=cfg.sample_rate,
            channels=1,
            require_audio=True,
            frame_fn=encode,
        )
    )
    if not clips or len(clips[0].frames) == 0:
      raise media.MediaError("empty", "no frames")
    clip = clips[0]
    return {
        "video": list(clip.frames),
        "audio": files.to_int16(clip.audio[:, 0]),
        "label": video.label,
        "youtube_id": video.youtube_id,
        "time_start": video.time_start,
        "time_end": video.time_end,
        "partial": clip.error is not None,  # truncated file: kept, counted
    }

  def _report(
      self,
      split: str,
      num_videos: int,
      skips: collections.Counter,
      listed: list,
      partial: int,
  ) -> None:
    """Logs a split's skip summary and keeps it in info.metadata."""
    skipped = sum(v for k, v in skips.items() if k != "missing")
    logging.info(
        "kinetics_sounds %s: %d of %d videos kept; skipped %s; %d CSV rows "
        "without a file; %d kept despite a decode error part-way.",
        split,
        num_videos - skipped,
        num_videos,
        dict(skips) or "none",
        skips.get("missing", 0),
        partial,
    )
    metadata = self.info.metadata
    metadata.setdefault("skipped", {})[split] = dict(skips)
    metadata.setdefault("skipped_files", {})[split] = listed
    metadata.setdefault("partial", {})[split] = partial
