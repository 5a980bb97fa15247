r"""Where is the sound? CAM sound localisation with a trained Multisensory sync net.

  python -m avself.localize --workdir=/tmp/multisensory_synthetic FILE.mp4 [FILE ...] \
      --output=/tmp/cam

Restores the checkpoint in `--workdir` (its config describes the net and the
clips it was trained on), decodes each file with `avself.data.media` at the
training clip rate (`sync.num_frames / sync.clip_seconds` frames per second),
sample rate and channel count, resizes the shorter side to `resize_shorter`
and centre-crops `image_size` (as the pipeline does at evaluation), and runs
the net on clips of `num_frames` frames with their own audio, starting every
`--hop` frames (default 1; `--flip` also runs the mirrored video). The class
activation map of the alignment logit
(`multisensory.cam` on the last conv layer; Owens & Efros 2018, Sec. 4.1) of
each clip is placed on the frames its time steps stand for (`step_frames`),
the clips' views of each frame are averaged (`assemble_frames`), upsampled to
the frame and min-max normalised over the video, then written as

  OUTPUT/<stem>/frame_XXXX.png   each frame with the heatmap overlaid
  OUTPUT/<stem>_cam.mp4          the same frames with their audio (H.264 + AAC)

The localization evaluator (`avself/evaluators/localization.py`) uses the same
functions, so TensorBoard shows the same pictures.
"""

import dataclasses
import functools
import os
from typing import Optional, Sequence

from absl import flags
import jax
import numpy as np

from avself import cli_flags
from avself import file_inputs
from avself import pictures
from avself import sharding
from avself.data import media as media_lib
from avself.data import media_encode


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


def clip_spec(config, channels: Optional[int] = None) -> ClipSpec:
  """The clip geometry a sync checkpoint was trained on."""
  d = config.data
  return ClipSpec(
      num_frames=int(d.sync.num_frames),
      fps=float(d.sync.num_frames) / float(d.sync.clip_seconds),
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


################################################################################
# The command.
################################################################################


def localize_file(
    path: str,
    output: str,
    *,
    config,
    model,
    state,
    mesh,
    scale: int = 0,
    max_seconds: Optional[float] = None,
    hop: int = 1,
    flip: bool = False,
    stem: Optional[str] = None,
) -> dict:
  """Writes OUTPUT/<stem>/frame_XXXX.png and OUTPUT/<stem>_cam.mp4 for one file; a summary.

  `stem` defaults to the file's name less its extension.
  """
  spec = state_clip_spec(config, state)
  frames, audio, _, _ = decode(path, spec, max_seconds)
  heat, logits = video_heatmap(
      model, state, frames, audio, spec, mesh, hop=hop, flip=flip
  )
  shown = pictures.hot_overlay(frames[: len(heat)], heat)  # [F, S, S, 3]
  shown = pictures.upscale(shown, scale or max(1, -(-256 // spec.image_size)))
  stem = stem or os.path.splitext(os.path.basename(path))[0]
  folder = os.path.join(output, stem)
  os.makedirs(folder, exist_ok=True)
  for i, image in enumerate(shown):
    pictures.save_png(image, os.path.join(folder, f"frame_{i:04d}.png"))
  movie = os.path.join(output, f"{stem}_cam.mp4")
  samples = int(round(len(shown) / spec.fps * spec.sample_rate))
  media_encode.write_mp4(
      movie, shown, audio[:samples], spec.fps, spec.sample_rate
  )
  return {
      "file": path,
      "frames": len(shown),
      "clips": len(logits),
      "png_dir": folder,
      "mp4": movie,
      "aligned_probability": (1 / (1 + np.exp(-logits))).round(3).tolist(),
  }


FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "workdir", None, "a sync run's workdir (checkpoints/)", flag_values=FLAGS
)
flags.DEFINE_string(
    "output", None, "folder for the frames and movies", flag_values=FLAGS
)
flags.DEFINE_integer(
    "step", None, "checkpoint step (default latest)", flag_values=FLAGS
)
flags.DEFINE_integer(
    "scale",
    0,
    "integer upscaling of the written frames (default: to >= 256 px)",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "max_seconds",
    None,
    "localise only the first seconds of each file",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "hop",
    1,
    "frames between the starts of the sliding clips (1: finest; the clip "
    "length: consecutive clips, fastest)",
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "flip",
    False,
    "average with the mirrored video's maps (twice the passes; cancels a "
    "map's sideways offset)",
    flag_values=FLAGS,
)
flags.mark_flags_as_required(["workdir", "output"], flag_values=FLAGS)


def main(argv: Optional[Sequence[str]] = None) -> list[dict]:
  """python -m avself.localize --workdir=DIR FILE [FILE ...] --output=DIR."""
  args, paths = cli_flags.parse_with_arguments(
      FLAGS, argv, __doc__, "avself.localize"
  )
  if not paths:
    raise SystemExit("avself.localize: no videos given")
  files = file_inputs.check_exist(paths, "localize")
  stems = file_inputs.output_stems(files, "localize")
  from avself import state as state_lib  # pylint: disable=g-import-not-at-top

  mesh = sharding.make_mesh()
  config, task, model, state = state_lib.restore(
      args.workdir, args.step, mesh=mesh
  )
  if config.task != "sync":
    raise SystemExit(
        f"{args.workdir} holds a {config.task!r} run; CAM needs a 'sync' one"
    )
  del task
  os.makedirs(args.output, exist_ok=True)

  def one(path):
    summary = localize_file(
        path,
        args.output,
        config=config,
        model=model,
        state=state,
        mesh=mesh,
        scale=args.scale,
        max_seconds=args.max_seconds,
        hop=args.hop,
        flip=args.flip,
        stem=stems[path],
    )
    probability = np.asarray(summary["aligned_probability"])
    print(
        f"{path}: {summary['clips']} clips, {summary['frames']} frames -> "
        f"{summary['png_dir']}/, {summary['mp4']}; P(aligned) per clip: mean "
        f"{probability.mean():.3f}, min {probability.min():.3f}"
    )
    return summary

  summaries, failed = file_inputs.for_each(files, one, "localize")
  file_inputs.exit_if_failed(failed, len(files), "localize")
  return summaries


if __name__ == "__main__":
  main()
