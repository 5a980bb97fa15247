"""CAM sound-source localisation scored by pointing on the synthetic world's ground truth.

Data: the evaluator reads the world's `ground_truth.jsonl` (per clip: every
object's box in every frame and whether it sounds) and decodes the world's
mp4s itself with `avself.clip_input.decode` (media.load_video at the training
clip rate, shorter side `resize_shorter`, centre crop `image_size`: what the
pipeline feeds at evaluation). The records carry no boxes, and a decoded file
has a known time origin, so frames and boxes line up exactly. The world lives
beside the records (`<root>/records`, `<root>/world`, see data/synthetic_records.py), or
at `eval_config.world_dir`.

Heat: `video_cam.video_heatmap`, the CLI's: clips every `hop` frames, each
map step placed on the frame it stands for, the views of a frame averaged
(and with `flip`, averaged with the mirrored video's).

Pointing (per frame): the peak of the video's upsampled CAM in each frame is a
hit when it falls inside the box of a sounding object in that frame. Boxes
are mapped from pixels of the generated video through the resize and the
centre crop; frames where no sounding object is inside the crop are skipped.
The centre baseline guesses the crop's centre in every frame. The resolution
ceiling scores a perfect CAM of the net's map size in space (one map per
frame, as the sliding clips give): each cell holds the fraction of its pixels
covered by sounding boxes, upsampled and peaked like the net's. A CAM of
that size cannot do better; if the ceiling is low, the map is too coarse for
the objects, whatever the training.
"""

import os

import numpy as np

from avself import clip_input
from avself import pictures
from avself import video_cam
from avself.evaluators import ground_truth


def crop_boxes(
    boxes: np.ndarray,
    world_size: int,
    resized_hw: tuple[int, int],
    crop_top_left: tuple[int, int],
    crop_size: int,
) -> np.ndarray:
  """Boxes [..., 4] (x0, y0, x1, y1) in world pixels -> crop pixels, clipped to the crop.

  A box wholly outside the crop comes back empty (x1 <= x0 or y1 <= y0).
  """
  boxes = np.asarray(boxes, np.float64)
  sy, sx = resized_hw[0] / world_size, resized_hw[1] / world_size
  top, left = crop_top_left
  out = boxes * np.array([sx, sy, sx, sy]) - np.array([left, top, left, top])
  return np.clip(out, 0.0, crop_size)


def peak_points(heat: np.ndarray) -> np.ndarray:
  """(x, y) pixel centres of each map's maximum: heat [F, H, W] -> [F, 2]."""
  f, _, w = heat.shape
  flat = np.argmax(heat.reshape(f, -1), axis=1)
  rows, cols = np.divmod(flat, w)
  return np.stack([cols + 0.5, rows + 0.5], axis=1)


def pointing(points: np.ndarray, boxes: list) -> tuple[int, int]:
  """(hits, scored frames): frame f counts when boxes[f] has a non-empty box."""
  hits = scored = 0
  for point, frame_boxes in zip(points, boxes):
    frame_boxes = np.asarray(frame_boxes, np.float64).reshape(-1, 4)
    if not (
        (frame_boxes[:, 2] > frame_boxes[:, 0])
        & (frame_boxes[:, 3] > frame_boxes[:, 1])
    ).any():
      continue
    scored += 1
    hits += ground_truth.point_in_boxes(point, frame_boxes)
  return hits, scored


def centre_points(num_frames: int, height: int, width: int) -> np.ndarray:
  """The centre-prior guess, (W / 2, H / 2) in every frame: [F, 2]."""
  return np.tile(np.array([[width / 2.0, height / 2.0]]), (num_frames, 1))


def box_masks(boxes: list, num_frames: int, size: int) -> np.ndarray:
  """Per-frame coverage by boxes: K clips of N lists [M, 4] -> float32 [K, N, S, S]."""
  centres = np.arange(size) + 0.5
  masks = np.zeros((len(boxes), num_frames, size, size), np.float32)
  for c, clip in enumerate(boxes):
    for f, frame_boxes in enumerate(clip):
      for x0, y0, x1, y1 in np.asarray(frame_boxes, np.float64).reshape(-1, 4):
        rows = (y0 <= centres) & (centres <= y1)
        cols = (x0 <= centres) & (centres <= x1)
        masks[c, f] = np.maximum(masks[c, f], np.outer(rows, cols))
  return masks


def _cell_means(x: np.ndarray, axis: int, cells: int) -> np.ndarray:
  """Means of `x` over `cells` near-equal consecutive spans of `axis` (i * L // cells)."""
  length = x.shape[axis]
  starts = np.arange(cells) * length // cells
  sums = np.add.reduceat(x, starts, axis=axis)
  sizes = np.diff(np.append(starts, length)).astype(np.float64)
  return sums / sizes.reshape(
      [-1 if a == axis % x.ndim else 1 for a in range(x.ndim)]
  )


def resolution_ceiling(
    boxes: list, num_frames: int, size: int, map_shape: tuple[int, int, int]
) -> tuple[int, int]:
  """(hits, scored) of a perfect CAM [t, h, w]: box coverage averaged over each cell."""
  from avself.models import multisensory  # pylint: disable=g-import-not-at-top

  ideal = box_masks(boxes, num_frames, size).astype(np.float64)
  for axis, cells in zip((1, 2, 3), map_shape):
    ideal = _cell_means(ideal, axis, cells)
  heat = np.asarray(
      multisensory.cam_to_frames(
          ideal.astype(np.float32), num_frames, size, size
      )
  )
  return pointing(
      peak_points(heat.reshape(-1, size, size)),
      [b for clip in boxes for b in clip],
  )


def draw_boxes(
    image: np.ndarray, boxes: np.ndarray, color=(0, 255, 0)
) -> np.ndarray:
  """A copy of uint8 [H, W, 3] with 1-pixel box outlines (crop pixels)."""
  out = image.copy()
  h, w = out.shape[:2]
  for x0, y0, x1, y1 in np.asarray(boxes).reshape(-1, 4):
    if x1 <= x0 or y1 <= y0:
      continue
    c0, c1 = int(np.clip(np.floor(x0), 0, w - 1)), int(
        np.clip(np.ceil(x1) - 1, 0, w - 1)
    )
    r0, r1 = int(np.clip(np.floor(y0), 0, h - 1)), int(
        np.clip(np.ceil(y1) - 1, 0, h - 1)
    )
    out[r0, c0 : c1 + 1] = out[r1, c0 : c1 + 1] = color
    out[r0 : r1 + 1, c0] = out[r0 : r1 + 1, c1] = color
  return out


def world_dir(config, eval_config) -> str:
  """The synthetic world beside the records (or eval_config.world_dir)."""
  explicit = eval_config.get("world_dir")
  if explicit:
    return explicit
  return os.path.join(
      os.path.dirname(os.path.abspath(config.data.path)), "world"
  )


def read_ground_truth(folder: str, split: str) -> list[dict]:
  """ground_truth.jsonl rows of `split`, in clip order."""
  rows = ground_truth.read_clips(
      folder,
      "the localization evaluator needs a synthetic world's ground truth (set "
      "evals.<name>.world_dir, or drop the evaluator for real data)",
  )
  return [r for r in rows if r.get("split") == split]


def clip_boxes(
    truth: dict, frame_index: np.ndarray, spec, resized_hw, crop
) -> list:
  """Sounding objects' boxes in crop pixels for decoded frames `frame_index` [F]: F arrays [M, 4]."""
  world_frames = np.clip(
      np.round(frame_index * truth["fps"] / spec.fps).astype(int),
      0,
      truth["num_frames"] - 1,
  )
  sounding = [
      np.asarray(o["boxes"], np.float64)
      for o in truth["objects"]
      if o["sounding"]
  ]
  if not sounding:
    return [np.zeros((0, 4))] * len(frame_index)
  boxes = np.stack(sounding, axis=1)[world_frames]  # [F, M, 4]
  return list(
      crop_boxes(boxes, truth["size"], resized_hw, crop, spec.image_size)
  )


def load_world_videos(
    folder: str, rows: list, spec, max_seconds=None
) -> list[dict]:
  """The world's videos `rows` decoded for the net, with the sounding boxes of every frame.

  Returns one dict per video: frames uint8 [F, S, S, 3], audio [n, C] and
  boxes, F arrays [M, 4] in crop pixels.
  """
  videos = []
  for truth in rows:
    frames, audio, media, crop = clip_input.decode(
        os.path.join(folder, truth["file"]), spec, max_seconds
    )
    resized_hw = np.asarray(media.frames).shape[1:3]
    boxes = clip_boxes(truth, np.arange(len(frames)), spec, resized_hw, crop)
    videos.append(
        {
            "frames": frames,
            "audio": audio,
            "boxes": boxes,
            "file": truth["file"],
        }
    )
  if not videos:
    raise ValueError(f"no videos to localise in {folder}")
  return videos


class Evaluator:
  """Pointing accuracy of the sync net's CAM vs the centre baseline, and overlays.

  Each video's heat comes from `video_cam.video_heatmap`: sliding clips every
  `hop` frames, their maps placed on the frames they stand for and averaged.
  All frames up to the last whole clip are scored.

  Attributes:
    num_videos: videos of the world's eval split to use (first in clip order).
    hop: frames between sliding clips (1: every frame at every map step).
    flip: average each video's maps with its mirror image's (video_heatmap).
    max_seconds: decode only the first seconds of each video (None: all).
    num_images: videos shown in TensorBoard as a strip of frames with boxes.
    world_dir: the synthetic world folder (default: beside the records).
  """

  def __init__(self, config, eval_config, *, task, model, mesh):
    del task
    self.config, self.model, self.mesh = config, model, mesh
    self.split = eval_config.get("split") or config.data.eval_split
    self.num_videos = int(eval_config.get("num_videos", 24))
    self.hop = int(eval_config.get("hop", 1))
    self.flip = bool(eval_config.get("flip", False))
    self.max_seconds = eval_config.get("max_seconds", None)
    self.num_images = int(eval_config.get("num_images", 4))
    self.folder = world_dir(config, eval_config)
    self._videos = None  # decoded once, on the first run
    self._spec = None
    self._ceiling_hits = (
        None  # with them: it depends only on the videos and the map size
    )

  def run(self, state):
    """Yields pointing_accuracy, centre_baseline, resolution_ceiling, num_frames, cam_overlay."""
    if self._videos is None:
      self._spec = clip_input.state_clip_spec(self.config, state)
      rows = read_ground_truth(self.folder, self.split)[: self.num_videos]
      self._videos = load_world_videos(
          self.folder, rows, self._spec, self.max_seconds
      )
      self._ceiling_hits = self._ceiling(self._map_shape(state))
    hits = base_hits = scored = 0
    heats = []
    for video in self._videos:
      heat, _ = video_cam.video_heatmap(
          self.model,
          state,
          video["frames"],
          video["audio"],
          self._spec,
          self.mesh,
          hop=self.hop,
          flip=self.flip,
      )
      f, h, w = heat.shape
      boxes = video["boxes"][:f]
      clip_hits, clip_scored = pointing(peak_points(heat), boxes)
      hits, scored = hits + clip_hits, scored + clip_scored
      base_hits += pointing(centre_points(f, h, w), boxes)[0]
      heats.append(heat)
    yield "pointing_accuracy", hits / max(scored, 1)
    yield "centre_baseline", base_hits / max(scored, 1)
    yield "resolution_ceiling", self._ceiling_hits / max(scored, 1)
    yield "num_frames", float(scored)
    if self.num_images:
      yield "cam_overlay", self._strips(heats)

  def _ceiling(self, map_shape) -> int:
    """Hits of a perfect map with the net's cells in space and one step per frame.

    The sliding clips give every frame its own map (`video_cam.video_heatmap`),
    so only the map's spatial size limits it.
    """
    total = 0
    for video in self._videos:
      frames = video_cam.covered_frames(
          len(video["frames"]), self._spec.num_frames, self.hop
      )
      total += resolution_ceiling(
          [video["boxes"][:frames]],
          frames,
          video["frames"].shape[1],
          (frames, *map_shape[1:]),
      )[0]
    return total

  def _map_shape(self, state) -> tuple[int, int, int]:
    """(t, h, w) of the net's last conv map (the CAM) for one clip."""
    import jax  # pylint: disable=g-import-not-at-top

    spec = self._spec
    size = self._videos[0]["frames"].shape[1]
    video = jax.ShapeDtypeStruct(
        (1, spec.num_frames, size, size, 3), np.float32
    )
    waveform = jax.ShapeDtypeStruct(
        (1, spec.num_samples, spec.channels), np.float32
    )
    out = jax.eval_shape(
        lambda v, a: self.model.apply(
            {"params": state.params, **state.model_state}, v, a, train=False
        ),
        video,
        waveform,
    )
    return tuple(out["features"].shape[1:4])

  def _strips(self, heats) -> np.ndarray:
    """[num_images, 2S, 8 * 2S, 3] uint8: 8 frames per video, heat overlaid, boxes in green."""
    strips = []
    for video, heat in list(zip(self._videos, heats))[: self.num_images]:
      picks = (
          np.linspace(0, len(heat) - 1, min(8, len(heat))).round().astype(int)
      )
      shown = pictures.hot_overlay(video["frames"][picks], heat[picks])
      shown = [
          draw_boxes(img, video["boxes"][i]) for img, i in zip(shown, picks)
      ]
      strips.append(pictures.upscale(np.concatenate(shown, axis=1), 2))
    return np.stack(strips)
