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
each clip is placed on the frames its time steps stand for
(`video_cam.step_frames`), the clips' views of each frame are averaged
(`video_cam.assemble_frames`), upsampled to the frame and min-max normalised
over the video, then written as

  OUTPUT/<stem>/frame_XXXX.png   each frame with the heatmap overlaid
  OUTPUT/<stem>_cam.mp4          the same frames with their audio (H.264 + AAC)

The localization evaluator (`avself/evaluators/localization.py`) uses the same
functions, so TensorBoard shows the same pictures.
"""

import os
from typing import Optional, Sequence

from absl import flags
import numpy as np

from avself import cli_flags
from avself import file_inputs
from avself import pictures
from avself import sharding
from avself.clip_input import decode
from avself.clip_input import state_clip_spec
from avself.data import media_encode
from avself.video_cam import video_heatmap


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
