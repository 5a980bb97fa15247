"""TFDS probe datasets: clips -> windows -> features."""

import os
from typing import Optional

import jax
import numpy as np

from avself import sharding


def tfds_windows(
    name: str,
    data_dir: Optional[str],
    manual_dir: Optional[str],
    split: str,
    data_config,
    *,
    modality: str = "audio",
    hop_seconds=None,
):
  """Yields one dict per window of every clip: model input, label, video_index, fold.

  Audio is resampled to `data_config.sample_rate` (`scipy.signal.resample_poly`)
  and cut into `audio_seconds` windows every `hop_seconds` (default: no
  overlap; a clip shorter than one window is zero-padded to one). Vision
  (Kinetics-Sounds) takes the frame at each window's centre, resized and
  centre-cropped as in evaluation.
  """
  from avself import datasets  # pylint: disable=g-import-not-at-top  (slow TF import)
  from avself import embed  # pylint: disable=g-import-not-at-top

  rate = int(data_config.sample_rate)
  window = int(round(data_config.audio_seconds * rate))
  hop = int(round((hop_seconds or data_config.audio_seconds) * rate))
  data_dir = os.path.expanduser(data_dir or "~/tensorflow_datasets")
  ds = datasets.load_probe_dataset(
      name, data_dir, manual_dir and os.path.expanduser(manual_dir), split
  )
  for clip, example in enumerate(ds.as_numpy_iterator()):
    waveform = embed.resample(
        example["audio"], int(example["sample_rate"]), rate
    )
    windows, starts = embed.cut_windows(waveform, window, hop, pad_end=False)
    meta = dict(
        label=int(example["label"]), video_index=clip, fold=int(example["fold"])
    )
    if modality == "audio":
      inputs = embed.spectrograms(windows, data_config)  # [W, F, T, 1]
    else:
      if "frames" not in example:
        raise ValueError(
            f"{name!r} has no frames: the vision probe needs Kinetics-Sounds"
        )
      centres = (starts + window / 2) / rate
      inputs = _centre_frames(
          example["frames"], float(example["fps"]), centres, data_config
      )
    key = "audio" if modality == "audio" else "image"
    for row in inputs:
      yield {key: row, **meta}


def _centre_frames(
    jpegs: np.ndarray, fps: float, seconds: np.ndarray, data_config
) -> np.ndarray:
  """Frames showing `seconds`, decoded, resized and centre-cropped -> float32 [W, S, S, 3] in [-1, 1]."""
  from avself.data import ops  # pylint: disable=g-import-not-at-top

  index = np.minimum(
      np.floor(seconds * fps + 1e-6).astype(np.int64), len(jpegs) - 1
  )
  crops = [
      ops.decode_crop(
          jpegs[i],
          size=data_config.image_size,
          resize_shorter=data_config.resize_shorter,
      )
      for i in index
  ]
  return np.asarray(ops.finish_images(np.stack(crops)))


def extract_batches(
    feature_fn, nets, examples, global_batch: int, mesh
) -> dict:
  """Runs `feature_fn` over windows in global batches (padded); returns stacked arrays.

  Every host reads every window and feeds its own slice of each global batch;
  features come back replicated, so all hosts hold all of them.
  """
  local = sharding.local_batch_size(global_batch)
  lo = jax.process_index() * local
  out, pending = {}, []

  def flush():
    rows = len(pending)
    batch = {k: np.stack([p[k] for p in pending]) for k in pending[0]}
    inputs = {k: v for k, v in batch.items() if k in ("audio", "image")}
    inputs = {
        k: np.concatenate(
            [v, np.zeros((global_batch - rows, *v.shape[1:]), v.dtype)]
        )
        for k, v in inputs.items()
    }
    feats = sharding.to_host(
        feature_fn(
            nets,
            sharding.to_global(
                {k: v[lo : lo + local] for k, v in inputs.items()}, mesh
            ),
        )
    )
    for k, v in {**feats, **batch}.items():
      if k not in inputs:
        out.setdefault(k, []).append(np.asarray(v)[:rows])
    pending.clear()

  for example in examples:
    pending.append(example)
    if len(pending) == global_batch:
      flush()
  if pending:
    flush()
  if not out:
    raise ValueError("the probe dataset split has no windows")
  return {k: np.concatenate(v) for k, v in out.items()}
