"""Worker side of `avself.data.prepare`: one video in, record payloads out.

Videos are decoded in spawned processes (`ordered_map`), which import this
module: no TensorFlow here.
"""

import collections
import concurrent.futures
import contextlib
import dataclasses
import io
import multiprocessing
import os
import threading
import time
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
from PIL import Image

from avself.data import media
from avself.data.prepare_plan import Options


@dataclasses.dataclass
class _Clip:
  """One record's payload, made in a worker (no TensorFlow there)."""

  start_us: int
  end_us: int
  jpeg_frames: list
  waveform: np.ndarray  # float32 [N, C]


@dataclasses.dataclass
class Result:
  """A worker's answer for one video: clips, or why it was skipped."""

  name: str
  clips: list = dataclasses.field(default_factory=list)
  skip: Optional[tuple] = None  # (reason, detail)
  warning: Optional[str] = None  # kept, but decoded partly or clipped


########################################################################
# Worker side: one video in, record payloads out. No TensorFlow here.


def encode_jpeg(pixels: np.ndarray, quality: int) -> bytes:
  """uint8 [H, W, 3] -> JPEG bytes."""
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
  return buffer.getvalue()


def prepare_video(path: str, name: str, options: Options) -> Result:
  """Decodes one video into record payloads, or says why not; never raises."""
  try:
    clips, error, seconds = _decode_clips(path, options)
  except media.MediaError as e:
    return Result(name, skip=(e.reason, e.detail))
  except Exception as e:  # Any other failure on one file must not stop the run.
    return Result(name, skip=("error", f"{type(e).__name__}: {e}"[:300]))
  if not clips:
    return Result(
        name,
        skip=(
            "too_short",
            f"{seconds:.2f} s < min_seconds " f"{options.min_seconds:g}",
        ),
    )
  warning = f"partial decode, kept {seconds:.2f} s: {error}" if error else None
  if options.audio_format == "pcm_s16le":
    clipped = clipped_samples(clips)
    if clipped:
      warning = "; ".join(filter(None, [warning, clipped]))
  return Result(name, clips=clips, warning=warning)


def clipped_samples(clips: Sequence[_Clip]) -> Optional[str]:
  """'N of M audio samples (x%) beyond full scale...', or None if none are.

  Decoded float audio can exceed +-1.0 (a loud source, a resampler's
  overshoot); the 16-bit records cut it there, so it is reported.
  """
  total = sum(c.waveform.size for c in clips)
  over = sum(int(np.count_nonzero(np.abs(c.waveform) > 1.0)) for c in clips)
  if not over:
    return None
  return (
      f"{over} of {total} audio samples ({100 * over / total:.3g}%) beyond "
      "full scale, clipped to +-1.0 in the records"
  )


def _decode_clips(
    path: str, options: Options
) -> tuple[list, Optional[str], float]:
  """Clips long enough to keep, the decode error if any, and seconds decoded."""
  quality = options.jpeg_quality
  stream = media.iter_clips(
      path,
      fps=options.fps,
      shorter_side=options.shorter_side,
      sample_rate=options.sample_rate,
      channels=options.channels,
      clip_seconds=options.clip_seconds,
      max_seconds=options.max_seconds or None,
      frame_fn=lambda pixels: encode_jpeg(pixels, quality),
  )
  clips, error, seconds = [], None, 0.0
  for clip in stream:
    error = clip.error or error
    seconds += clip.duration
    if clip.duration >= options.min_seconds - 1e-6 and len(clip.frames):
      start_us = round(clip.start * 1e6)
      clips.append(
          _Clip(
              start_us,
              start_us + round(clip.duration * 1e6),
              clip.frames,
              clip.audio,
          )
      )
  return clips, error, seconds


def prepare_task(task: tuple) -> Result:
  """Pool entry point (picklable by reference)."""
  return prepare_video(*task)


def ordered_map(
    fn: Callable,
    tasks: Sequence,
    workers: int,
    on_crash: Optional[Callable] = None,
    window: int = 4,
) -> Iterator:
  """fn over tasks in `workers` spawned processes, yielding results in order.

  At most `workers * window` results wait in memory. `spawn`, not fork: a
  forked TensorFlow (in the parent) can deadlock. If a worker process dies
  (a decoder crashing on a hostile file), the tasks in flight are rerun one
  per process to find the culprit, whose result is `on_crash(task)`.
  """
  tasks = list(tasks)
  if workers <= 1:
    yield from map(fn, tasks)
    return
  done = succeeded = 0
  while done < len(tasks):
    try:
      with contextlib.closing(
          _pool_map(fn, tasks[done:], workers, window)
      ) as rs:
        for result in rs:
          done, succeeded = done + 1, succeeded + 1
          yield result
    except concurrent.futures.process.BrokenProcessPool:
      if on_crash is None:
        raise
      for task in tasks[done : done + workers * window]:
        try:
          result = list(_pool_map(fn, [task], 1, 1))[0]
          succeeded += 1
        except concurrent.futures.process.BrokenProcessPool as e:
          if not succeeded and done:
            # Two tasks died and none ever finished: the workers cannot run at
            # all (e.g. the parent is a `python - <<EOF` script, which spawn
            # cannot re-import), so blaming every input would mislead.
            raise RuntimeError(
                "worker processes die before finishing any task; "
                "run from a file or with `python -m`"
            ) from e
          result = on_crash(task)
        done += 1
        yield result


def _pool_map(
    fn: Callable, tasks: Sequence, workers: int, window: int
) -> Iterator:
  """Ordered results of fn over tasks from a fresh spawn pool."""
  context = multiprocessing.get_context("spawn")
  with concurrent.futures.ProcessPoolExecutor(
      workers,
      mp_context=context,
      initializer=_exit_with_parent,
      initargs=(os.getpid(),),
  ) as pool:
    try:
      pending = collections.deque()
      upcoming = iter(tasks)
      for task in upcoming:
        pending.append(pool.submit(fn, task))
        if len(pending) >= workers * window:
          break
      while pending:
        result = pending.popleft().result()
        task = next(upcoming, None)
        if task is not None:
          pending.append(pool.submit(fn, task))
        yield result
    except BaseException:  # SIGTERM, Ctrl-C, an early close: stop the workers
      _stop_workers(pool)
      raise


def _stop_workers(pool: concurrent.futures.ProcessPoolExecutor) -> None:
  """Terminates a pool's workers now (shutdown alone waits for their tasks)."""
  # pylint: disable=protected-access
  for process in list((getattr(pool, "_processes", None) or {}).values()):
    process.terminate()
  # A worker stopped while it sent a result leaves half a message in the
  # result pipe, and the pool's manager thread (which exit joins) would wait
  # for the rest forever; with the parent's write end closed too, it reads
  # end-of-file once the workers are gone and stops.
  result_queue = getattr(pool, "_result_queue", None)
  if result_queue is not None:
    result_queue._writer.close()
  # pylint: enable=protected-access
  pool.shutdown(wait=False, cancel_futures=True)


def _exit_with_parent(parent: int, every_seconds: float = 0.5) -> None:
  """Worker initializer: a thread that ends the worker once `parent` is gone.

  A parent killed with SIGKILL cannot stop its workers; without this they
  would live on, re-parented, blocked on a pipe nobody reads.
  """

  def watch():
    while os.getppid() == parent:
      time.sleep(every_seconds)
    os._exit(1)  # pylint: disable=protected-access

  threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def crashed(task: tuple) -> Result:
  """The result for a video whose decoder process died."""
  return Result(
      task[1], skip=("crashed", "the decoding process died on this file")
  )
