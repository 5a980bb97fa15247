"""Writing mp4 files with PyAV: frames and sound as H.264 + AAC.

The synthetic world's clips, localize's heatmap movies and test fixtures are
written here. No TensorFlow here.
"""

import fractions
from typing import Optional

import av
import numpy as np

from avself.data.media_streams import LAYOUTS


def write_mp4(
    path: str,
    frames: np.ndarray,
    audio: Optional[np.ndarray],
    fps: float,
    sample_rate: int = 0,
) -> None:
  """Writes frames uint8 [T, H, W, 3] and audio float32 [S] / [S, C] as H.264 + AAC.

  `audio` None or empty: video only. Odd sides are padded with black
  (yuv420p needs even ones). The same input gives the same bytes: bitexact
  muxing, one encoder thread and x264's cpu-independent code (without it,
  x264's float code on AVX-512 CPUs gave a few different encodings of one
  clip in 15 tries).
  """
  h, w = frames.shape[1:3]
  if h % 2 or w % 2:
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
  if audio is not None and len(audio):
    audio = np.asarray(audio, np.float32)
    layout = LAYOUTS[1 if audio.ndim == 1 else audio.shape[1]]
    planar = np.ascontiguousarray(
        np.clip(np.atleast_2d(audio.T), -1, 1)
    )  # [C, S]
  else:
    planar = None
  with av.open(
      path, "w", format="mp4", options={"fflags": "+bitexact"}
  ) as container:
    video = container.add_stream(
        "libx264", rate=fractions.Fraction(fps).limit_denominator(1001)
    )
    video.width, video.height = frames.shape[2], frames.shape[1]
    video.pix_fmt = "yuv420p"
    video.options = {
        "preset": "veryfast",
        "crf": "20",
        "x264-params": "cpu-independent=1",
    }
    video.codec_context.thread_count = 1
    sound = None
    if planar is not None:
      sound = container.add_stream("aac", rate=sample_rate, layout=layout)
      sound.options = {"aac_coder": "fast"}  # 2x faster than twoloop, fine here
    for i, image in enumerate(frames):
      frame = av.VideoFrame.from_ndarray(
          np.ascontiguousarray(image), format="rgb24"
      )
      frame.pts = i
      container.mux(video.encode(frame))
    container.mux(video.encode(None))
    if sound is not None:
      for start in range(
          0, planar.shape[1], 1024
      ):  # AAC frames hold 1024 samples
        frame = av.AudioFrame.from_ndarray(
            planar[:, start : start + 1024], format="fltp", layout=layout
        )
        frame.sample_rate, frame.pts = sample_rate, start
        container.mux(sound.encode(frame))
      container.mux(sound.encode(None))
