"""Decoding media files with PyAV: frames at a target rate, resampled audio.

Anything ffmpeg reads (mp4, mkv, webm, avi, mov, …) works. Times are measured
from the first decoded video frame: target frame `k` is the decoded frame
nearest to `k / fps`, and audio sample `n` plays at `n / sample_rate` (audio
that starts later is padded with silence, audio that starts earlier is cut),
so frames and sound stay aligned.

    media = load_video("a.mp4", fps=10, shorter_side=256, sample_rate=48000, channels=1)
    media.frames  # uint8 [T, H, W, 3], min(H, W) == 256
    media.audio   # float32 [N, 1] in [-1, 1]

`iter_clips` streams a long video as consecutive clips, so memory holds one
clip at a time; `media_encode.write_mp4` writes mp4 files. This module imports
no TensorFlow (prepare's workers use it).
"""

import dataclasses
import math
from typing import Any, Callable, Iterator, Optional

import av
import numpy as np

from avself.data.media_streams import AudioBuffer
from avself.data.media_streams import converter
from avself.data.media_streams import count
from avself.data.media_streams import Decoder
from avself.data.media_streams import EPS
from avself.data.media_streams import FramePicker
from avself.data.media_streams import frame_time
from avself.data.media_streams import open
from avself.data.media_streams import video_stream
from avself.data.media_streams import MediaError


@dataclasses.dataclass
class Media:
  """Decoded frames and audio of one video (or one clip of it).

  Attributes:
    frames: uint8 [T, H, W, 3]; frame k shows time `start + k / fps`. A list of
      `frame_fn` results instead when `iter_clips` was given a `frame_fn`.
    audio: float32 [N, C] in [-1, 1]; sample n plays at `start + n / sample_rate`.
    fps: frames per second of `frames`.
    sample_rate: samples per second of `audio`.
    duration: seconds covered (T == ceil(duration * fps) up to rounding).
    has_audio: whether the file had audio (else `audio` is empty).
    start: seconds from the first video frame to this clip's start.
    error: why decoding stopped early (a truncated file), else None.
  """

  frames: Any
  audio: np.ndarray
  fps: float
  sample_rate: int
  duration: float
  has_audio: bool
  start: float = 0.0
  error: Optional[str] = None


def output_size(
    width: int,
    height: int,
    shorter_side: int,
    sample_aspect: Optional[float] = None,
) -> tuple[int, int]:
  """(width, height) with the shorter side set and the display aspect kept."""
  display_width = width * (sample_aspect or 1.0)
  scale = shorter_side / min(display_width, height)
  return max(1, round(display_width * scale)), max(1, round(height * scale))


def iter_clips(
    path: str,
    *,
    fps: float,
    shorter_side: int,
    sample_rate: int,
    channels: int = 1,
    clip_seconds: float = 0.0,
    max_seconds: Optional[float] = None,
    require_audio: bool = True,
    frame_fn: Optional[Callable[[np.ndarray], Any]] = None,
) -> Iterator[Media]:
  """Yields consecutive clips of `clip_seconds` (0: the whole video) as Media.

  The last clip may be shorter. Raises MediaError when the file gives nothing
  usable (reasons: empty, undecodable, no_video, no_audio). A decode error
  part-way ends the stream early; the clips after it carry `error`.
  `frame_fn` maps each uint8 [H, W, 3] frame as it is picked (e.g. to JPEG
  bytes), so a long clip need not hold raw frames.
  """
  with open(path) as container:
    vstream = video_stream(container)
    astream = container.streams.audio[0] if container.streams.audio else None
    if require_audio and astream is None:
      raise MediaError("no_audio", "no audio track")
    for stream in (vstream, astream):
      if stream is not None:
        stream.thread_type = "AUTO"
    ctx = vstream.codec_context
    size = output_size(
        ctx.width,
        ctx.height,
        shorter_side,
        float(ctx.sample_aspect_ratio or 1) or None,
    )
    picker = FramePicker(fps, converter(*size, frame_fn))
    audio = AudioBuffer(sample_rate, channels) if astream is not None else None
    decoder = Decoder(
        container, [s for s in (vstream, astream) if s is not None]
    )
    cutter = _ClipCutter(
        picker,
        audio,
        clip_seconds,
        max_seconds or math.inf,
        sample_rate,
        channels,
        size,
        _declared_seconds(container, vstream),
    )
    yield from cutter.run(decoder, vstream, require_audio)


def _declared_seconds(container, vstream) -> Optional[float]:
  """The video's length according to the file's header, if it says."""
  if vstream.duration and vstream.time_base:
    return float(vstream.duration * vstream.time_base)
  return container.duration / 1e6 if container.duration else None


def _shortfall(
    decoded: float, declared: Optional[float], limit: float
) -> Optional[str]:
  """A note when far less decoded than the header promised (a truncated file).

  Such files end without a decode error (the demuxer just meets EOF), so this
  is how a cut-off download is noticed.
  """
  if declared is None:
    return None
  expected = min(declared, limit)
  if expected - decoded > max(1.0, 0.05 * expected):
    return f"decoded {decoded:.2f} s of the {declared:.2f} s in the header (truncated?)"
  return None


class _ClipCutter:
  """Cuts the picked frames and buffered audio into consecutive clips."""

  def __init__(
      self,
      picker,
      audio,
      clip_seconds,
      limit,
      sample_rate,
      channels,
      size,
      declared,
  ):
    self.picker, self.audio = picker, audio
    self.clip_seconds, self.limit = clip_seconds, limit
    self.sample_rate, self.channels, self.size = sample_rate, channels, size
    self.declared = declared  # the header's duration, to notice truncated files
    self.clip_start = 0.0

  def run(self, decoder, vstream, require_audio) -> Iterator[Media]:
    """Decodes everything, yielding each clip as soon as both streams reach its end."""
    fps = self.picker.fps
    t0, last, video_end, num_video = None, 0.0, 0.0, 0
    default_step = 1.0 / float(vstream.average_rate or fps)
    for frame in decoder:
      if isinstance(frame, av.VideoFrame):
        time = frame_time(frame, num_video, vstream)
        num_video += 1
        t0 = time if t0 is None else t0
        last = time - t0
        if last < self.limit - EPS:
          self.picker.push(last, frame)
          step = (
              float(frame.duration * frame.time_base)
              if frame.duration and frame.time_base
              else default_step
          )
          video_end = min(last + step, self.limit)
      else:
        self.audio.push(frame)
      if t0 is None:
        continue  # audio before the first frame waits for the time origin
      if self.audio:
        self.audio.align(t0)
      yield from self._full_clips()
      if last >= self.limit - EPS and self._audio_reaches(self.limit):
        break  # max_seconds reached on both streams
    if t0 is None:
      raise MediaError(
          "undecodable" if decoder.error else "empty",
          decoder.error or "no video frames",
      )
    error = decoder.error or _shortfall(video_end, self.declared, self.limit)
    yield from self._last_clips(t0, video_end, require_audio, error)

  def _audio_reaches(self, seconds: float) -> bool:
    return not self.audio or self.audio.end() >= count(
        seconds, self.sample_rate
    )

  def _full_clips(self) -> Iterator[Media]:
    """Clips of clip_seconds that the decoded data already covers."""
    while (
        self.clip_seconds > 0
        and self.clip_start + self.clip_seconds <= self.limit + EPS
    ):
      stop = self.clip_start + self.clip_seconds
      if self.picker.next_index < count(
          stop, self.picker.fps
      ) or not self._audio_reaches(stop):
        return
      yield self._clip(stop, None)

  def _last_clips(self, t0, video_end, require_audio, error) -> Iterator[Media]:
    """The clips left at the end of the stream (the last may be short)."""
    self.picker.finish(video_end)
    end = video_end
    if self.audio:
      self.audio.flush()
      self.audio.align(t0)
      if self.audio.end() > 0:
        end = min(end, self.audio.end() / self.sample_rate)
      else:
        self.audio = None
    if require_audio and self.audio is None:
      raise MediaError("no_audio", "audio track decoded to no samples")
    while end - self.clip_start > EPS:
      stop = end
      if self.clip_seconds > 0:
        stop = min(self.clip_start + self.clip_seconds, end)
      yield self._clip(stop, error)

  def _clip(self, stop: float, error: Optional[str]) -> Media:
    """Takes the frames and samples of [clip_start, stop) out of the buffers."""
    start, rate = self.clip_start, self.sample_rate
    frames = self.picker.take(count(stop, self.picker.fps))
    if not frames or isinstance(frames[0], np.ndarray):
      width, height = self.size
      frames = (
          np.stack(frames)
          if frames
          else np.zeros((0, height, width, 3), np.uint8)
      )
    if self.audio:
      waveform = self.audio.take(count(start, rate), count(stop, rate))
    else:
      waveform = np.zeros((0, self.channels), np.float32)
    self.clip_start = stop
    return Media(
        frames=frames,
        audio=waveform,
        fps=self.picker.fps,
        sample_rate=rate,
        duration=stop - start,
        has_audio=self.audio is not None,
        start=start,
        error=error,
    )


def load_video(
    path: str,
    fps: float,
    shorter_side: int,
    sample_rate: int,
    channels: int = 1,
    max_seconds: Optional[float] = None,
) -> Media:
  """Decodes a whole video (or its first max_seconds) into one Media.

  A file without audio is fine here (`has_audio=False`, empty `audio`).
  Raises MediaError when nothing can be decoded.
  """
  clips = list(
      iter_clips(
          path,
          fps=fps,
          shorter_side=shorter_side,
          sample_rate=sample_rate,
          channels=channels,
          max_seconds=max_seconds,
          require_audio=False,
      )
  )
  if not clips:
    raise MediaError("empty", "zero duration")
  return clips[0]


def load_audio(
    path: str,
    sample_rate: int,
    channels: int = 1,
    max_seconds: Optional[float] = None,
) -> np.ndarray:
  """Decodes the first audio track to float32 [N, C] at `sample_rate`."""
  with open(path) as container:
    if not container.streams.audio:
      raise MediaError("no_audio", "no audio track")
    buffer = AudioBuffer(sample_rate, channels)
    limit = count(max_seconds, sample_rate) if max_seconds else None
    decoder = Decoder(container, [container.streams.audio[0]])
    for frame in decoder:
      buffer.push(frame)
      buffer.align(buffer.first_time)  # time origin: the first sample
      if limit is not None and buffer.end() >= limit:
        break
    buffer.flush()
    buffer.align(buffer.first_time or 0.0)
    if buffer.end() <= 0:
      raise MediaError(
          "undecodable" if decoder.error else "no_audio",
          decoder.error or "audio track decoded to no samples",
      )
    return buffer.take(0, min(buffer.end(), limit or buffer.end()))
