"""The scene: who is in the clip, where they go, when they bounce."""

import math

import numpy as np

from avself.data.synthetic import options as options_lib

_VOICE_STEP = 0.2  # s between a voice's levels (syllables of ~5 Hz)


def _bounce(lo, hi, p0, v, times):
  """Position at `times` of a point moving at v in [lo, hi], reflected."""
  span = hi - lo
  u = np.mod(p0 - lo + v * times, 2 * span)
  return lo + np.where(u <= span, u, 2 * span - u)


def _bounce_times(lo, hi, p0, v, duration):
  """Times in (0, duration) at which the point of `_bounce` hits a wall."""
  if v == 0:
    return np.zeros(0)
  span = hi - lo
  u0, u1 = p0 - lo, p0 - lo + v * duration
  walls = (
      np.arange(
          math.floor(min(u0, u1) / span), math.ceil(max(u0, u1) / span) + 1
      )
      * span
  )
  times = (walls - u0) / v
  return np.sort(times[(times > 1e-9) & (times < duration)])


def _merge_close(times, min_gap):
  """Drops events within min_gap of the one before (corner hits)."""
  kept = []
  for t in times:
    if not kept or t - kept[-1] >= min_gap:
      kept.append(float(t))
  return kept


def sample_scene(rng, options, index):
  """Classes, motion, events and loudness of the clip's sources."""
  classes = options_lib.class_table(options.num_classes, options.class_cue)
  size, duration = options.size, options.duration
  num_objects = int(
      rng.integers(1, min(options.max_objects, options.num_classes) + 1)
  )
  main = options_lib.label_index(index, options.num_classes)
  others = rng.permutation([k for k in range(options.num_classes) if k != main])
  objects = []
  for slot, k in enumerate([main] + others[: num_objects - 1].tolist()):
    cls = classes[k]
    radius = rng.uniform(0.09, 0.14) * size
    left, right, top, bottom = (
        e * radius * (1 + options_lib.FLASH_GROW)
        for e in options_lib.EXTENTS[cls.shape]
    )
    # Centre limits keep even a flashing object inside the frame.
    x_lim, y_lim = (left, size - right), (top, size - bottom)
    speed = rng.uniform(*cls.speed) * size  # px / s
    angle = rng.uniform(0, 2 * np.pi)
    vx, vy = speed * np.cos(angle), speed * np.sin(angle)
    x0, y0 = rng.uniform(*x_lim), rng.uniform(*y_lim)
    events = np.concatenate(
        [
            _bounce_times(*x_lim, x0, vx, duration),
            _bounce_times(*y_lim, y0, vy, duration),
        ]
    )
    objects.append(
        dict(
            cls=cls,
            radius=radius,
            x_lim=x_lim,
            y_lim=y_lim,
            start=(x0, y0),
            velocity=(vx, vy),
            events=_merge_close(np.sort(events), 1.0 / options.fps),
            sounding=bool(slot == 0 or rng.random() >= options.silent_prob),
            gain=rng.uniform(0.6, 1.0),
            detune=rng.uniform(-0.015, 0.015),
        )
    )
  offscreen = None
  if rng.random() < options.offscreen_prob:
    hidden = [
        k
        for k in range(options.num_classes)
        if k not in {o["cls"].index for o in objects}
    ]
    k = int(rng.choice(hidden or range(options.num_classes)))
    count = max(1, int(rng.poisson(0.7 * duration)))
    events = np.sort(rng.uniform(0.05, duration - 0.05, count))
    offscreen = dict(
        cls=classes[k],
        events=_merge_close(events, 0.15),
        gain=rng.uniform(0.5, 0.9),
        detune=rng.uniform(-0.015, 0.015),
        pan=rng.uniform(0, 1),
    )
  return objects, offscreen


def transpose(rng, options, objects, offscreen):
  """Sets each source's transposition in octaves (`pitch_spread`), in place."""
  sources = objects + ([offscreen] if offscreen is not None else [])
  ceiling = 0.45 * options.sample_rate  # as _class_wave's harmonics
  for spec in sources:
    spec["octaves"] = 0.0
    if options.pitch_spread > 0:
      octaves = rng.uniform(-0.5, 0.5) * options.pitch_spread
      top = math.log2(ceiling / fundamental(spec))  # never above Nyquist:
      spec["octaves"] = min(octaves, top)  # it would alias


def centres(obj, times):
  """Object centre at `times`: ([N] x, [N] y) in pixels."""
  x = _bounce(*obj["x_lim"], obj["start"][0], obj["velocity"][0], times)
  y = _bounce(*obj["y_lim"], obj["start"][1], obj["velocity"][1], times)
  return x, y


def draw_voices(rng, options, objects):
  """Sets each object's voice levels (`voice`; None when off or mute), in place."""
  count = int(math.ceil(options.duration / _VOICE_STEP)) + 1
  for obj in objects:
    obj["voice"] = None
    if options.voice > 0 and obj["sounding"]:
      obj["voice"] = (rng.uniform(0, 1, count) ** 2).astype(np.float32)


def voice(obj, times):
  """The object's voice envelope v(t) in [0, 1] at `times` (zeros if none)."""
  levels = obj.get("voice")
  if levels is None:
    return np.zeros(len(times), np.float32)
  knots = np.arange(len(levels)) * _VOICE_STEP
  return np.interp(times, knots, levels).astype(np.float32)


def flash(events, times, fps):
  """Flash strength in [0, 1] at `times`: 1 at a bounce, gone 1.5 frames on."""
  if not events:
    return np.zeros_like(times)
  gap = np.abs(times[:, None] - np.asarray(events)[None, :]).min(axis=1)
  return np.clip(1 - gap * fps / 1.5, 0, 1)


def fundamental(spec):
  """A source's pitch: its class's, detuned and transposed, below Nyquist."""
  return (
      spec["cls"].fundamental_hz * (1 + spec["detune"]) * 2.0 ** spec["octaves"]
  )
