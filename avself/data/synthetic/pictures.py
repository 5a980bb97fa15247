"""Pictures: the frames of a clip, with each object's box."""

import math

import numpy as np

from avself.data.synthetic import options as options_lib
from avself.data.synthetic import scene as scene_lib

_FLASH_WHITEN = 0.6  # ... and 60% of the way to white (options.FLASH_GROW).


def _shape_distance(shape, dx, dy, r):
  """Signed distance (px, < 0 inside) from a shape of radius r at the origin."""
  if shape == "disc":
    return np.hypot(dx, dy) - r
  if shape == "square":
    return np.maximum(np.abs(dx), np.abs(dy)) - 0.8 * r
  if shape == "triangle":  # apex up (image y grows down), circumradius r
    slant = np.maximum(0.866 * dx - 0.5 * dy, -0.866 * dx - 0.5 * dy)
    return np.maximum(dy, slant) - 0.5 * r
  if shape == "ring":
    return np.abs(np.hypot(dx, dy) - 0.775 * r) - 0.225 * r
  if shape == "cross":
    ax, ay, arm, half = np.abs(dx), np.abs(dy), 0.95 * r, 0.3 * r
    return np.minimum(
        np.maximum(ax - arm, ay - half), np.maximum(ax - half, ay - arm)
    )
  raise ValueError(shape)


def _background(rng, options):
  """Mildly textured backdrop: [T, H, W, 3] float32, low saturation."""
  size, t = options.size, options.num_frames
  grid = rng.uniform(-18, 18, (5, 5, 1)) + rng.uniform(-4, 4, (5, 5, 3))
  pos = np.linspace(0, 4, size)
  i0 = np.minimum(pos.astype(int), 3)
  w = (pos - i0)[:, None, None]  # bilinear weights, [H, 1, 1]
  rows = grid[i0] * (1 - w) + grid[i0 + 1] * w  # [H, 5, 3]
  w = w.reshape(1, size, 1)
  texture = rows[:, i0] * (1 - w) + rows[:, i0 + 1] * w  # [H, W, 3]
  base = rng.uniform(60, 110) + rng.uniform(-8, 8, 3)
  still = (base + texture + rng.normal(0, 3, (size, size, 1))).astype(
      np.float32
  )
  # Sensor noise that changes every frame, shared by the channels; drawn
  # from a bank of 8 noise frames because normals for every frame cost more
  # than all the rest of the drawing.
  bank = rng.normal(0, 1.5, (8, size, size, 1)).astype(np.float32)
  return still[None] + bank[rng.integers(0, 8, t)]


def render_frames(rng, options, objects):
  """Frames [T, H, W, 3] uint8 and per-object boxes [T, 4] (x0, y0, x1, y1)."""
  size, fps = options.size, options.fps
  times = np.arange(options.num_frames) / fps
  frames = _background(rng, options)
  boxes = []
  # The main object (first) is drawn last, so it is never hidden.
  for obj in reversed(objects):
    cls = obj["cls"]
    cx, cy = scene_lib.centres(obj, times)
    flash = options.flash * scene_lib.flash(obj["events"], times, fps)
    flash = np.minimum(
        flash + scene_lib.voice(obj, times), 1
    )  # lips follow the voice
    radius = obj["radius"] * (1 + options_lib.FLASH_GROW * flash)  # [T]
    color = np.asarray(cls.color, np.float32)
    color = color + (255 - color) * _FLASH_WHITEN * flash[:, None]  # [T, 3]
    # Draw in a patch around the object, not the whole frame: ~10x cheaper.
    patch = min(size, int(math.ceil(2 * radius.max())) + 3)
    px = np.clip(np.floor(cx - patch / 2).astype(int), 0, size - patch)
    py = np.clip(np.floor(cy - patch / 2).astype(int), 0, size - patch)
    offs = np.arange(patch) + 0.5  # pixel centres
    dx = (px[:, None] + offs - cx[:, None])[:, None, :].astype(np.float32)
    dy = (py[:, None] + offs - cy[:, None])[:, :, None].astype(np.float32)
    dist = _shape_distance(
        cls.shape,
        dx,
        dy,  # [T, P, P], antialiased:
        radius[:, None, None].astype(np.float32),
    )
    alpha = np.clip(0.5 - dist, 0, 1)[..., None]  # [T, P, P, 1]
    paint = color[:, None, None, :].astype(np.float32) * alpha  # [T, P, P, 3]
    keep = 1 - alpha
    # Slices per frame beat one fancy-indexed gather/scatter by 2x.
    for t in range(len(times)):
      view = frames[t, py[t] : py[t] + patch, px[t] : px[t] + patch]
      view *= keep[t]
      view += paint[t]
    left, right, top, bottom = options_lib.EXTENTS[cls.shape]
    box = np.stack(
        [
            cx - left * radius,
            cy - top * radius,
            cx + right * radius,
            cy + bottom * radius,
        ],
        axis=1,
    )
    boxes.append(np.clip(box, 0, size))
  frames += 0.5  # so the cast rounds instead of flooring
  np.clip(frames, 0, 255, out=frames)
  return frames.astype(np.uint8), boxes[::-1]
