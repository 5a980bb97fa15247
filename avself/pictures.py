"""Pictures for evaluation: thumbnails, retrieval grids, heatmap overlays, PNGs.

Everything is numpy uint8 [H, W, 3]: the same arrays go to PNG files and to
TensorBoard (the train loop writes 3-D/4-D evaluator outputs as images).
No matplotlib: a five-stop colour ramp close to 'inferno' is enough here.
"""

import os

import numpy as np
from PIL import Image

# (position, RGB) stops of an inferno-like ramp: dark purple -> red -> yellow.
_RAMP = np.array(
    [
        [0.00, 0, 0, 4],
        [0.25, 87, 16, 110],
        [0.50, 188, 55, 84],
        [0.75, 249, 142, 9],
        [1.00, 252, 255, 164],
    ],
    np.float64,
)
RELEVANT = (40, 200, 60)  # border of a same-class result
IRRELEVANT = (220, 40, 40)
QUERY = (255, 255, 255)
BACKGROUND = (24, 24, 24)


def colormap(values: np.ndarray) -> np.ndarray:
  """Values in [0, 1] (any shape) -> uint8 RGB [..., 3] on the inferno-like ramp."""
  v = np.clip(np.nan_to_num(np.asarray(values, np.float64)), 0.0, 1.0)
  rgb = [np.interp(v, _RAMP[:, 0], _RAMP[:, c]) for c in (1, 2, 3)]
  return np.round(np.stack(rgb, -1)).astype(np.uint8)


def hot(heat: np.ndarray) -> np.ndarray:
  """Heat in [0, 1] [...] -> RGB uint8 [..., 3], black-red-yellow-white ('hot'; CAM movies)."""
  h = np.clip(np.asarray(heat, np.float32), 0.0, 1.0)[..., None]
  rgb = np.clip(
      np.concatenate([3 * h, 3 * h - 1, 3 * h - 2], axis=-1), 0.0, 1.0
  )
  return np.round(rgb * 255).astype(np.uint8)


def hot_overlay(
    frames: np.ndarray, heat: np.ndarray, strength: float = 0.7
) -> np.ndarray:
  """Frames uint8 [..., H, W, 3] with heat [..., H, W] in [0, 1] blended in where it is high.

  The blend weight follows the heat, so cold regions keep the frame itself
  (unlike `heatmap_overlay`, which tints the whole frame).
  """
  alpha = strength * np.clip(heat, 0.0, 1.0)[..., None]
  out = (1 - alpha) * frames.astype(np.float32) + alpha * hot(heat).astype(
      np.float32
  )
  return np.round(out).astype(np.uint8)


def upscale(images: np.ndarray, factor: int) -> np.ndarray:
  """Nearest-neighbour upscaling of [..., H, W, C] by an integer factor."""
  if factor <= 1:
    return images
  return np.repeat(np.repeat(images, factor, axis=-3), factor, axis=-2)


def normalize(values: np.ndarray) -> np.ndarray:
  """Min-max scaling to [0, 1] (a constant array maps to 0)."""
  v = np.asarray(values, np.float64)
  span = v.max() - v.min() if v.size else 0.0
  return (v - v.min()) / span if span > 0 else np.zeros_like(v)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
  """Bilinear resize of uint8 [H, W, 3] (PIL)."""
  return np.asarray(
      Image.fromarray(image).resize((width, height), Image.BILINEAR)
  )


def image_thumbnail(image: np.ndarray, size: int) -> np.ndarray:
  """A model input frame (float in [-1, 1], [H, W, 3]) -> uint8 [size, size, 3]."""
  pixels = np.round((np.asarray(image, np.float64) + 1.0) * 127.5)
  return resize(np.clip(pixels, 0, 255).astype(np.uint8), size, size)


def spectrogram_thumbnail(spectrogram: np.ndarray, size: int) -> np.ndarray:
  """A log-spectrogram [F, T] (frequency first) -> coloured uint8 [size, size, 3], low pitch at the bottom."""
  spec = np.asarray(spectrogram, np.float64)
  spec = spec[..., 0] if spec.ndim == 3 else spec
  return resize(colormap(normalize(spec[::-1])), size, size)


def framed(tile: np.ndarray, colour, border: int) -> np.ndarray:
  """`tile` inside a `border`-pixel frame of `colour`."""
  h, w, _ = tile.shape
  out = np.empty((h + 2 * border, w + 2 * border, 3), np.uint8)
  out[:] = colour
  out[border : border + h, border : border + w] = tile
  return out


def retrieval_grid(rows: list, border: int = 2, gap: int = 6) -> np.ndarray:
  """One row per query: the query (white frame), a gap, then its ranked results.

  rows: [(query_tile, [result_tile, ...], [relevant, ...])], tiles uint8 [t, t, 3]
  all of one size; a relevant result gets a green frame, another a red one.
  Returns uint8 [R * (t + 2 border), (K + 1) * (t + 2 border) + gap, 3].
  """
  if not rows:
    raise ValueError("retrieval_grid needs at least one row")
  t = rows[0][0].shape[0]
  cell = t + 2 * border
  columns = max(len(results) for _, results, _ in rows)
  grid = np.empty((len(rows) * cell, (columns + 1) * cell + gap, 3), np.uint8)
  grid[:] = BACKGROUND
  for r, (query, results, relevant) in enumerate(rows):
    y = r * cell
    grid[y : y + cell, :cell] = framed(query, QUERY, border)
    for c, (tile, hit) in enumerate(zip(results, relevant)):
      x = (c + 1) * cell + gap
      grid[y : y + cell, x : x + cell] = framed(
          tile, RELEVANT if hit else IRRELEVANT, border
      )
  return grid


def heatmap_overlay(
    image: np.ndarray, heat: np.ndarray, alpha: float = 0.5
) -> np.ndarray:
  """uint8 frame [H, W, 3] blended with `heat` [h, w] (min-max scaled, resized to H x W)."""
  h, w, _ = image.shape
  coloured = resize(colormap(normalize(heat)), h, w)
  blend = (1.0 - alpha) * image.astype(np.float64) + alpha * coloured.astype(
      np.float64
  )
  return np.round(blend).astype(np.uint8)


def draw_box(image: np.ndarray, box, colour, thickness: int = 1) -> np.ndarray:
  """A copy of `image` with the outline of box [x0, y0, x1, y1] (continuous pixels)."""
  out = image.copy()
  h, w, _ = out.shape
  x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
  x1, y1 = int(np.ceil(box[2])) - 1, int(np.ceil(box[3])) - 1
  x0, x1 = max(x0, 0), min(x1, w - 1)
  y0, y1 = max(y0, 0), min(y1, h - 1)
  if x0 > x1 or y0 > y1:
    return out  # Entirely outside the frame.
  for k in range(thickness):
    out[min(y0 + k, y1), x0 : x1 + 1] = colour
    out[max(y1 - k, y0), x0 : x1 + 1] = colour
    out[y0 : y1 + 1, min(x0 + k, x1)] = colour
    out[y0 : y1 + 1, max(x1 - k, x0)] = colour
  return out


def draw_marker(
    image: np.ndarray, y: float, x: float, colour, radius: int = 2
) -> np.ndarray:
  """A copy of `image` with a small cross centred on continuous point (x, y)."""
  out = image.copy()
  h, w, _ = out.shape
  cy, cx = int(np.clip(np.floor(y), 0, h - 1)), int(
      np.clip(np.floor(x), 0, w - 1)
  )
  out[cy, max(cx - radius, 0) : cx + radius + 1] = colour
  out[max(cy - radius, 0) : cy + radius + 1, cx] = colour
  return out


def tile_row(images: list, gap: int = 2) -> np.ndarray:
  """Equal-size uint8 images side by side with `gap` background pixels between."""
  h, w, _ = images[0].shape
  out = np.empty((h, len(images) * (w + gap) - gap, 3), np.uint8)
  out[:] = BACKGROUND
  for i, image in enumerate(images):
    out[:, i * (w + gap) : i * (w + gap) + w] = image
  return out


def save_png(image: np.ndarray, path: str) -> str:
  """Writes uint8 [H, W, 3] to `path` (folders made, atomic rename); returns the path."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp.png"
  Image.fromarray(np.asarray(image, np.uint8)).save(tmp)
  os.replace(tmp, path)
  return path
