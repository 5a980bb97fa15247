"""Tiny real media files for tests, written with PyAV (no ffmpeg binary needed).

Frame `i` of a fixture is flat grey at `frame_level(i)` (content="index"), so a
test can tell which source frame a record kept; the audio is a sine tone, at
half amplitude on the left channel and quarter amplitude on the right.
"""

import fractions
import os
from typing import Optional

import av
import numpy as np

# (video codec, audio codec) per container; all ship with PyAV's wheels.
CODECS = {
    ".mp4": ("libx264", "aac"),
    ".mkv": ("libx264", "libmp3lame"),
    ".webm": ("libvpx", "libopus"),
    ".avi": ("mpeg4", "libmp3lame"),
    ".mov": ("libx264", "aac"),
}
LEFT_AMPLITUDE = 0.5
RIGHT_AMPLITUDE = 0.25


LEVEL_PERIOD = 28  # frame levels repeat after this many frames


def frame_level(index: int) -> int:
  """Grey level of source frame `index` (8 apart: survives lossy codecs)."""
  return 16 + 8 * (index % LEVEL_PERIOD)


def _frame_pixels(
    index: int, width: int, height: int, content: str
) -> np.ndarray:
  """RGB pixels of one frame: flat grey (index) or a moving texture."""
  if content == "index":
    return np.full((height, width, 3), frame_level(index), np.uint8)
  # A drifting gradient plus fixed noise: JPEG and h264 have real work to do.
  y, x = np.mgrid[0:height, 0:width]
  rng = np.random.default_rng(0)
  noise = rng.integers(0, 40, (height, width, 1))
  base = np.stack(
      [(x + 3 * index) % 256, (y + 2 * index) % 256, (x + y + index) % 256], -1
  )
  return np.clip(base * 0.8 + noise, 0, 255).astype(np.uint8)


def _tone(
    seconds: float, sample_rate: int, channels: int, tone_hz: float
) -> np.ndarray:
  """Float32 [channels, samples] sine tone."""
  t = np.arange(int(round(seconds * sample_rate))) / sample_rate
  wave = np.sin(2 * np.pi * tone_hz * t)
  amps = [LEFT_AMPLITUDE, RIGHT_AMPLITUDE][:channels]
  return np.stack([a * wave for a in amps]).astype(np.float32)


def write_video(
    path: str,
    seconds: float = 2.0,
    *,
    fps: int = 25,
    size: tuple[int, int] = (128, 96),
    audio: bool = True,
    sample_rate: int = 44100,
    channels: int = 1,
    tone_hz: float = 440.0,
    content: str = "index",
    codecs: Optional[tuple[str, str]] = None,
) -> str:
  """Writes a video (container from the extension) and returns its path."""
  video_codec, audio_codec = codecs or CODECS[os.path.splitext(path)[1]]
  width, height = size
  if audio_codec == "libopus":
    sample_rate = 48000  # Opus only encodes at 48 kHz.
  with av.open(path, "w") as container:
    vstream = container.add_stream(video_codec, rate=fps)
    vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
    if video_codec == "libx264":
      vstream.options = {"preset": "ultrafast"}
    astream = None
    if audio:
      layout = "mono" if channels == 1 else "stereo"
      astream = container.add_stream(
          audio_codec, rate=sample_rate, layout=layout
      )
    wave = _tone(seconds, sample_rate, channels, tone_hz) if audio else None
    sent = 0  # audio samples encoded so far
    for i in range(int(round(seconds * fps))):
      frame = av.VideoFrame.from_ndarray(
          _frame_pixels(i, width, height, content), "rgb24"
      )
      frame.pts = i
      frame.time_base = fractions.Fraction(1, fps)
      container.mux(vstream.encode(frame))
      if astream is not None:  # interleave: audio up to this frame's end
        upto = min(wave.shape[1], int(round((i + 1) / fps * sample_rate)))
        sent = _write_audio(container, astream, wave, sample_rate, sent, upto)
    container.mux(vstream.encode(None))
    if astream is not None:
      _write_audio(container, astream, wave, sample_rate, sent, wave.shape[1])
      container.mux(astream.encode(None))
  return path


def _write_audio(
    container, stream, wave: np.ndarray, sample_rate: int, start: int, stop: int
) -> int:
  """Encodes samples [start, stop) of float32 [channels, samples] audio."""
  layout = "mono" if wave.shape[0] == 1 else "stereo"
  if stop > start:
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(wave[:, start:stop]), format="fltp", layout=layout
    )
    frame.sample_rate = sample_rate
    frame.pts = start
    frame.time_base = fractions.Fraction(1, sample_rate)
    container.mux(stream.encode(frame))
  return stop


def truncate(path: str, fraction: float) -> str:
  """Cuts a file to `fraction` of its bytes (a download that stopped)."""
  size = os.path.getsize(path)
  with open(path, "r+b") as f:
    f.truncate(int(size * fraction))
  return path


def write_empty(path: str) -> str:
  """Writes a zero-length file."""
  open(path, "wb").close()
  return path


def write_garbage(path: str, num_bytes: int = 4096) -> str:
  """Writes random bytes under a video extension."""
  with open(path, "wb") as f:
    f.write(np.random.default_rng(0).bytes(num_bytes))
  return path


def double_or_die(x: int) -> int:
  """2 * x, but kills its own process for negative x (a decoder crash)."""
  if x < 0:
    os._exit(3)
  return 2 * x
