"""Finding videos, labels and splits, and planning the shards they go to.

The options and plan dataclasses live here too: the worker side
(`prepare_workers`) and the main side (`prepare_shards`, `prepare`) use them.
No TensorFlow here.
"""

import collections
import csv
import dataclasses
import glob
import hashlib
import os
import re
from typing import Optional, Sequence, Union

VIDEO_EXTENSIONS = (
    ".mp4",
    ".m4v",
    ".mkv",
    ".webm",
    ".avi",
    ".mov",
    ".mpg",
    ".mpeg",
    ".flv",
    ".wmv",
    ".ogv",
    ".3gp",
    ".ts",
    ".mts",
)
DEFAULT_TEST_FRACTION = (
    0.1  # used when labels are given and the CSV has no split
)
_SPLIT_NAME = re.compile(r"[A-Za-z0-9_-]+")


class PrepareError(Exception):
  """Nothing usable to prepare, or an output folder that cannot be reused."""


@dataclasses.dataclass(frozen=True)
class Options:
  """Everything that decides the records' content; a resumed run must match.

  Attributes:
    fps: frames kept per second (nearest decoded frame to each k / fps).
    shorter_side: frames are resized so their shorter side is this (aspect kept).
    jpeg_quality: PIL JPEG quality of the stored frames.
    sample_rate: audio is resampled to this rate (Hz).
    channels: 1 (mono) or 2 (stereo).
    audio_format: 'pcm_s16le' (int16 bytes) or 'floats' (DMVR float lists).
    clip_seconds: split videos into records this long; 0 = one record per video.
    max_seconds: decode at most this much of each video; 0 = all.
    min_seconds: drop clips (and skip videos) shorter than this.
    num_shards: shards of the train split (other splits: proportional, >= 1).
    test_fraction: hash-split share of 'test'; None = 0.1 with labels, else 0.
  """

  fps: float = 10.0
  shorter_side: int = 256
  jpeg_quality: int = 90
  sample_rate: int = 48000
  channels: int = 1
  audio_format: str = "pcm_s16le"
  clip_seconds: float = 0.0
  max_seconds: float = 0.0
  min_seconds: float = 1.0
  num_shards: int = 8
  test_fraction: Optional[float] = None

  def validate(self) -> None:
    """Raises ValueError on an option that cannot work."""
    checks = [
        (self.fps > 0, "fps must be > 0"),
        (self.shorter_side > 0, "shorter_side must be > 0"),
        (1 <= self.jpeg_quality <= 100, "jpeg_quality must be in [1, 100]"),
        (self.sample_rate > 0, "sample_rate must be > 0"),
        (self.channels in (1, 2), "channels must be 1 or 2"),
        (
            self.audio_format in ("pcm_s16le", "floats"),
            "audio_format must be 'pcm_s16le' or 'floats'",
        ),
        (self.clip_seconds >= 0, "clip_seconds must be >= 0 (0 = whole video)"),
        (self.max_seconds >= 0, "max_seconds must be >= 0 (0 = no cap)"),
        (self.min_seconds >= 0, "min_seconds must be >= 0"),
        (
            not self.clip_seconds or self.clip_seconds >= self.min_seconds,
            "clip_seconds must be >= min_seconds",
        ),
        (self.num_shards >= 1, "num_shards must be >= 1"),
        (
            self.test_fraction is None or 0 <= self.test_fraction < 1,
            "test_fraction must be in [0, 1)",
        ),
    ]
    for ok, message in checks:
      if not ok:
        raise ValueError(f"{message}; got {self}")


@dataclasses.dataclass(frozen=True)
class Video:
  """One input file and where it goes."""

  path: str  # absolute
  name: str  # relative to the videos folder; stored as video/filename
  split: str
  label_index: int = -1
  label_text: str = ""


@dataclasses.dataclass
class Shard:
  """One output file and the videos assigned to it."""

  split: str
  index: int
  count: int  # shards in this split
  videos: list


########################################################################
# Finding videos, labels and splits.


def find_videos(videos: Union[str, Sequence[str]]) -> list[str]:
  """Sorted absolute paths: a folder (searched recursively), a glob, a file or a list."""
  if not isinstance(videos, str):
    return sorted({p for v in videos for p in find_videos(v)})
  videos = os.path.expanduser(videos)
  if os.path.isdir(videos):
    found = [
        os.path.join(d, f)
        for d, _, files in os.walk(videos)
        for f in files
        if f.lower().endswith(VIDEO_EXTENSIONS)
    ]
  elif glob.has_magic(videos):
    found = [p for p in glob.glob(videos, recursive=True) if os.path.isfile(p)]
  else:
    found = [videos] if os.path.isfile(videos) else []
  return sorted(os.path.abspath(p) for p in found)


def videos_root(videos: Union[str, Sequence[str]], files: Sequence[str]) -> str:
  """The folder that stored file names are relative to."""
  if isinstance(videos, str) and os.path.isdir(os.path.expanduser(videos)):
    return os.path.abspath(os.path.expanduser(videos))
  return os.path.commonpath([os.path.dirname(f) for f in files])


def hash_split(name: str, test_fraction: float) -> str:
  """'test' for a stable `test_fraction` of file names, else 'train'.

  Hashes the base name only, so adding videos or moving the folder never
  moves an old video to the other split.
  """
  digest = hashlib.sha1(os.path.basename(name).encode()).hexdigest()
  return "test" if int(digest[:15], 16) / 16**15 < test_fraction else "train"


def read_labels(csv_path: str) -> list[dict]:
  """Rows of a labels CSV as dicts with 'file', 'label' and 'split' (maybe '')."""
  with open(csv_path, newline="") as f:
    reader = csv.DictReader(f)
    columns = {c.strip().lower(): c for c in reader.fieldnames or []}
    if "file" not in columns or "label" not in columns:
      raise PrepareError(
          f"{csv_path}: needs a header with columns 'file' and 'label' "
          f"(and optionally 'split'); found {reader.fieldnames}"
      )
    rows = []
    for row in reader:
      get = (
          lambda key: (row.get(columns[key]) or "").strip()
          if key in columns
          else ""
      )
      if get("file"):
        rows.append(
            {"file": get("file"), "label": get("label"), "split": get("split")}
        )
  return rows


def match_labels(
    rows: Sequence[dict], files: Sequence[str], root: str, csv_dir: str
) -> tuple[dict, list]:
  """Maps CSV rows to files -> ({path: row}, unmatched rows).

  A row's `file` may be relative to the CSV's folder, to the videos folder, to
  the working directory, absolute, a trailing part of a path, or a bare name
  (when that name is unique).
  """
  by_path = {os.path.normpath(f): f for f in files}
  by_name = collections.defaultdict(list)
  for f in files:
    by_name[os.path.basename(f)].append(f)
  matched, unmatched = {}, []
  for row in rows:
    path = _match_one(row["file"], by_path, by_name, files, root, csv_dir)
    if path is None:
      unmatched.append(row)
    else:
      first = matched.setdefault(path, row)
      if (first["label"], first["split"]) != (row["label"], row["split"]):
        raise PrepareError(
            f"{os.path.relpath(path, root)} is listed twice in the labels "
            f"with different values: {first['file']!r} -> "
            f"{first['label']!r}/{first['split'] or '-'}, {row['file']!r} -> "
            f"{row['label']!r}/{row['split'] or '-'} (label/split); keep one"
        )
  return matched, unmatched


def _match_one(entry, by_path, by_name, files, root, csv_dir) -> Optional[str]:
  """The file a labels row names, or None."""
  entry = os.path.normpath(entry.replace("\\", "/"))
  bases = [""] if os.path.isabs(entry) else [csv_dir, root, os.getcwd()]
  for base in bases:
    path = os.path.normpath(os.path.abspath(os.path.join(base, entry)))
    if path in by_path:
      return by_path[path]
  tail = [f for f in files if f.endswith(os.sep + entry)]
  if len(tail) == 1:
    return tail[0]
  same_name = by_name.get(os.path.basename(entry), [])
  return same_name[0] if len(same_name) == 1 else None


def plan_videos(
    files: Sequence[str], root: str, labels: Optional[str], test_fraction: float
) -> tuple[list, list, list]:
  """Assigns files to splits and labels -> (videos, skipped, label_names)."""
  names = {f: os.path.relpath(f, root) for f in files}
  if labels is None:
    videos = [
        Video(f, names[f], hash_split(names[f], test_fraction)) for f in files
    ]
    return videos, [], []
  rows = read_labels(labels)
  matched, unmatched = match_labels(
      rows, files, root, os.path.dirname(os.path.abspath(labels))
  )
  label_names = sorted({r["label"] for r in rows if r["label"]})
  index = {name: i for i, name in enumerate(label_names)}
  skipped = [
      skip(
          r["file"],
          "not_found",
          f"listed in {os.path.basename(labels)}, " "no such video",
      )
      for r in unmatched
  ]
  videos = []
  for f in files:
    row = matched.get(f)
    if row is None:
      skipped.append(
          skip(names[f], "unlabelled", f"not in {os.path.basename(labels)}")
      )
      continue
    split = row["split"] or hash_split(names[f], test_fraction)
    if not _SPLIT_NAME.fullmatch(split):
      raise PrepareError(
          f"{labels}: split {split!r} for {row['file']} must match "
          "[A-Za-z0-9_-]+ (it names the shard files)"
      )
    videos.append(
        Video(f, names[f], split, index.get(row["label"], -1), row["label"])
    )
  return videos, skipped, label_names


def skip(name: str, reason: str, detail: str = "") -> dict:
  """One entry of the manifest's skipped list."""
  return {"file": name, "reason": reason, "detail": detail}


def plan_shards(videos: Sequence[Video], num_shards: int) -> list[Shard]:
  """Contiguous runs of the sorted videos per split.

  The train split gets `num_shards` shards; every other split gets the same
  share per video, rounded, at least 1 and at most one per video.
  """
  by_split = collections.defaultdict(list)
  for v in sorted(videos, key=lambda v: v.name):
    by_split[v.split].append(v)
  num_train = len(by_split.get("train", []))
  shards = []
  for split in sorted(by_split):
    items = by_split[split]
    count = num_shards
    if split != "train":
      share = num_shards * len(items) / num_train if num_train else num_shards
      count = max(1, min(len(items), round(share)))
    for i in range(count):
      chunk = items[i * len(items) // count : (i + 1) * len(items) // count]
      shards.append(Shard(split, i, count, chunk))
  return shards
