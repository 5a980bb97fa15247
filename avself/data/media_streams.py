"""PyAV decoding parts that `avself.data.media` builds clips from.

Opening a container, picking frames at a target rate, buffering resampled
audio, converting frames. No TensorFlow here (prepare's workers use it).
"""

import math
import os
from typing import Callable, Optional

import av
import av.video.reformatter
import numpy as np

EPS = 1e-6
LAYOUTS = {1: "mono", 2: "stereo"}


class MediaError(Exception):
  """A file that yields no usable media; `reason` is a short code for reports."""

  def __init__(self, reason: str, detail: str = ""):
    super().__init__(f"{reason}: {detail}" if detail else reason)
    self.reason = reason
    self.detail = detail


def count(seconds: float, rate: float) -> int:
  """Number of samples (or frames) at `rate` that start before `seconds`."""
  return max(0, int(math.ceil(seconds * rate - EPS)))


def open(path: str):
  """Opens a container, mapping unreadable files to MediaError."""
  if os.path.getsize(path) == 0:
    raise MediaError("empty", "zero-length file")
  try:
    return av.open(path)
  except Exception as e:  # PyAV raises many error types for bad files.
    raise MediaError("undecodable", describe(e)) from e


def describe(error: BaseException) -> str:
  """A short one-line description of an exception."""
  text = str(error).strip().splitlines()
  return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


class Decoder:
  """Iterates decoded frames in demux order; stops at the first error.

  A truncated file decodes up to the damage: `error` then says what happened,
  and the caller keeps what came before.
  """

  def __init__(self, container, streams):
    self.container, self.streams, self.error = container, streams, None

  def __iter__(self):
    try:
      for packet in self.container.demux(*self.streams):
        for frame in packet.decode():
          yield frame
    except Exception as e:  # Decoders raise assorted errors on damaged data.
      self.error = describe(e)


class FramePicker:
  """Keeps the decoded frame nearest each target time `k / fps`."""

  def __init__(self, fps: float, convert: Callable):
    self.fps, self.convert = fps, convert
    self.next_index = 0
    self.picked = []  # converted frames not yet taken by a clip
    self._prev = None  # (time, frame)
    self._cache = (None, None)  # (frame, converted): repeats convert once

  def push(self, time: float, frame) -> None:
    """Adds the next decoded frame, shown from `time` seconds."""
    if self._prev is not None:
      time = max(time, self._prev[0])  # tolerate out-of-order timestamps
    while self.next_index / self.fps <= time + EPS:
      target = self.next_index / self.fps
      use_prev = (
          self._prev is not None and target - self._prev[0] <= time - target
      )
      self._pick(self._prev[1] if use_prev else frame)
    self._prev = (time, frame)

  def finish(self, end: float) -> None:
    """Fills targets before `end` with the last frame."""
    while self._prev is not None and self.next_index / self.fps < end - EPS:
      self._pick(self._prev[1])

  def take(self, stop_index: int) -> list:
    """Removes and returns picked frames with index < stop_index."""
    first = self.next_index - len(self.picked)
    n = max(0, min(len(self.picked), stop_index - first))
    taken, self.picked = self.picked[:n], self.picked[n:]
    return taken

  def _pick(self, frame) -> None:
    if self._cache[0] is not frame:
      self._cache = (frame, self.convert(frame))
    self.picked.append(self._cache[1])
    self.next_index += 1


class AudioBuffer:
  """Resampled audio, indexed by sample from a reference time."""

  def __init__(self, sample_rate: int, channels: int):
    if channels not in LAYOUTS:
      raise ValueError(f"channels must be 1 or 2, got {channels}")
    self.sample_rate, self.channels = sample_rate, channels
    self._resampler = None  # made at the first frame, for its layout
    self._source_channels = channels
    self._chunks = []  # float32 [n, C] arrays
    self._size = 0  # samples in _chunks
    self.first_time = None  # seconds of the first decoded sample
    self._offset = None  # index (from the reference time) of _chunks[0][0]

  def push(self, frame) -> None:
    """Resamples and appends one decoded audio frame."""
    if self.first_time is None:
      self.first_time = frame.time or 0.0
    if self._resampler is None:
      self._resampler = self._make_resampler(frame)
    for out in self._resampler.resample(frame):
      self._append(out)

  def _make_resampler(self, frame) -> av.AudioResampler:
    """Resamples to float at the target rate; mono is downmixed by averaging.

    libswresample's own stereo-to-mono matrix adds the channels at 0.71 each,
    which puts a loud stereo file (peak 0.93) past full scale and makes a
    quiet one 3 dB louder. To mono, the source layout is kept and `_append`
    averages the channels instead (ffmpeg's `-ac 1` for stereo), which can
    never exceed the louder channel.
    """
    source = len(frame.layout.channels)
    if self.channels == 1 and source > 1:
      try:
        resampler = av.AudioResampler(
            format="flt",
            layout="stereo" if source == 2 else frame.layout.name,
            rate=self.sample_rate,
        )
        self._source_channels = source
        return resampler
      except (ValueError, av.error.FFmpegError):  # an unnamed layout
        pass
    return av.AudioResampler(
        format="flt", layout=LAYOUTS[self.channels], rate=self.sample_rate
    )

  def flush(self) -> None:
    """Drains the resampler's delay line."""
    if self._resampler is None:
      return
    try:
      for out in self._resampler.resample(None):
        self._append(out)
    except (
        Exception
    ):  # A resampler that never saw a frame has nothing to drain.
      pass

  def align(self, reference_time: float) -> None:
    """Sets the time that sample index 0 refers to."""
    if self._offset is None and self.first_time is not None:
      self._offset = round(
          (self.first_time - reference_time) * self.sample_rate
      )

  def end(self) -> int:
    """Index one past the last buffered sample (after `align`)."""
    return (self._offset or 0) + self._size

  def take(self, start: int, stop: int) -> np.ndarray:
    """Removes and returns samples [start, stop); silence where there are none."""
    self._drop_before(start)
    out = np.zeros((max(0, stop - start), self.channels), np.float32)
    if self._chunks and stop > self._offset:
      data = np.concatenate(self._chunks)
      n = min(stop - self._offset, len(data))
      out[self._offset - start : self._offset - start + n] = data[:n]
      self._chunks = [data[n:]] if n < len(data) else []
      self._size -= n
      self._offset += n
    return out

  def _append(self, frame) -> None:
    samples = frame.to_ndarray().reshape(-1, self._source_channels)  # packed
    if self._source_channels != self.channels:  # to mono: the channels' mean
      samples = samples.mean(axis=1, keepdims=True, dtype=np.float32)
    self._chunks.append(samples)
    self._size += len(samples)

  def _drop_before(self, start: int) -> None:
    if self._offset is None:
      self._offset = start
    if self._chunks and self._offset < start:
      data = np.concatenate(self._chunks)[start - self._offset :]
      self._size = len(data)
      self._chunks = [data] if len(data) else []
    self._offset = max(self._offset, start)


def video_stream(container):
  """The first video stream, else MediaError."""
  if not container.streams.video:
    raise MediaError("no_video", "no video track")
  stream = container.streams.video[0]
  if not stream.codec_context.width:
    raise MediaError("undecodable", "video track without a frame size")
  return stream


def frame_time(frame, index: int, stream) -> float:
  """Seconds at which a decoded frame is shown (from its index if no pts)."""
  if frame.time is not None:
    return float(frame.time)
  rate = stream.average_rate or stream.guessed_rate or 25
  return index / float(rate)


def converter(
    width: int, height: int, frame_fn: Optional[Callable]
) -> Callable:
  """Decoded frame -> uint8 [H, W, 3] at the output size (then `frame_fn`)."""
  # One reformatter for the whole stream: it keeps its swscale context, which
  # frame.reformat would rebuild for every frame (10x slower).
  reformatter = av.video.reformatter.VideoReformatter()

  def convert(frame):
    pixels = reformatter.reformat(
        frame, width=width, height=height, format="rgb24", interpolation="AREA"
    ).to_ndarray()
    return frame_fn(pixels) if frame_fn else pixels

  return convert
