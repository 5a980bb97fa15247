"""The clips a trained audio-visual net takes, cut from a media file.

A checkpoint's config says what one input clip looks like (`ClipSpec`: frames,
frame rate, sample rate, channels, crop); `decode` reads a file at that rate
and size (as the pipeline does at evaluation: shorter side `resize_shorter`,
centre crop `image_size`), and `cut_clips` cuts it into clips with their own
sound. The CAM (`avself.video_cam`), the localize and separate commands and
the localization evaluator all read files this way.
"""

import dataclasses
from typing import Optional

import numpy as np

from avself.data import media as media_lib


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """What one input clip of the net looks like (from the training config)."""

  num_frames: int
  fps: float  # frames per second inside a clip
  sample_rate: int
  channels: int
  image_size: int
  resize_shorter: int

  @property
  def num_samples(self) -> int:
    """Audio samples per clip, as the pipeline: round(clip_seconds * sample_rate)."""
    return int(round(self.num_frames / self.fps * self.sample_rate))


def clip_spec(
    config, channels: Optional[int] = None, section: str = "sync"
) -> ClipSpec:
  """The clip geometry a checkpoint was trained on: `config.data[section]`'s
  frames and seconds (`sync`, `mixture` or `clip`, the pipeline mode's)."""
  d = config.data
  clip = d[section]
  return ClipSpec(
      num_frames=int(clip.num_frames),
      fps=float(clip.num_frames) / float(clip.clip_seconds),
      sample_rate=int(d.sample_rate),
      channels=int(channels or d.get("channels", 1)),
      image_size=int(d.image_size),
      resize_shorter=int(d.resize_shorter or d.image_size),
  )


def state_clip_spec(config, state) -> ClipSpec:
  """clip_spec with the audio channel count the restored net was built for."""
  return clip_spec(
      config, state.params["audio_branch"]["conv1"]["kernel"].shape[1]
  )  # [65, C, 64]


def centre_crop(
    frames: np.ndarray, size: int
) -> tuple[np.ndarray, tuple[int, int]]:
  """[T, H, W, 3] -> [T, size, size, 3] and the crop's (top, left), as the pipeline's centre crop."""
  h, w = frames.shape[1:3]
  top, left = max(h - size, 0) // 2, max(w - size, 0) // 2
  return frames[:, top : top + size, left : left + size], (top, left)


def decode(path: str, spec: ClipSpec, max_seconds: Optional[float] = None):
  """Decodes a file for the net: (frames uint8 [T, S, S, 3], audio [n, C], Media, crop (top, left))."""
  media = media_lib.load_video(
      path,
      fps=spec.fps,
      shorter_side=spec.resize_shorter,
      sample_rate=spec.sample_rate,
      channels=spec.channels,
      max_seconds=max_seconds,
  )
  frames, crop = centre_crop(np.asarray(media.frames), spec.image_size)
  audio = (
      media.audio
      if media.has_audio
      else np.zeros((0, spec.channels), np.float32)
  )
  return frames, audio, media, crop


def cut_clips(
    frames: np.ndarray,
    audio: np.ndarray,
    spec: ClipSpec,
    hop: Optional[int] = None,
    starts: Optional[np.ndarray] = None,
):
  """Clips every `hop` frames: video uint8 [K, N, S, S, 3], waveform [K, n, C], first frame of each [K].

  `hop` defaults to the clip length (consecutive clips); `starts` (first
  frames) replaces it. Audio missing at the end (or a file without sound) is
  zero-padded, so every whole clip of frames is kept; frames after the last
  whole clip are dropped.
  """
  n, hop = spec.num_samples, int(hop or spec.num_frames)
  if hop < 1:
    raise ValueError(f"hop must be >= 1 frame, got {hop}")
  if len(frames) < spec.num_frames:
    raise ValueError(
        f"{len(frames)} frames at {spec.fps:g} fps: shorter than one clip of "
        f"{spec.num_frames} frames"
    )
  if starts is None:
    starts = np.arange(0, len(frames) - spec.num_frames + 1, hop)
  # Audio start of clip k at its first frame's time, rounded to a sample.
  sample_starts = np.round(
      np.asarray(starts) / spec.fps * spec.sample_rate
  ).astype(np.int64)
  need = int(sample_starts[-1]) + n
  if len(audio) < need:
    audio = np.concatenate(
        [audio, np.zeros((need - len(audio), audio.shape[1]), audio.dtype)]
    )
  video = np.stack([frames[s : s + spec.num_frames] for s in starts])
  waveform = np.stack([audio[s : s + n] for s in sample_starts]).astype(
      np.float32
  )
  return video, waveform, np.asarray(starts)
