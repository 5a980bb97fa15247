r"""Embeddings of media files from a checkpoint, like OpenL3's command line.

    python -m avself.embed --workdir=/ckpt/run a.mp4 b.wav [--output=DIR] \
        [--hop=0.1] [--fps=1] [--feature=transfer|pooled] [--step=N]

For each file (anything ffmpeg decodes) writes `OUTPUT/<stem>.npz` (inputs
from several folders: `OUTPUT/<folders below their common one>/<stem>.npz`)
with
  audio_embedding    float32 [W, D]: one row per window of `data.audio_seconds`
                     (1 s), windows every `--hop` seconds; the last window is
                     zero-padded so every sample is covered (as OpenL3's
                     `center=False`), a file shorter than a window gives one
  audio_timestamps   float64 [W]: each window's start, seconds
  vision_embedding   float32 [F, D]: videos only, one row per frame sampled
                     at `--fps` (frame k shows k / fps seconds)
  vision_timestamps  float64 [F]
Times start at the first video frame for videos, at the first sample for
audio files. `--feature=transfer` (default) gives the paper's transfer
features (audio: conv4_2 before ReLU max-pooled to 4x3xC, 6144-D at full
width; vision: conv4_2 max-pooled to 4x4xC, 8192-D); `--feature=pooled` the
trunk's globally pooled output (C = 512-D at full width); any other 2-D
output of the model's `embed_audio` / `embed_vision` works too (AVE-Net:
`embedding`, 128-D).

Preprocessing is the evaluation pipeline's, from the config stored with the
checkpoint: audio decoded at `data.sample_rate` with the records' channel
count, `ops.spectrogram_batch` with `data.spectrogram`; frames scaled by
PyAV to shorter side `data.resize_shorter` (as `prepare` stores them), centre
crop `data.image_size`, `ops.finish_images` to [-1, 1]. One process only.
A missing file stops before anything loads; a file that fails to decode is
skipped, the rest are embedded, and the command exits 1 listing the failures.
"""

import math
import os
import sys
from typing import NamedTuple, Optional, Sequence

from absl import flags
import numpy as np

from avself import cli_flags
from avself import file_inputs

FEATURE_TRANSFER = "transfer"


class Loaded(NamedTuple):
  """A restored checkpoint, ready to embed."""

  config: object
  model: object
  variables: dict
  step: int
  mesh: object


def load(workdir: str, step: Optional[int] = None) -> Loaded:
  """Restores a checkpoint (latest or `step`) with the config stored in it."""
  from avself import sharding  # pylint: disable=g-import-not-at-top
  from avself import state as state_lib  # pylint: disable=g-import-not-at-top

  mesh = sharding.make_mesh()
  config, _, model, state = state_lib.restore(workdir, step, mesh)
  variables = {"params": state.params, **state.model_state}
  return Loaded(config, model, variables, int(state.step), mesh)


################################################################################
# Preprocessing (shared with the linear probe's TFDS path).
################################################################################


def resample(waveform: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
  """Polyphase resampling along axis 0 (scipy.signal.resample_poly) -> float32."""
  if from_rate == to_rate:
    return np.asarray(waveform, np.float32)
  from scipy import signal  # pylint: disable=g-import-not-at-top

  g = math.gcd(int(from_rate), int(to_rate))
  return signal.resample_poly(
      waveform, to_rate // g, from_rate // g, axis=0
  ).astype(np.float32)


def cut_windows(
    waveform: np.ndarray, window: int, hop: int, pad_end: bool
) -> tuple[np.ndarray, np.ndarray]:
  """Windows [W, window, ...] of waveform [N, ...] every `hop` samples, and their starts [W].

  pad_end: also the windows that run past the end, zero-padded (so every
  sample is in a window); else only complete ones. Either way a waveform
  shorter than `window` gives one zero-padded window.
  """
  n = len(waveform)
  if pad_end:
    count = 1 + max(0, math.ceil((n - window) / hop))
  else:
    count = 1 + max(0, (n - window) // hop)
  starts = np.arange(count, dtype=np.int64) * hop
  needed = int(starts[-1]) + window
  if needed > n:
    pad = np.zeros((needed - n, *waveform.shape[1:]), waveform.dtype)
    waveform = np.concatenate([waveform, pad])
  return np.stack([waveform[s : s + window] for s in starts]), starts


def spectrograms(windows: np.ndarray, data_config) -> np.ndarray:
  """Model inputs [W, F, T, C] of waveform windows [W, n] (mono) or [W, n, C], as in training."""
  from avself.data import ops  # pylint: disable=g-import-not-at-top

  if windows.ndim == 2:
    windows = windows[..., None]
  return np.asarray(
      ops.spectrogram_batch(
          windows.astype(np.float32),
          data_config.spectrogram,
          data_config.sample_rate,
      )
  )


def centre_crop_images(frames: np.ndarray, size: int) -> np.ndarray:
  """uint8 [F, H, W, 3] -> centre size x size crops, float32 in [-1, 1] (the eval crop)."""
  from avself.data import ops  # pylint: disable=g-import-not-at-top

  height, width = frames.shape[1:3]
  if min(height, width) < size:
    raise ValueError(
        f"frames of {height}x{width} are smaller than the {size}x{size} crop"
    )
  y, x = (height - size) // 2, (width - size) // 2
  return np.asarray(ops.finish_images(frames[:, y : y + size, x : x + size]))


################################################################################
# Embedding.
################################################################################


def _embedding_fn(model, variables, batch, *, modality: str, feature: str):
  """{'embedding': [B, D] float32} of one modality's trunk."""
  from avself.models import l3  # pylint: disable=g-import-not-at-top

  key = "audio" if modality == "audio" else "image"
  trunk = model.apply(
      variables, batch[key], method=getattr(model, f"embed_{modality}")
  )
  if feature == FEATURE_TRANSFER:
    transfer = (
        l3.audio_transfer_features
        if modality == "audio"
        else l3.vision_transfer_features
    )
    return {"embedding": transfer(trunk)}
  if feature not in trunk or trunk[feature].ndim != 2:
    options = [k for k, v in trunk.items() if v.ndim == 2]
    raise ValueError(
        f"--feature={feature!r}: use {FEATURE_TRANSFER!r} or one of {options}"
    )
  return {"embedding": trunk[feature].astype("float32")}


def embed_inputs(
    loaded: Loaded,
    inputs: np.ndarray,
    *,
    modality: str,
    feature: str = FEATURE_TRANSFER,
    batch_size: int = 32,
) -> np.ndarray:
  """Embeddings [N, D] of model inputs [N, ...] ('audio' spectrograms or 'image' crops).

  Batches are zero-padded to `batch_size`, so every call runs the same shapes
  (and the same XLA kernels) whatever N is.
  """
  import functools  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  from avself import sharding  # pylint: disable=g-import-not-at-top
  from avself.evaluators import features  # pylint: disable=g-import-not-at-top

  devices = jax.device_count()
  batch_size = -(-batch_size // devices) * devices
  fn = features.make_feature_fn(
      functools.partial(_embedding_fn, modality=modality, feature=feature),
      loaded.model,
      loaded.mesh,
  )
  key = "audio" if modality == "audio" else "image"
  out = []
  for start in range(0, len(inputs), batch_size):
    chunk = inputs[start : start + batch_size]
    padded = np.zeros((batch_size, *chunk.shape[1:]), np.float32)
    padded[: len(chunk)] = chunk
    result = fn(
        loaded.variables, sharding.to_global({key: padded}, loaded.mesh)
    )
    out.append(np.asarray(jax.device_get(result["embedding"]))[: len(chunk)])
  return np.concatenate(out)


def _decode(path: str, data_config, fps: float):
  """(frames uint8 [F, H, W, 3] or None, audio float32 [N, C]) of a media file."""
  from avself.data import media  # pylint: disable=g-import-not-at-top

  channels = (
      1 if data_config.spectrogram.mono else int(data_config.get("channels", 2))
  )
  try:
    decoded = media.load_video(
        path,
        fps=fps,
        shorter_side=_shorter_side(path, data_config),
        sample_rate=data_config.sample_rate,
        channels=channels,
    )
  except media.MediaError as e:
    if e.reason != "no_video":
      raise
    return None, media.load_audio(path, data_config.sample_rate, channels)
  return decoded.frames, decoded.audio


def _shorter_side(path: str, data_config) -> int:
  """`data.resize_shorter`, or the file's own shorter side when that is 0 (never resize)."""
  if data_config.resize_shorter:
    return int(data_config.resize_shorter)
  import av  # pylint: disable=g-import-not-at-top

  with av.open(path) as container:
    if not container.streams.video:
      return 1  # audio only: unused
    ctx = container.streams.video[0].codec_context
    return min(ctx.width, ctx.height)


def embed_file(
    loaded: Loaded,
    path: str,
    *,
    hop: float = 0.1,
    fps: float = 1.0,
    feature: str = FEATURE_TRANSFER,
    batch_size: int = 32,
) -> dict:
  """{audio_embedding, audio_timestamps[, vision_embedding, vision_timestamps]} of one file."""
  d = loaded.config.data
  frames, waveform = _decode(path, d, fps)
  out = {}
  if len(waveform):
    window = int(round(d.audio_seconds * d.sample_rate))
    windows, starts = cut_windows(
        waveform, window, max(1, int(round(hop * d.sample_rate))), pad_end=True
    )
    out["audio_embedding"] = embed_inputs(
        loaded,
        spectrograms(windows, d),
        modality="audio",
        feature=feature,
        batch_size=batch_size,
    )
    out["audio_timestamps"] = starts / float(d.sample_rate)
  if frames is not None and len(frames):
    images = centre_crop_images(frames, d.image_size)
    out["vision_embedding"] = embed_inputs(
        loaded,
        images,
        modality="vision",
        feature=feature,
        batch_size=batch_size,
    )
    out["vision_timestamps"] = np.arange(len(frames), dtype=np.float64) / fps
  return out


def output_path(
    path: str, output_dir: Optional[str], stem: Optional[str] = None
) -> str:
  """OUTPUT/<stem>.npz (default OUTPUT: the file's own folder, as OpenL3).

  `stem` (from `file_inputs.output_stems`) may hold folders that mirror the
  inputs'; it is used under OUTPUT only.
  """
  if not output_dir or stem is None:
    stem = os.path.splitext(os.path.basename(path))[0]
  return os.path.join(
      output_dir or os.path.dirname(os.path.abspath(path)), stem + ".npz"
  )


################################################################################
# Command line.
################################################################################


FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "workdir", None, "training workdir with checkpoints/", flag_values=FLAGS
)
flags.DEFINE_string(
    "output",
    None,
    "folder for <stem>.npz (default: beside each file)",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "step", None, "checkpoint step (default: latest)", flag_values=FLAGS
)
flags.DEFINE_float(
    "hop", 0.1, "seconds between audio windows", flag_values=FLAGS
)
flags.DEFINE_float(
    "fps", 1.0, "video frames embedded per second", flag_values=FLAGS
)
flags.DEFINE_string(
    "feature",
    FEATURE_TRANSFER,
    "'transfer' (paper's transfer features), 'pooled', or another 2-D trunk "
    "output",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "batch_size", 32, "windows or frames per batch", flag_values=FLAGS
)
flags.mark_flag_as_required("workdir", flag_values=FLAGS)


def main(argv: Optional[Sequence[str]] = None) -> list[str]:
  """Embeds every file; prints and returns the .npz paths written."""
  args, paths = cli_flags.parse_with_arguments(
      FLAGS, argv, __doc__, "avself.embed"
  )
  if not paths:
    raise SystemExit("avself.embed: no media files given")
  if args.hop <= 0 or args.fps <= 0:
    raise SystemExit("--hop and --fps must be positive")
  files = file_inputs.check_exist(paths, "embed")
  stems = file_inputs.output_stems(files, "embed")
  loaded = load(args.workdir, args.step)

  def one(path):
    result = embed_file(
        loaded,
        path,
        hop=args.hop,
        fps=args.fps,
        feature=args.feature,
        batch_size=args.batch_size,
    )
    target = output_path(path, args.output, stems[path])
    os.makedirs(os.path.dirname(target), exist_ok=True)
    np.savez(target, **result)
    shapes = ", ".join(
        f"{k} {v.shape}" for k, v in result.items() if k.endswith("embedding")
    )
    print(f"{path} -> {target}: {shapes}")
    return target

  written, failed = file_inputs.for_each(files, one, "embed")
  file_inputs.exit_if_failed(failed, len(files), "embed")
  return written


if __name__ == "__main__":
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  tf.config.set_visible_devices(
      [], "GPU"
  )  # tf computes spectrograms on the host only
  main(sys.argv[1:])
