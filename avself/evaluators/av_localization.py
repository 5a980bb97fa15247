"""Where does the sound come from? AVOL-Net's localisation map against ground truth.

On the synthetic world every clip lists its objects with per-frame boxes and
whether each one makes sound (`ground_truth.jsonl` in the world folder, which
`avself.data.synthetic_records` puts beside the records: `<root>/world`, `<root>/records`).

For every 1 s window of every evaluation video (as the pipeline's `clips`
mode: non-overlapping windows from the start, the frame at the window's
centre, centre crop after resizing to `data.resize_shorter`) the model's
`localization_map` [h, w] is upsampled (bilinear) to the crop and its peak
pixel is the guess. Pointing accuracy = fraction of frames whose guess falls
inside the box of a SOUNDING object (boxes mapped from the generated video's
pixels through the prepare resize, the eval resize and the centre crop).
Baseline: the crop's centre pixel as the guess, scored the same way (the same
definition as the multisensory CAM evaluator). Frames where no sounding box
reaches into the crop are skipped (`num_skipped`). A random-init network's
accuracy is reported too (computed once).

The inputs are read from the records (`video/filename` names the clip in the
ground truth), decoded with the pipeline's own ops, once, and kept.
"""

import functools
import os
from typing import Optional

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from avself import pictures
from avself import sharding
from avself.evaluators import ground_truth

SOUNDING = (40, 220, 60)
SILENT = (150, 150, 150)
PEAK = (255, 255, 255)


# ### Ground truth and geometry (pure numpy) ##################################


def load_ground_truth(world_dir: str) -> dict:
  """`{basename of the clip file: its ground_truth.jsonl record}`."""
  clips = ground_truth.read_clips(
      world_dir,
      "the av_localization evaluator needs the synthetic world's ground truth "
      "(set eval_config.world_dir, or train on config.data.synthetic)",
  )
  return {os.path.basename(clip["file"]): clip for clip in clips}


def crop_geometry(source_hw, stored_hw, resize_shorter: int, crop: int):
  """(scale_y, scale_x, offset_y, offset_x): generated pixels -> eval-crop pixels.

  source_hw: the generated video's (h, w); stored_hw: the records' JPEG (h, w).
  The eval crop is centred after resizing the stored frame to `resize_shorter`
  (unless its shorter side already is that, or it is 0).
  """
  h, w = stored_hw
  if resize_shorter and min(h, w) != resize_shorter:
    from avself.data import ops  # pylint: disable=g-import-not-at-top

    h, w = (int(n) for n in ops.resized_shape(h, w, resize_shorter))
  return (
      h / source_hw[0],
      w / source_hw[1],
      max(h - crop, 0) // 2,
      max(w - crop, 0) // 2,
  )


def map_boxes(boxes: np.ndarray, geometry) -> np.ndarray:
  """Boxes [..., 4] (x0, y0, x1, y1) in generated pixels -> eval-crop pixels."""
  sy, sx, oy, ox = geometry
  b = np.asarray(boxes, np.float64)
  return np.stack(
      [
          b[..., 0] * sx - ox,
          b[..., 1] * sy - oy,
          b[..., 2] * sx - ox,
          b[..., 3] * sy - oy,
      ],
      axis=-1,
  )


def reaches_crop(boxes: np.ndarray, crop: int) -> np.ndarray:
  """Which boxes [K, 4] overlap the crop [0, crop]^2."""
  b = np.asarray(boxes, np.float64).reshape(-1, 4)
  return (b[:, 2] > 0) & (b[:, 0] < crop) & (b[:, 3] > 0) & (b[:, 1] < crop)


def frame_boxes(
    clip: dict, seconds: float, geometry, crop: int
) -> tuple[np.ndarray, np.ndarray]:
  """(sounding, silent) boxes [K, 4] in crop pixels of the ground-truth frame shown at `seconds`."""
  index = min(
      int(np.floor(seconds * clip["fps"] + 1e-6)), clip["num_frames"] - 1
  )
  sounding, silent = [], []
  for obj in clip["objects"]:
    (sounding if obj["sounding"] else silent).append(obj["boxes"][index])
  mapped = [
      map_boxes(np.reshape(np.asarray(b, np.float64), (-1, 4)), geometry)
      for b in (sounding, silent)
  ]
  return tuple(m[reaches_crop(m, crop)] for m in mapped)


def pointing_hits(
    peaks: np.ndarray, boxes: list, crop: int
) -> tuple[np.ndarray, np.ndarray]:
  """(peak hits, centre-baseline hits), bool [N], for peaks [N, 2] (y, x) and boxes per frame."""
  centre = (crop / 2.0, crop / 2.0)
  hits = np.array(
      [ground_truth.point_in_boxes(p[::-1], b) for p, b in zip(peaks, boxes)],
      bool,
  )
  base = np.array([ground_truth.point_in_boxes(centre, b) for b in boxes], bool)
  return hits, base


# ### Inputs ###################################################################


def _windows(
    data_config,
    split: str,
    truth: dict,
    max_videos: int,
    windows_per_video: int,
):
  """This host's eval windows: image, audio, thumbnail, sounding/silent boxes, name."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from avself.data import ops, reading, records  # pylint: disable=g-import-not-at-top

  cfg = data_config
  files = reading.host_shards(
      records.list_shards(cfg.path, split),
      jax.process_index(),
      jax.process_count(),
  )
  parse = functools.partial(
      records.parse,
      default_fps=cfg.default_fps,
      default_sample_rate=cfg.default_sample_rate,
      default_channels=cfg.default_channels,
  )
  n = int(round(cfg.audio_seconds * cfg.sample_rate))
  size = cfg.image_size
  out = []
  videos = 0
  for video in tf.data.TFRecordDataset(files).map(parse):
    name = os.path.basename(video["filename"].numpy().decode())
    if name not in truth or (max_videos and videos >= max_videos):
      continue
    videos += 1
    clip = truth[name]
    fps, rate = float(video["fps"]), int(video["sample_rate"])
    frames = video["frames"]
    usable = min(
        int(video["waveform"].shape[0]), int(np.floor(len(frames) * rate / fps))
    )
    count = usable // n
    if windows_per_video:
      count = min(count, windows_per_video)
    if not count:
      continue
    starts = np.arange(count) * n
    centres = (starts + n / 2) / rate  # seconds from the record's start
    index = np.minimum(
        np.floor(centres * fps + 1e-6).astype(int), len(frames) - 1
    )
    stored = tf.io.extract_jpeg_shape(frames[0]).numpy()[:2]
    geometry = crop_geometry(
        (clip["size"], clip["size"]), stored, cfg.resize_shorter, size
    )
    crops = ops.decode_crop(
        tf.gather(frames, index), size=size, resize_shorter=cfg.resize_shorter
    ).numpy()  # uint8 [K, S, S, 3]
    waves = tf.stack(
        [video["waveform"][s : s + n] for s in starts]
    )  # [K, n, C]
    specs = ops.spectrogram_batch(
        waves, cfg.spectrogram, rate
    ).numpy()  # [K, F, T, 1]
    offset = float(video["start_us"]) / 1e6
    for k in range(count):
      frame_seconds = offset + index[k] / fps
      sounding, silent = frame_boxes(clip, frame_seconds, geometry, size)
      out.append(
          dict(
              image=crops[k].astype(np.float32) / 127.5 - 1.0,
              audio=specs[k],
              pixels=crops[k],
              sounding=sounding,
              silent=silent,
              name=name,
          )
      )
  return out


def _maps(model, variables, batch):
  """Localisation maps [B, h, w] and their peaks [B, 2] (y, x) in crop pixels."""
  out = model.apply(variables, batch["image"], batch["audio"], train=False)
  if "localization_map" not in out:
    raise ValueError(
        "the av_localization evaluator needs a model with a "
        "`localization_map` output (config.model.name='avol')"
    )
  maps = out["localization_map"].astype(jnp.float32)
  b, size = maps.shape[0], batch["image"].shape[1]
  up = jax.image.resize(maps, (b, size, size), "linear").reshape(b, -1)
  flat = jnp.argmax(up, axis=1)
  peaks = (
      jnp.stack([flat // size, flat % size], axis=-1).astype(jnp.float32) + 0.5
  )
  return {"map": maps, "peak": peaks}


class Evaluator:
  """Pointing accuracy of the localisation map vs the centre baseline, and pictures.

  Attributes (eval_config): split, world_dir ('' = beside the records),
  num_videos (0 = all), windows_per_video (0 = all), batch_size,
  random_init (True), num_pictures (8), picture_dir.
  """

  def __init__(
      self,
      config,
      eval_config,
      *,
      task,
      model,
      mesh,
      workdir: Optional[str] = None,
  ):
    del task
    self.config, self.model, self.mesh = config, model, mesh
    self.split = eval_config.get("split") or config.data.eval_split
    records_dir = (
        os.path.abspath(config.data.path) if config.data.get("path") else ""
    )
    self.world_dir = eval_config.get("world_dir") or os.path.join(
        os.path.dirname(records_dir), "world"
    )
    self.num_videos = int(eval_config.get("num_videos", 0))
    self.windows_per_video = int(eval_config.get("windows_per_video", 0))
    self.batch = int(eval_config.get("batch_size") or config.batch_size)
    self.random_init = bool(eval_config.get("random_init", True))
    self.num_pictures = int(eval_config.get("num_pictures", 8))
    picture_dir = eval_config.get("picture_dir") or ""
    self.picture_dir = picture_dir or (
        os.path.join(workdir, "pictures") if workdir else ""
    )
    self._fn = jax.jit(
        functools.partial(_maps, model),
        in_shardings=(sharding.replicated(mesh), sharding.batch_sharding(mesh)),
        out_shardings=sharding.batch_sharding(mesh),
    )
    self._inputs = None
    self._baseline = None

  def _load(self) -> list:
    if self._inputs is None:
      truth = load_ground_truth(self.world_dir)
      self._inputs = _windows(
          self.config.data,
          self.split,
          truth,
          self.num_videos,
          self.windows_per_video,
      )
      logging.info(
          "av_localization: %d windows from %s", len(self._inputs), self.split
      )
    return self._inputs

  def _predict(self, variables, inputs: list) -> dict:
    """Maps and peaks of this host's windows, in global batches (hosts agree on the count)."""
    local = sharding.local_batch_size(self.batch)
    count = -(-len(inputs) // local)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

      count = int(np.max(multihost_utils.process_allgather(np.int32(count))))
    maps, peaks = [], []
    template = inputs[0] if inputs else None
    for i in range(count):
      chunk = inputs[i * local : (i + 1) * local]
      batch = {
          k: np.zeros((local, *template[k].shape), np.float32)
          for k in ("image", "audio")
      }
      for j, item in enumerate(chunk):
        batch["image"][j], batch["audio"][j] = item["image"], item["audio"]
      out = self._fn(variables, sharding.to_global(batch, self.mesh))
      rows = {k: sharding.local_rows(v)[: len(chunk)] for k, v in out.items()}
      maps.append(rows["map"])
      peaks.append(rows["peak"])
    return {
        "map": np.concatenate(maps) if maps else np.zeros((0, 1, 1)),
        "peak": np.concatenate(peaks) if peaks else np.zeros((0, 2)),
    }

  def _accuracy(self, variables, inputs: list) -> tuple[dict, dict]:
    """({pointing_accuracy, centre_baseline_accuracy, num_frames, num_skipped}, predictions)."""
    pred = self._predict(variables, inputs)
    keep = np.array([len(item["sounding"]) > 0 for item in inputs], bool)
    size = self.config.data.image_size
    boxes = [item["sounding"] for item, k in zip(inputs, keep) if k]
    hits, base = pointing_hits(pred["peak"][keep], boxes, size)
    totals = np.array(
        [hits.sum(), base.sum(), keep.sum(), (~keep).sum()], np.float64
    )
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

      totals = np.sum(multihost_utils.process_allgather(totals), axis=0)
    frames = max(totals[2], 1.0)
    return {
        "pointing_accuracy": totals[0] / frames,
        "centre_baseline_accuracy": totals[1] / frames,
        "num_frames": totals[2],
        "num_skipped": totals[3],
    }, pred

  def _picture(self, inputs: list, pred: dict) -> np.ndarray:
    """Overlays of the first windows: map, sounding (green) / silent (grey) boxes, peak."""
    tiles = []
    for item, heat, peak in list(zip(inputs, pred["map"], pred["peak"]))[
        : self.num_pictures
    ]:
      tile = pictures.heatmap_overlay(item["pixels"], heat)
      scale = max(1, 128 // tile.shape[0])  # small crops are hard to read
      tile = pictures.resize(tile, tile.shape[0] * scale, tile.shape[1] * scale)
      for boxes, colour in (
          (item["silent"], SILENT),
          (item["sounding"], SOUNDING),
      ):
        for box in boxes:
          tile = pictures.draw_box(tile, np.asarray(box) * scale, colour)
      tiles.append(
          pictures.draw_marker(tile, peak[0] * scale, peak[1] * scale, PEAK)
      )
    return pictures.tile_row(tiles)

  def run(self, state):
    """Yields pointing accuracy, the centre baseline, the random-init accuracy and `picture`."""
    inputs = self._load()
    metrics, pred = self._accuracy(
        {"params": state.params, **state.model_state}, inputs
    )
    if self.random_init and self._baseline is None:
      from avself import state as state_lib  # pylint: disable=g-import-not-at-top

      _, _, random_state = state_lib.random_init(self.config, mesh=self.mesh)
      self._baseline, _ = self._accuracy(
          {"params": random_state.params, **random_state.model_state}, inputs
      )
    yield from metrics.items()
    if self._baseline is not None:
      yield "random_init_pointing_accuracy", self._baseline["pointing_accuracy"]
    if self.num_pictures and inputs:
      picture = self._picture(inputs, pred)
      if self.picture_dir and jax.process_index() == 0:
        path = os.path.join(
            self.picture_dir, f"av_localization_step_{int(state.step)}.png"
        )
        pictures.save_png(picture, path)
      yield "picture", picture
