r"""The sound of a silent video, from a trained sonorization net.

  python -m avself.sonorize --workdir=/tmp/sonorize_synthetic SILENT.mp4 \
      --output=OUT.mp4 [--synthesis=example|parametric] [--step=N] \
      [--max_seconds=S]

Restores the checkpoint in `--workdir` (its config describes the net, its
frame rate and its sound features), decodes the video's frames with
`avself.data.media` at the training frame rate (shorter side
`resize_shorter`, centre crop `image_size`, as the pipeline at evaluation),
predicts the log mel bands of every step (windows of at most
`--window_frames` frames, the last one aligned to the end) and writes

  OUT.mp4   the frames (upscaled) with the generated sound (AAC)
  OUT.png   the predicted bands (low bands at the bottom); when the video
            has a sound track, its own bands beneath them

The sound is made from the bands by example-based synthesis (the nearest
training sounds, from the index saved with the run: default) or Griffin-Lim
(`--synthesis=parametric`). Any sound track of the input is ignored for the
prediction; with one, the summary line gives the spectral distance and the
onset F1 of the generated sound against it.
"""

import os
from typing import Optional, Sequence

from absl import flags
import jax
import numpy as np

from avself import cli_flags
from avself import clip_input
from avself import pictures
from avself import synthesis
from avself.data import media as media_lib
from avself.data import media_encode

FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "workdir", None, "a sonorization run's workdir", flag_values=FLAGS
)
flags.DEFINE_string(
    "output", None, "the mp4 to write (its .png beside it)", flag_values=FLAGS
)
flags.DEFINE_enum(
    "synthesis",
    "example",
    ["example", "parametric"],
    "nearest training sounds, or Griffin-Lim of the predicted bands",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "step", None, "checkpoint step (default latest)", flag_values=FLAGS
)
flags.DEFINE_float(
    "max_seconds",
    None,
    "only the first seconds of the video",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "window_frames",
    200,
    "frames the net sees at once (memory); windows are consecutive",
    flag_values=FLAGS,
)
flags.mark_flags_as_required(["workdir", "output"], flag_values=FLAGS)


def clip_spec(config) -> clip_input.ClipSpec:
  """The frames a sonorization checkpoint was trained on (mono audio)."""
  return clip_input.clip_spec(config, channels=1, section="clip")


def predict_video(
    task, model, variables, frames: np.ndarray, window: int
) -> np.ndarray:
  """uint8 frames [T, S, S, 3] -> predicted log mel [T * steps_per_frame, M].

  Windows of `window` frames (the last one ends at the last frame); a
  later window fills only the steps that are left.
  """
  window = max(1, min(window, len(frames)))
  starts = list(range(0, len(frames) - window + 1, window))
  if starts[-1] + window < len(frames):
    starts.append(len(frames) - window)
  spf = model.steps_per_frame
  out = np.zeros((len(frames) * spf, model.num_bands), np.float32)
  fn = jax.jit(lambda v, x: task.predict(model, v, x))
  done = 0
  for start in starts:
    x = frames[start : start + window].astype(np.float32) * (2.0 / 255.0) - 1
    features = np.asarray(fn(variables, x[None]))[0]
    end = (start + window) * spf
    out[done:end] = features[done - start * spf :]
    done = end
  return out


def sonorize_file(
    path: str,
    output: str,
    *,
    config,
    task,
    model,
    variables,
    index: Optional[synthesis.ExampleIndex],
    how: str = "example",
    window_frames: int = 200,
    max_seconds: Optional[float] = None,
) -> dict:
  """Writes OUTPUT (mp4) and its .png for one video; a summary dict."""
  spec = clip_spec(config)
  features_spec = model.feature_spec
  try:
    frames, audio, media, _ = clip_input.decode(path, spec, max_seconds)
  except media_lib.MediaError as e:
    raise SystemExit(f"{path}: {e}") from e
  if not len(frames):
    raise SystemExit(f"{path}: no video frames")
  predicted = predict_video(task, model, variables, frames, window_frames)
  config_s = config.sonorize
  if how == "example":
    segment = int(config_s.get("segment_steps") or 5 * model.steps_per_frame)
    sound, _ = index.synthesize(predicted, segment)
  else:
    sound = synthesis.griffin_lim(predicted, features_spec)
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  shown = pictures.upscale(frames, max(1, -(-256 // spec.image_size)))
  media_encode.write_mp4(output, shown, sound, spec.fps, spec.sample_rate)
  summary = {
      "file": path,
      "output": output,
      "seconds": len(frames) / spec.fps,
      "synthesis": how,
      "has_audio": bool(media.has_audio and len(audio)),
  }
  rows = [predicted]
  if summary["has_audio"]:
    own = audio.mean(-1)[: len(sound)]
    own = np.pad(own, (0, len(sound) - len(own)))
    true = synthesis.log_mel(own, features_spec)
    made = synthesis.log_mel(sound, features_spec)
    threshold = float(
        config.evals.get("sonorization", {}).get("onset_threshold", 0.5)
    )
    found = synthesis.onsets(made, features_spec, threshold)
    truth = synthesis.onsets(true, features_spec, threshold)
    summary.update(
        spectral_distance=float(
            10.0 / np.log(10.0) * np.sqrt(np.mean((made - true) ** 2))
        ),
        onset_f1=synthesis.f1(
            synthesis.match_onsets(found, truth, 0.1), len(found), len(truth)
        ),
    )
    rows.append(true)
  lo = min(r.min() for r in rows)
  hi = max(r.max() for r in rows)
  tiles = [
      pictures.upscale(
          pictures.colormap((r.T[::-1] - lo) / max(hi - lo, 1e-6)), 4
      )
      for r in rows
  ]
  gap = np.full((4, tiles[0].shape[1], 3), 255, np.uint8)
  picture = (
      tiles[0] if len(tiles) == 1 else np.concatenate([tiles[0], gap, tiles[1]])
  )
  summary["png"] = pictures.save_png(
      picture, os.path.splitext(output)[0] + ".png"
  )
  return summary


def main(argv: Optional[Sequence[str]] = None) -> dict:
  """python -m avself.sonorize --workdir=DIR VIDEO --output=OUT.mp4."""
  args, files = cli_flags.parse_with_arguments(
      FLAGS, argv, __doc__, "avself.sonorize"
  )
  if len(files) != 1:
    raise SystemExit(
        f"avself.sonorize: one video please, got {len(files)}: {files}"
    )
  path = files[0]
  if not os.path.exists(path):
    raise SystemExit(f"{path}: no such file")
  from avself import sharding  # pylint: disable=g-import-not-at-top
  from avself import state as state_lib  # pylint: disable=g-import-not-at-top

  config, task, model, state = state_lib.restore(
      args.workdir, args.step, mesh=sharding.make_mesh()
  )
  if config.task != "sonorize":
    raise SystemExit(
        f"{args.workdir} holds a {config.task!r} run, not a 'sonorize' one"
    )
  index = None
  if args.synthesis == "example":
    index_path = config.sonorize.get("index") or task.index_path(args.workdir)
    if not os.path.exists(index_path):
      raise SystemExit(
          f"{index_path}: no example index (train the run, or use "
          "--synthesis=parametric)"
      )
    index = synthesis.ExampleIndex.load(index_path)
  summary = sonorize_file(
      path,
      args.output,
      config=config,
      task=task,
      model=model,
      variables={"params": state.params, **state.model_state},
      index=index,
      how=args.synthesis,
      window_frames=args.window_frames,
      max_seconds=args.max_seconds,
  )
  line = (
      f"{path}: {summary['seconds']:.2f} s -> {summary['output']} "
      f"({summary['synthesis']}), {summary['png']}"
  )
  if "onset_f1" in summary:
    line += (
        f"; against its own sound: onset F1 {summary['onset_f1']:.3f}, "
        f"spectral distance {summary['spectral_distance']:.2f} dB"
    )
  print(line)
  return summary


if __name__ == "__main__":
  main()
