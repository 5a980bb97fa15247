"""Tiny fake downloads, laid out like the real ones, for tests and for trying the builders.

    make_esc50("/tmp/esc50", clips_per_class=5, num_classes=10, seconds=1.0)
    make_dcase2013("/tmp/dcase", clips_per_class=10, seconds=2.0, test_clips_per_class=1)
    make_kinetics_sounds("/tmp/ks", clips_per_class=2, num_classes=5)

Each returns the folder to pass as `manual_dir`. The files are real WAVs
(16-bit PCM) and MP4s (H.264 + AAC, written with PyAV). A clip of class `label`
sounds a sine tone at `tone_hz(label)` under faint noise, and a video shows a
flat colour `frame_colour(label)`, so a linear probe can learn every class.
"""

import csv
import fractions
import os
from typing import Optional, Sequence

import av
import numpy as np

from avself.datasets import dcase2013
from avself.datasets import esc50
from avself.datasets import files
from avself.datasets import kinetics_sounds

NOISE_LEVEL = 0.01
LEFT_AMPLITUDE, RIGHT_AMPLITUDE = 0.5, 0.25  # stereo fakes: mono mix is 0.375
# What make_kinetics_sounds(broken=True) adds to the first class of 'train'.
NO_AUDIO_STEM = "noaudio0000_000000_000010"
UNDECODABLE_STEM = "garbage0000_000000_000010"
MISSING_ID = "missing0000"  # a CSV row whose file is absent


def tone_hz(label: int) -> float:
  """Frequency of the tone of class `label` (distinct, below 6 kHz for 50 classes)."""
  return 220.0 + 110.0 * label


def frame_colour(label: int) -> tuple[int, int, int]:
  """RGB colour of the frames of class `label`."""
  return (
      (40 + 37 * label) % 256,
      (90 + 91 * label) % 256,
      (140 + 151 * label) % 256,
  )


def tone(
    label: int,
    seconds: float,
    sample_rate: int,
    channels: int = 1,
    seed: int = 0,
) -> np.ndarray:
  """Float32 [N] (mono, amplitude 0.5) or [N, 2] (0.5 left, 0.25 right) tone plus noise."""
  n = int(round(seconds * sample_rate))
  wave = np.sin(2 * np.pi * tone_hz(label) * np.arange(n) / sample_rate)
  noise = NOISE_LEVEL * np.random.default_rng(seed).standard_normal(
      (n, channels)
  )
  amplitudes = np.array([LEFT_AMPLITUDE, RIGHT_AMPLITUDE][:channels])
  out = wave[:, None] * amplitudes + noise
  return (out[:, 0] if channels == 1 else out).astype(np.float32)


def make_esc50(
    root: str,
    clips_per_class: int = 2,
    num_classes: int = 50,
    seconds: float = 5.0,
    sample_rate: int = esc50.SAMPLE_RATE,
) -> str:
  """A fake `ESC-50-master/` (audio/*.wav, meta/esc50.csv); clip k goes to fold k % 5 + 1."""
  base = os.path.join(root, esc50.ARCHIVE_FOLDER)
  os.makedirs(os.path.join(base, "audio"), exist_ok=True)
  os.makedirs(os.path.join(base, "meta"), exist_ok=True)
  rows = []
  for target in range(num_classes):
    for k in range(clips_per_class):
      clip_id = 100000 + 100 * target + k
      row = dict(
          filename=f"{k % 5 + 1}-{clip_id}-A-{target}.wav",
          fold=k % 5 + 1,
          target=target,
          category=esc50.CATEGORIES[target],
          esc10=esc50.CATEGORIES[target] in esc50.ESC10,
          src_file=clip_id,
          take="A",
      )
      files.write_int16(
          os.path.join(base, "audio", row["filename"]),
          sample_rate,
          tone(target, seconds, sample_rate, seed=clip_id),
      )
      rows.append(row)
  _write_csv(
      os.path.join(base, "meta", "esc50.csv"),
      sorted(rows, key=lambda r: r["filename"]),
  )
  return root


def make_dcase2013(
    root: str,
    clips_per_class: int = 10,
    num_classes: int = 10,
    seconds: float = 30.0,
    test_clips_per_class: int = 0,
    sample_rate: int = dcase2013.SAMPLE_RATE,
) -> str:
  """A fake `scenes_stereo/{scene}{NN}.wav` (and `scenes_stereo_testset/` if asked)."""
  folders = {
      dcase2013.DEV_FOLDER: clips_per_class,
      dcase2013.TEST_FOLDER: test_clips_per_class,
  }
  for offset, (folder, count) in enumerate(folders.items()):
    if not count:
      continue
    os.makedirs(os.path.join(root, folder), exist_ok=True)
    for label, scene in enumerate(dcase2013.SCENES[:num_classes]):
      for number in range(1, count + 1):
        path = os.path.join(root, folder, f"{scene}{number:02d}.wav")
        files.write_int16(
            path,
            sample_rate,
            tone(
                label,
                seconds,
                sample_rate,
                channels=2,
                seed=offset * 10_000 + 100 * label + number,
            ),
        )
  return root


def make_kinetics_sounds(
    root: str,
    clips_per_class: int = 1,
    num_classes: int = 34,
    *,
    labels: Optional[Sequence[int]] = None,
    splits: Sequence[str] = ("train", "val"),
    seconds: float = 1.0,
    size: tuple[int, int] = (32, 32),
    fps: int = 10,
    sample_rate: int = 44100,
    with_csv: bool = True,
    other_classes: Sequence[str] = ("abseiling",),
    broken: bool = True,
) -> str:
  """A fake Kinetics download: `{split}/{class}/{id}_{start:06d}_{end:06d}.mp4` (+ CSVs).

  Classes are the first `num_classes` Kinetics-Sounds labels (or `labels`), in
  folders named as Kinetics-400 names them; `other_classes` get a video each
  that the builder must ignore. With `broken`, the first class of 'train' also
  holds a video without audio (NO_AUDIO_STEM) and random bytes
  (UNDECODABLE_STEM), and its CSV a row whose file is missing (MISSING_ID).
  """
  labels = list(range(num_classes)) if labels is None else list(labels)
  for split in splits:
    rows = []
    for label in labels:
      for k in range(clips_per_class):
        youtube_id = (
            f"v{label:02d}_{k:02d}-{split[:2]}x"  # ids may hold '_' and '-'
        )
        rows.append(
            _fake_clip(
                root,
                split,
                _kinetics_folder(label),
                youtube_id,
                label,
                seconds,
                size,
                fps,
                sample_rate,
                audio=True,
            )
        )
    for other in other_classes:
      rows.append(
          _fake_clip(
              root,
              split,
              other,
              f"other_{split}",
              0,
              seconds,
              size,
              fps,
              sample_rate,
              audio=True,
          )
      )
    if broken and split == "train":
      rows.extend(
          _broken_clips(root, split, labels[0], seconds, size, fps, sample_rate)
      )
    if with_csv:
      _write_csv(os.path.join(root, f"kinetics_{split}.csv"), rows)
  return root


def _kinetics_folder(label: int) -> str:
  """The Kinetics-400 folder name of a Kinetics-Sounds label."""
  name = kinetics_sounds.CLASSES[label]
  return kinetics_sounds.KINETICS_400_NAMES.get(name, name)


def _fake_clip(
    root,
    split,
    folder,
    youtube_id,
    label,
    seconds,
    size,
    fps,
    sample_rate,
    audio,
) -> dict:
  """Writes one fake Kinetics clip; returns its CSV row."""
  start = 10 + label
  end = start + 10
  directory = os.path.join(root, split, folder)
  os.makedirs(directory, exist_ok=True)
  write_mp4(
      os.path.join(directory, f"{youtube_id}_{start:06d}_{end:06d}.mp4"),
      label,
      seconds=seconds,
      size=size,
      fps=fps,
      sample_rate=sample_rate,
      audio=audio,
  )
  return dict(
      label=folder,
      youtube_id=youtube_id,
      time_start=start,
      time_end=end,
      split=split,
  )


def _broken_clips(
    root, split, label, seconds, size, fps, sample_rate
) -> list[dict]:
  """A video without audio, an undecodable file and a missing one; their CSV rows."""
  folder = _kinetics_folder(label)
  directory = os.path.join(root, split, folder)
  write_mp4(
      os.path.join(directory, NO_AUDIO_STEM + ".mp4"),
      label,
      seconds=seconds,
      size=size,
      fps=fps,
      sample_rate=sample_rate,
      audio=False,
  )
  with open(os.path.join(directory, UNDECODABLE_STEM + ".mp4"), "wb") as f:
    f.write(np.random.default_rng(0).bytes(4096))
  rows = []
  for stem in (NO_AUDIO_STEM, UNDECODABLE_STEM, f"{MISSING_ID}_000000_000010"):
    youtube_id, start, end = kinetics_sounds.parse_stem(stem)
    rows.append(
        dict(
            label=folder,
            youtube_id=youtube_id,
            time_start=start,
            time_end=end,
            split=split,
        )
    )
  return rows


def write_mp4(
    path: str,
    label: int,
    *,
    seconds: float = 1.0,
    size: tuple[int, int] = (32, 32),
    fps: int = 10,
    sample_rate: int = 44100,
    audio: bool = True,
) -> str:
  """An H.264 + stereo AAC mp4 of class `label` (flat colour, tone); returns path."""
  width, height = size
  pixels = np.full((height, width, 3), frame_colour(label), np.uint8)
  wave = (
      tone(label, seconds, sample_rate, channels=2).T.copy() if audio else None
  )  # [2, N]
  with av.open(path, "w") as container:
    vstream = container.add_stream("libx264", rate=fps)
    vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
    vstream.options = {"preset": "ultrafast"}
    astream = (
        container.add_stream("aac", rate=sample_rate, layout="stereo")
        if audio
        else None
    )
    sent = 0  # audio samples written: interleave audio up to each frame's end
    for i in range(int(round(seconds * fps))):
      frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
      frame.pts, frame.time_base = i, fractions.Fraction(1, fps)
      container.mux(vstream.encode(frame))
      if astream is not None:
        sent = _mux_audio(
            container, astream, wave, sent, round((i + 1) * sample_rate / fps)
        )
    container.mux(vstream.encode(None))
    if astream is not None:
      _mux_audio(container, astream, wave, sent, wave.shape[1])
      container.mux(astream.encode(None))
  return path


def _mux_audio(
    container, stream, wave: np.ndarray, start: int, stop: int
) -> int:
  """Encodes samples [start, stop) of planar float32 [2, N] audio; returns stop."""
  stop = min(stop, wave.shape[1])
  if stop > start:
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(wave[:, start:stop]),
        format="fltp",
        layout="stereo",
    )
    frame.sample_rate, frame.pts = stream.rate, start
    frame.time_base = fractions.Fraction(1, stream.rate)
    container.mux(stream.encode(frame))
  return stop


def _write_csv(path: str, rows: list[dict]) -> None:
  """Writes dict rows with the first row's keys as the header."""
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
