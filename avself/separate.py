r"""On/off-screen separation of a video's sound with a trained separation net.

  python -m avself.separate --workdir=/tmp/separation_synthetic CLIP.mp4 \
      [--offscreen=OTHER.mp4] --output=DIR

Restores the checkpoint in `--workdir` (its config describes the net and its
clips), decodes CLIP with `avself.data.media` at the training clip rate,
sample rate and channel count (shorter side `resize_shorter`, centre crop
`image_size`, as the pipeline at evaluation). With `--offscreen`, OTHER's
sound is added to CLIP's (the pipeline's mixture, for a demo whose truth is
known: the SDRs are printed); without it, CLIP's own sound is the mixture.
The net runs on consecutive windows of `mixture.num_frames` frames (the last
one aligned to the end), and writes

  DIR/on_screen.wav      the sound of what is on screen (16-bit PCM)
  DIR/off_screen.wav     everything else
  DIR/mixture.wav        the input sound
  DIR/on_screen.mp4      CLIP's frames with only the on-screen sound
  DIR/spectrograms.png   mixture, estimated on, estimated off (first window;
                         with --offscreen: mixture, true on, on, true off, off)

Bad input fails with one line: a file without sound, or a clip shorter than
the model's window.
"""

import functools
import os
from typing import Optional, Sequence

from absl import flags
import jax
import numpy as np
import scipy.io.wavfile

from avself import cli_flags
from avself import clip_input
from avself import pictures
from avself import sharding
from avself.data import media as media_lib
from avself.data import media_encode
from avself.evaluators import separation as separation_eval


def clip_spec(config, state) -> clip_input.ClipSpec:
  """The window a separation checkpoint was trained on (channels from its sync net)."""
  d = config.data
  params = state.params
  channels = int(d.get("channels", 1))
  if "sync_net" in params:
    channels = params["sync_net"]["audio_branch"]["conv1"]["kernel"].shape[1]
  return clip_input.clip_spec(config, channels, section="mixture")


def window_starts(num_frames: int, clip_frames: int) -> np.ndarray:
  """First frames of consecutive windows covering all frames (the last one ends at the end)."""
  if num_frames < clip_frames:
    raise ValueError(f"{num_frames} frames < one window of {clip_frames}")
  starts = list(range(0, num_frames - clip_frames + 1, clip_frames))
  if starts[-1] + clip_frames < num_frames:
    starts.append(num_frames - clip_frames)
  return np.asarray(starts)


def _step(params, model_state, video, waveform, model, task):
  """uint8 clips and mixtures -> estimated waveforms and log-magnitudes."""
  x = video.astype(np.float32) * (2.0 / 255.0) - 1.0  # as ops.finish_images
  out = model.apply({"params": params, **model_state}, x, waveform, train=False)
  return {
      "on": task.resynthesize(out["on_screen"], waveform, model),
      "off": task.resynthesize(out["off_screen"], waveform, model),
      **{k: out[k][..., 0] for k in ("mixture", "on_screen", "off_screen")},
  }


@functools.lru_cache(maxsize=None)
def _make_step(mesh):
  return jax.jit(
      _step,
      static_argnums=(4, 5),
      in_shardings=(
          sharding.replicated(mesh),
          sharding.replicated(mesh),
          sharding.batch_sharding(mesh),
          sharding.batch_sharding(mesh),
      ),
      out_shardings=sharding.replicated(mesh),
  )


def separate_windows(task, model, state, video, waveform, mesh) -> dict:
  """K windows (uint8 video, mixture [K, n, C]) -> on/off [K, n, C] and spectrograms, padded to the devices."""
  devices = jax.device_count()
  k = len(video)
  pad = -(-k // devices) * devices - k
  video = np.concatenate(
      [video, np.zeros((pad, *video.shape[1:]), video.dtype)]
  )
  waveform = np.concatenate(
      [waveform, np.zeros((pad, *waveform.shape[1:]), waveform.dtype)]
  )
  batch = sharding.to_global({"video": video, "waveform": waveform}, mesh)
  out = _make_step(mesh)(
      state.params,
      state.model_state,
      batch["video"],
      batch["waveform"],
      model,
      task,
  )
  return {name: np.asarray(v)[:k] for name, v in out.items()}


def stitch(windows: np.ndarray, sample_starts: np.ndarray, total: int):
  """Windows [K, n, C] at sample_starts -> [total, C]; a later window fills only what is left."""
  out = np.zeros((total, windows.shape[-1]), np.float32)
  done = 0
  for window, start in zip(windows, sample_starts):
    end = min(start + len(window), total)
    if end > done:
      out[done:end] = window[done - start : end - start]
      done = end
  return out


def write_wav(path: str, audio: np.ndarray, sample_rate: int) -> str:
  """float [n, C] in [-1, 1] -> 16-bit PCM WAV."""
  pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
  scipy.io.wavfile.write(
      path, sample_rate, pcm[:, 0] if pcm.shape[1] == 1 else pcm
  )
  return path


def _load_offscreen(path: str, spec, length: int) -> np.ndarray:
  """OTHER's sound at the net's rate and channels, cut or zero-padded to `length`."""
  try:
    audio = media_lib.load_audio(path, spec.sample_rate, spec.channels)
  except media_lib.MediaError as e:
    raise SystemExit(f"{path}: {e} (the off-screen video needs sound)") from e
  audio = audio[:length]
  return np.pad(audio, ((0, length - len(audio)), (0, 0)))


def separate_file(
    path: str,
    output: str,
    *,
    config,
    task,
    model,
    state,
    mesh,
    offscreen: Optional[str] = None,
    max_seconds: Optional[float] = None,
) -> dict:
  """Writes the files listed in the module docstring for one clip; a summary."""
  spec = clip_spec(config, state)
  try:
    frames, audio, media, _ = clip_input.decode(path, spec, max_seconds)
  except media_lib.MediaError as e:
    raise SystemExit(f"{path}: {e}") from e
  if not media.has_audio or not len(audio):
    raise SystemExit(f"{path}: no audio track, so no sound to separate")
  if len(frames) < spec.num_frames:
    raise SystemExit(
        f"{path}: {len(frames) / spec.fps:.2f} s is shorter than the model's "
        f"window of {spec.num_frames / spec.fps:.2f} s ({spec.num_frames} "
        f"frames at {spec.fps:g} fps)"
    )
  total = int(round(len(frames) / spec.fps * spec.sample_rate))
  on_truth = np.pad(
      audio[:total], ((0, max(0, total - len(audio))), (0, 0))
  ).astype(np.float32)
  off_truth = None
  mixture = on_truth
  if offscreen:
    off_truth = _load_offscreen(offscreen, spec, total)
    mixture = on_truth + off_truth
  starts = window_starts(len(frames), spec.num_frames)
  video, waveform, _ = clip_input.cut_clips(
      frames, mixture, spec, starts=starts
  )
  out = separate_windows(task, model, state, video, waveform, mesh)
  sample_starts = np.round(starts / spec.fps * spec.sample_rate).astype(int)
  on = stitch(out["on"], sample_starts, total)
  off = stitch(out["off"], sample_starts, total)
  os.makedirs(output, exist_ok=True)
  files = {
      "on_screen": write_wav(
          os.path.join(output, "on_screen.wav"), on, spec.sample_rate
      ),
      "off_screen": write_wav(
          os.path.join(output, "off_screen.wav"), off, spec.sample_rate
      ),
      "mixture": write_wav(
          os.path.join(output, "mixture.wav"), mixture, spec.sample_rate
      ),
  }
  shown = pictures.upscale(frames, max(1, -(-256 // spec.image_size)))
  files["mp4"] = os.path.join(output, "on_screen.mp4")
  media_encode.write_mp4(files["mp4"], shown, on, spec.fps, spec.sample_rate)
  summary = {
      "file": path,
      "windows": len(starts),
      "seconds": total / spec.sample_rate,
  }
  row = [out["mixture"][0], out["on_screen"][0], out["off_screen"][0]]
  if off_truth is not None:
    first = {"video": video[:1], "waveform": np.stack([on_truth, off_truth])}
    truth = task.log_magnitude(
        first["waveform"][:, : waveform.shape[1]], model
    )[..., 0]
    row = [row[0], np.asarray(truth[0]), row[1], np.asarray(truth[1]), row[2]]
    scores = separation_eval.separation_scores(
        on_truth.mean(-1)[None],
        off_truth.mean(-1)[None],
        on.mean(-1)[None],
        off.mean(-1)[None],
    )
    mix_scores = separation_eval.separation_scores(
        on_truth.mean(-1)[None],
        off_truth.mean(-1)[None],
        mixture.mean(-1)[None],
        mixture.mean(-1)[None],
    )
    summary.update(
        on_sdr=float(scores["on_sdr"][0]),
        off_sdr=float(scores["off_sdr"][0]),
        mixture_on_sdr=float(mix_scores["on_sdr"][0]),
    )
  files["png"] = pictures.save_png(
      separation_eval.spectrogram_panels([row], size=128),
      os.path.join(output, "spectrograms.png"),
  )
  summary["files"] = files
  return summary


FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "workdir", None, "a separation run's workdir", flag_values=FLAGS
)
flags.DEFINE_string(
    "output", None, "folder for the sounds and pictures", flag_values=FLAGS
)
flags.DEFINE_string(
    "offscreen",
    None,
    "a second video whose sound is mixed in as the off-screen sound",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "step", None, "checkpoint step (default latest)", flag_values=FLAGS
)
flags.DEFINE_float(
    "max_seconds",
    None,
    "separate only the first seconds of the clip",
    flag_values=FLAGS,
)
flags.mark_flags_as_required(["workdir", "output"], flag_values=FLAGS)


def main(argv: Optional[Sequence[str]] = None) -> dict:
  """python -m avself.separate --workdir=DIR CLIP [--offscreen=OTHER] --output=DIR."""
  args, paths = cli_flags.parse_with_arguments(
      FLAGS, argv, __doc__, "avself.separate"
  )
  if len(paths) != 1:
    raise SystemExit(
        f"avself.separate: expected one video, got {len(paths)}: "
        + " ".join(paths)
    )
  (clip,) = paths
  from avself import state as state_lib  # pylint: disable=g-import-not-at-top

  for path in [clip] + ([args.offscreen] if args.offscreen else []):
    if not os.path.exists(path):
      raise SystemExit(f"{path}: no such file")
  mesh = sharding.make_mesh()
  config, task, model, state = state_lib.restore(
      args.workdir, args.step, mesh=mesh
  )
  if config.task != "separation":
    raise SystemExit(
        f"{args.workdir} holds a {config.task!r} run, not a 'separation' one"
    )
  summary = separate_file(
      clip,
      args.output,
      config=config,
      task=task,
      model=model,
      state=state,
      mesh=mesh,
      offscreen=args.offscreen,
      max_seconds=args.max_seconds,
  )
  line = f"{clip}: {summary['windows']} windows -> {args.output}/"
  if "on_sdr" in summary:
    line += (
        f"; on-screen SDR {summary['on_sdr']:.2f} dB (mixture "
        f"{summary['mixture_on_sdr']:.2f} dB), off-screen "
        f"{summary['off_sdr']:.2f} dB"
    )
  print(line)
  return summary


if __name__ == "__main__":
  main()
