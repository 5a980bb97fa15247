"""A whole video's CAM heatmap from a Multisensory sync net's sliding clips.

The class activation map of the alignment logit (`multisensory.cam` on the
last conv layer; Owens & Efros 2018, Sec. 4.1) of clips starting every `hop`
frames: each clip's map steps are placed on the frames they stand for
(`step_frames`), the clips' views of each frame are averaged
(`assemble_frames`), upsampled to the frame and min-max normalised over the
video (`video_heatmap`). The localize command and the localization evaluator
both use it, so TensorBoard shows the command's pictures.
"""

import functools

import jax
import numpy as np

from avself import sharding
from avself.clip_input import ClipSpec
from avself.clip_input import cut_clips


def covered_frames(num_frames: int, clip_frames: int, hop: int) -> int:
  """Frames of a video of `num_frames` inside the clips that start every `hop` frames."""
  if num_frames < clip_frames:
    return 0
  return (num_frames - clip_frames) // hop * hop + clip_frames


def step_frames(num_frames: int, steps: int) -> np.ndarray:
  """The clip frame each of the CAM's `steps` time steps stands for: [steps] ints.

  Step j is put on the first frame of its span, j * N / steps, as the
  strided shortcuts (x[::s]) sample time, not at the span's centre: on the
  train split of the synthetic world, the map of step j points best at frame
  4j (+0/+1) of a 16-frame clip, 1 to 1.5 frames before the centre of its span
  (docs/multisensory.md).
  """
  return np.floor(np.arange(steps) * num_frames / steps).astype(np.int64)


def assemble_frames(
    cams: np.ndarray, starts: np.ndarray, num_frames: int, clip_frames: int
) -> np.ndarray:
  """Per-frame maps [F, h, w] of a video from its clips' CAMs [K, t, h, w].

  Step j of the clip starting at frame s is placed on frame
  s + step_frames(clip_frames, t)[j]; the views that land on a frame are
  averaged, and frames that no view lands on are interpolated linearly between
  their nearest neighbours (held beyond the first and last).
  """
  cams = np.asarray(cams, np.float64)
  k, t = cams.shape[:2]
  where = (
      np.asarray(starts)[:, None] + step_frames(clip_frames, t)[None, :]
  ).reshape(-1)
  keep = where < num_frames
  sums = np.zeros((num_frames, *cams.shape[2:]))
  counts = np.zeros(num_frames)
  np.add.at(sums, where[keep], cams.reshape(k * t, *cams.shape[2:])[keep])
  np.add.at(counts, where[keep], 1.0)
  known = np.flatnonzero(counts)
  if not len(known):
    raise ValueError("no CAM step falls on the video's frames")
  values = sums[known] / counts[known].reshape(-1, *([1] * (cams.ndim - 2)))
  if len(known) == 1:
    return np.repeat(values, num_frames, axis=0)
  frames = np.arange(num_frames)
  right = np.clip(np.searchsorted(known, frames), 1, len(known) - 1)
  left = right - 1
  weight = np.clip(
      (frames - known[left]) / (known[right] - known[left]), 0.0, 1.0
  )
  weight = weight.reshape(-1, *([1] * (cams.ndim - 2)))
  return (1.0 - weight) * values[left] + weight * values[right]


def _cam_step(params, model_state, video, waveform, model):  # model: static
  """The raw CAM [B, t, h, w] (multisensory.cam) and logits [B] for uint8 clips."""
  from avself.models import multisensory  # pylint: disable=g-import-not-at-top

  x = video.astype(np.float32) * (2.0 / 255.0) - 1.0  # as ops.finish_images
  out = model.apply({"params": params, **model_state}, x, waveform, train=False)
  return multisensory.cam(out["features"], params["head"]), out["logit"]


@functools.lru_cache(maxsize=None)
def make_cam_fn(mesh):
  """Jitted (params, model_state, video, waveform, model) -> (cam, logit), batch over `data`.

  One function per mesh with the model static, so the CLI, the evaluator and
  tests reuse compilations for equal models.
  """
  return jax.jit(
      _cam_step,
      static_argnums=(4,),
      in_shardings=(
          sharding.replicated(mesh),
          sharding.replicated(mesh),
          sharding.batch_sharding(mesh),
          sharding.batch_sharding(mesh),
      ),
      out_shardings=sharding.replicated(mesh),
  )


def cams(
    model,
    state,
    video: np.ndarray,
    waveform: np.ndarray,
    mesh,
    batch_size: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
  """Raw CAMs [K, t, h, w] and logits [K] of K clips, in batches.

  Every process passes the same K clips; each batch is padded to a multiple
  of the device count and split over the mesh, the results come back whole.
  """
  devices, processes = jax.device_count(), jax.process_count()
  step = -(-max(batch_size, 1) // devices) * devices
  maps, logits = [], []
  for start in range(0, len(video), step):
    v, w = video[start : start + step], waveform[start : start + step]
    real = len(v)
    pad = step - real
    v = np.concatenate([v, np.zeros((pad, *v.shape[1:]), v.dtype)])
    w = np.concatenate([w, np.zeros((pad, *w.shape[1:]), w.dtype)])
    share = step // processes
    mine = slice(jax.process_index() * share, (jax.process_index() + 1) * share)
    batch = sharding.to_global({"video": v[mine], "waveform": w[mine]}, mesh)
    cam, logit = make_cam_fn(mesh)(
        state.params,
        state.model_state,
        batch["video"],
        batch["waveform"],
        model,
    )
    maps.append(np.asarray(cam)[:real])
    logits.append(np.asarray(logit)[:real])
  return np.concatenate(maps), np.concatenate(logits)


def heatmaps(
    model,
    state,
    video: np.ndarray,
    waveform: np.ndarray,
    mesh,
    batch_size: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
  """Per-clip CAM heatmaps [K, N, S, S] in [0, 1] and logits [K] of K clips.

  Each clip on its own: its map upsampled over time and space and min-max
  normalised per clip (`multisensory.cam_to_frames`). `video_heatmap` is the
  finer, sliding-window version used to localise.
  """
  from avself.models import multisensory  # pylint: disable=g-import-not-at-top

  maps, logits = cams(model, state, video, waveform, mesh, batch_size)
  heat = multisensory.cam_to_frames(maps, *video.shape[1:4])
  return np.asarray(heat), logits


def upsample_frames(maps: np.ndarray, height: int, width: int) -> np.ndarray:
  """Per-frame maps [F, h, w] -> [F, H, W] (linear, as cam_to_frames), min-max normalised over all."""
  x = np.asarray(
      jax.image.resize(
          np.asarray(maps, np.float32),
          (len(maps), height, width),
          method="linear",
      )
  )
  lo, span = x.min(), x.max() - x.min()
  return (x - lo) / span if span > 0 else np.zeros_like(x)


def video_heatmap(
    model,
    state,
    frames: np.ndarray,
    audio: np.ndarray,
    spec: ClipSpec,
    mesh,
    hop: int = 1,
    batch_size: int = 8,
    clips_per_chunk: int = 64,
    flip: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
  """Sliding-window CAM of a whole decoded video: heat [F, S, S] in [0, 1], logits [K].

  Clips start every `hop` frames; each clip's map steps land on their frames
  (`step_frames`), the views of a frame are averaged and the frames between
  interpolated (`assemble_frames`), then upsampled and normalised over the
  video. F is every frame up to the end of the last whole clip. With hop=1
  every frame is seen at every map step's position (t views); that costs
  N / hop times the net passes of consecutive clips, and on the synthetic
  world it points better than consecutive clips (docs/multisensory.md).
  Clips are cut `clips_per_chunk` at a time, so a long video never holds its
  overlapping clips in memory at once.

  flip: also run the mirrored video (left-right, as the training flips) and
  average its per-frame maps, mirrored back, with the plain ones; the logits
  are the plain clips'. A net's map can sit a few pixels to one side of what
  it sees (on the synthetic world, 4-8 px left of the sounding object); the
  mirrored pass cancels that. Twice the net passes (docs/multisensory.md).
  """
  if hop < 1:
    raise ValueError(f"hop must be >= 1 frame, got {hop}")
  if len(frames) < spec.num_frames:
    raise ValueError(
        f"{len(frames)} frames at {spec.fps:g} fps: shorter than one clip of "
        f"{spec.num_frames} frames"
    )
  covered = covered_frames(len(frames), spec.num_frames, hop)
  first_frames = np.arange(0, covered - spec.num_frames + 1, hop)

  def per_frame_maps(pixels):
    maps, logits = [], []
    for i in range(0, len(first_frames), clips_per_chunk):
      video, waveform, _ = cut_clips(
          pixels, audio, spec, starts=first_frames[i : i + clips_per_chunk]
      )
      chunk_maps, chunk_logits = cams(
          model, state, video, waveform, mesh, batch_size
      )
      maps.append(chunk_maps)
      logits.append(chunk_logits)
    return (
        assemble_frames(
            np.concatenate(maps), first_frames, covered, spec.num_frames
        ),
        np.concatenate(logits),
    )

  per_frame, logits = per_frame_maps(frames)
  if flip:
    mirrored, _ = per_frame_maps(frames[:, :, ::-1])
    per_frame = (per_frame + mirrored[:, :, ::-1]) / 2.0
  return upsample_frames(per_frame, *frames.shape[1:3]), logits
