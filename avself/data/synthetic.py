r"""A synthetic audio-visual world with ground truth, written as real mp4 files.

K object classes, each with its own look (colour + shape) and its own sound
(fundamental + timbre). One to three objects move and bounce off the walls of
each clip; every bounce is a visible flash AND a percussive burst of the
object's sound, and each sounding object also hums its class sound quietly all
the time, so any 1 s of audio names the visible classes (L3/AVE-Net
correspondence) while the loudness peaks mark the bounces (Multisensory sync).
Some clips add an off-screen source, heard but never seen (separation). Every
task in avself can be tested on it with ground truth and no downloads.

Options make it harder where a task needs it (all off by default, and the
default world is unchanged by them): `pitch_spread` moves each source's pitch
by up to +-pitch_spread / 2 octaves, so that a class is told by its timbre and
pitch region rather than one pitch; `background_noise` adds off-screen noise
whose level and colour wander within the clip; `hum_level` sets the hum under the bursts;
`silent_prob` mutes visible objects other than the main one; `class_cue='motion'`
gives every class one look and its own speed instead (classes told apart by how
fast they move and bounce, as actions are: the action-recognition world);
`flash=0` hides the bounce flash, so a bounce is seen only as a turn;
`voice` makes the sounding objects speak: their loudness follows a
syllable-like envelope and their look follows it too, as lips follow a voice,
so that every frame (not only a bounce) ties the sound to its object.

Run:
  python -m avself.data.synthetic --output=/tmp/synth --num_videos=200 --seed=0

Layout of the output folder (NAME = clip_00012, zero-padded to 5 digits):
  videos/NAME.mp4      H.264 (yuv420p) + AAC, size x size, fps, sample_rate
  stems/NAME.npz       float32 [S] (mono) or [S, C]: on_screen, off_screen,
                       object_0, object_1, ...; on_screen + off_screen == the
                       audio given to the AAC encoder (exact, before coding);
                       off_screen holds the off-screen source and any noise
  labels.csv           file,label,split (file relative to the folder)
  ground_truth.jsonl   one JSON object per clip, in clip order:
      file, stems, index, label, label_index, split, seed, fps, sample_rate,
      channels, num_frames, num_samples, duration, size, gain (the mix's
      normalisation, already applied to every stem), box_format,
      objects: [{class_index, class_name, shape, color, timbre,
                 fundamental_hz, sounding, stem (key in the npz),
                 event_times (bounces, s), boxes ([T][4], one per frame)}],
      offscreen: {class_index, class_name, timbre, fundamental_hz,
                  event_times} or null
  summary.json         written last; marks the folder complete for its options

Boxes are [x0, y0, x1, y1] in pixels of the frame, continuous coordinates:
pixel column j covers x in [j, j + 1]. Times are seconds from the clip start.
"""

import argparse
import csv
import dataclasses
import json
import math
import multiprocessing
import os
import sys
import time

import numpy as np

from avself.data import media

# Bump when rendering changes, so that cached folders are regenerated.
VERSION = 1

SHAPES = ("disc", "square", "triangle", "ring", "cross")
# Half extents (left, right, top, bottom) of each shape in units of its radius.
_EXTENTS = {
    "disc": (1.0, 1.0, 1.0, 1.0),
    "square": (0.8, 0.8, 0.8, 0.8),
    "triangle": (0.866, 0.866, 1.0, 0.5),
    "ring": (1.0, 1.0, 1.0, 1.0),
    "cross": (0.95, 0.95, 0.95, 0.95),
}
TIMBRES = ("harmonic", "tremolo", "noise_band", "odd_harmonic", "vibrato")
_HUE_NAMES = (
    "red",
    "orange",
    "yellow",
    "lime",
    "green",
    "spring",
    "cyan",
    "azure",
    "blue",
    "violet",
    "magenta",
    "rose",
)  # every 30 deg

_LOWEST_HZ, _HIGHEST_HZ = 200.0, 4000.0
CLASS_CUES = ("look", "motion")
# class_cue='motion': the one look (shape, hue) and the speeds of classes 0 and
# K-1 (frame sizes / s, log-spaced between), each object within +-8% of its own.
_MOTION_LOOK = ("disc", 7 / 12)
_MOTION_SPEEDS = (0.12, 0.96)
_MOTION_JITTER = 0.08
_FLASH_GROW = 0.2  # a flashing object is 20% larger ...
_FLASH_WHITEN = 0.6  # ... and 60% of the way to white.
_VOICE_STEP = 0.2  # s between a voice's levels (syllables of ~5 Hz)
_MIX_PEAK = 0.8  # the mix is scaled to this peak, leaving AAC headroom
_TABLE = 4096  # wavetable length, a power of 2


@dataclasses.dataclass(frozen=True)
class WorldOptions:
  """What a clip looks and sounds like; the same options + seed, same clips."""

  num_classes: int = 10
  size: int = 128
  fps: int = 15
  duration: float = 6.0
  sample_rate: int = 48000
  channels: int = 1
  offscreen_prob: float = 0.3
  test_fraction: float = 0.2
  max_objects: int = 3
  silent_prob: float = 0.0  # chance that a non-main visible object is mute
  # Loudness of the continuous hum relative to a bounce burst's peak.
  hum_level: float = 0.2
  # Each source's pitch is its class's moved by up to +-pitch_spread / 2
  # octaves (uniform in log frequency): the class is then told by timbre and
  # pitch region, not by one pitch, as real sound classes vary in pitch.
  pitch_spread: float = 0.0
  # Off-screen background noise, part of the off_screen stem: a dark and a
  # bright noise whose loudness (RMS, relative to a burst's peak, uniform in
  # [0, background_noise]) is drawn afresh every 0.5 s. 0 = none.
  background_noise: float = 0.0
  # What tells the classes apart on screen. 'look': each class its colour and
  # shape, every object a random speed (0.25-0.6 frame sizes per second).
  # 'motion': one colour and shape for all; class k moves at its own speed,
  # log-spaced from 0.12 to 0.96 frame sizes per second (+-8% per object), so
  # that only motion and bounce rate name the class. Sounds stay per class.
  class_cue: str = "look"
  # Strength of the visible flash at a bounce (growth and whitening), 1 = full.
  # 0: a bounce is seen only as the turn of the object's path, so telling it
  # takes motion, as a hit does in real video.
  flash: float = 1.0
  # The sounding objects speak: each has an envelope v(t) in [0, 1], a new
  # level every _VOICE_STEP s (linear between, squared uniform draws: quiet
  # stretches and loud syllables). Its sound gets voice * v(t) on top of the
  # hum (relative to a burst's peak) and its look follows v(t) as it follows a
  # bounce flash (growth and whitening), so any frame, not only a bounce,
  # tells whether the audio is in sync and which object makes it. 0 = off.
  voice: float = 0.0

  @property
  def num_frames(self):
    return int(round(self.duration * self.fps))

  @property
  def num_samples(self):
    return int(round(self.duration * self.sample_rate))


@dataclasses.dataclass(frozen=True)
class ObjectClass:
  """One class: its look and its sound."""

  index: int
  name: str
  shape: str
  color: tuple  # (r, g, b) uint8 values
  fundamental_hz: float
  timbre: str
  speed: tuple = (0.25, 0.6)  # range of an object's speed, frame sizes / s


def as_options(options=None, **overrides):
  """WorldOptions from None, a dict or WorldOptions, with overrides."""
  if options is None:
    options = WorldOptions()
  elif isinstance(options, dict):
    options = WorldOptions(**options)
  options = dataclasses.replace(options, **overrides)
  if options.size % 2 or options.size < 16:
    raise ValueError(f"size must be even and >= 16 (yuv420p): {options.size}")
  if options.channels not in (1, 2):
    raise ValueError(f"channels must be 1 or 2: {options.channels}")
  for name in ("pitch_spread", "background_noise", "hum_level", "voice"):
    if getattr(options, name) < 0:
      raise ValueError(f"{name} must be >= 0: {getattr(options, name)}")
  if options.class_cue not in CLASS_CUES:
    raise ValueError(
        f"class_cue must be one of {CLASS_CUES}: " f"{options.class_cue!r}"
    )
  for name in ("silent_prob", "offscreen_prob", "flash"):
    if not 0 <= getattr(options, name) <= 1:
      raise ValueError(f"{name} must be in [0, 1]: {getattr(options, name)}")
  return options


def class_table(num_classes, class_cue="look"):
  """The K classes: hues spread round the wheel, 5 shapes, log-spaced pitch.

  With class_cue='motion' every class has the same look (an azure disc) and
  its own speed range, log-spaced (WorldOptions.class_cue); the names say so.
  """
  classes, used = [], set()
  for k in range(num_classes):
    hue = k / num_classes
    shape = SHAPES[k % len(SHAPES)]
    name = f"{_HUE_NAMES[int(round(hue * 12)) % 12]}_{shape}"
    if name in used:
      name = f"{name}_{k}"
    used.add(name)
    frac = k / max(num_classes - 1, 1)
    cls = ObjectClass(
        index=k,
        name=name,
        shape=shape,
        color=_hue_to_rgb(hue),
        fundamental_hz=_LOWEST_HZ * (_HIGHEST_HZ / _LOWEST_HZ) ** frac,
        timbre=TIMBRES[k % len(TIMBRES)],
    )
    if class_cue == "motion":
      lo, hi = _MOTION_SPEEDS
      speed = lo * (hi / lo) ** frac
      cls = dataclasses.replace(
          cls,
          name=f"speed_{k:02d}",
          shape=_MOTION_LOOK[0],
          color=_hue_to_rgb(_MOTION_LOOK[1]),
          speed=(speed * (1 - _MOTION_JITTER), speed * (1 + _MOTION_JITTER)),
      )
    classes.append(cls)
  return classes


def _hue_to_rgb(hue):
  """Fully saturated colour of a hue in [0, 1), as uint8 values."""
  rgb = np.clip(np.abs((hue * 6 + np.array([0.0, 4.0, 2.0])) % 6 - 3) - 1, 0, 1)
  return tuple(int(v) for v in np.round(rgb * 235 + 10))


def label_index(index, num_classes):
  """Class of clip `index`'s main object: round robin, so labels balance."""
  return index % num_classes


def assign_splits(num_videos, seed, num_classes, test_fraction):
  """'train'/'test' per clip: exactly round(fraction * N), spread over classes."""
  n_test = int(round(test_fraction * num_videos))
  if 0 < test_fraction < 1 and num_videos > 1:  # both splits non-empty
    n_test = min(max(n_test, 1), num_videos - 1)
  labels = np.arange(num_videos) % num_classes
  jitter = np.random.default_rng([seed, num_videos, 5]).random(num_videos)
  by_class = np.lexsort((jitter, labels))  # shuffled within each class
  # Every (N / n_test)-th clip in class order: stratified and exact in count.
  picks = np.floor((np.arange(n_test) + 0.5) * num_videos / max(n_test, 1))
  splits = np.array(["train"] * num_videos, dtype=object)
  splits[by_class[picks.astype(int)]] = "test"
  return splits.tolist()


def clip_name(index):
  """File stem of clip `index`: clip_00012."""
  return f"clip_{index:05d}"


# #############################################################################
# The scene: who is in the clip, where they go, when they bounce.
# #############################################################################


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


def _sample_scene(rng, options, index):
  """Classes, motion, events and loudness of the clip's sources."""
  classes = class_table(options.num_classes, options.class_cue)
  size, duration = options.size, options.duration
  num_objects = int(
      rng.integers(1, min(options.max_objects, options.num_classes) + 1)
  )
  main = label_index(index, options.num_classes)
  others = rng.permutation([k for k in range(options.num_classes) if k != main])
  objects = []
  for slot, k in enumerate([main] + others[: num_objects - 1].tolist()):
    cls = classes[k]
    radius = rng.uniform(0.09, 0.14) * size
    left, right, top, bottom = (
        e * radius * (1 + _FLASH_GROW) for e in _EXTENTS[cls.shape]
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


def _transpose(rng, options, objects, offscreen):
  """Sets each source's transposition in octaves (`pitch_spread`), in place."""
  sources = objects + ([offscreen] if offscreen is not None else [])
  ceiling = 0.45 * options.sample_rate  # as _class_wave's harmonics
  for spec in sources:
    spec["octaves"] = 0.0
    if options.pitch_spread > 0:
      octaves = rng.uniform(-0.5, 0.5) * options.pitch_spread
      top = math.log2(ceiling / _fundamental(spec))  # never above Nyquist:
      spec["octaves"] = min(octaves, top)  # it would alias


def _centres(obj, times):
  """Object centre at `times`: ([N] x, [N] y) in pixels."""
  x = _bounce(*obj["x_lim"], obj["start"][0], obj["velocity"][0], times)
  y = _bounce(*obj["y_lim"], obj["start"][1], obj["velocity"][1], times)
  return x, y


def _draw_voices(rng, options, objects):
  """Sets each object's voice levels (`voice`; None when off or mute), in place."""
  count = int(math.ceil(options.duration / _VOICE_STEP)) + 1
  for obj in objects:
    obj["voice"] = None
    if options.voice > 0 and obj["sounding"]:
      obj["voice"] = (rng.uniform(0, 1, count) ** 2).astype(np.float32)


def _voice(obj, times):
  """The object's voice envelope v(t) in [0, 1] at `times` (zeros if none)."""
  levels = obj.get("voice")
  if levels is None:
    return np.zeros(len(times), np.float32)
  knots = np.arange(len(levels)) * _VOICE_STEP
  return np.interp(times, knots, levels).astype(np.float32)


def _flash(events, times, fps):
  """Flash strength in [0, 1] at `times`: 1 at a bounce, gone 1.5 frames on."""
  if not events:
    return np.zeros_like(times)
  gap = np.abs(times[:, None] - np.asarray(events)[None, :]).min(axis=1)
  return np.clip(1 - gap * fps / 1.5, 0, 1)


# #############################################################################
# Pictures.
# #############################################################################


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


def _render_frames(rng, options, objects):
  """Frames [T, H, W, 3] uint8 and per-object boxes [T, 4] (x0, y0, x1, y1)."""
  size, fps = options.size, options.fps
  times = np.arange(options.num_frames) / fps
  frames = _background(rng, options)
  boxes = []
  # The main object (first) is drawn last, so it is never hidden.
  for obj in reversed(objects):
    cls = obj["cls"]
    cx, cy = _centres(obj, times)
    flash = options.flash * _flash(obj["events"], times, fps)
    flash = np.minimum(flash + _voice(obj, times), 1)  # lips follow the voice
    radius = obj["radius"] * (1 + _FLASH_GROW * flash)  # [T]
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
    left, right, top, bottom = _EXTENTS[cls.shape]
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


# #############################################################################
# Sounds.
# #############################################################################


def _periodic(table_fn, f0, num_samples, sample_rate, phase=0.0):
  """table_fn's period played at f0 Hz, offset by phase (cycles): [S]."""
  # A table lookup is ~8x cheaper than np.sin over the whole clip.
  table = table_fn(np.arange(_TABLE) / _TABLE)  # one period, [_TABLE]
  idx = np.arange(num_samples) * (f0 * _TABLE / sample_rate) + phase * _TABLE
  return table[idx.astype(np.int64) & (_TABLE - 1)]


def _class_wave(cls, f0, num_samples, sample_rate, rng):
  """The class's steady sound at fundamental f0: [S] float32, RMS ~0.7."""
  nyquist = 0.45 * sample_rate
  t = np.arange(num_samples) / sample_rate
  if cls.timbre in ("harmonic", "odd_harmonic"):
    ns = range(1, 7) if cls.timbre == "harmonic" else range(1, 9, 2)
    ns = [n for n in ns if n * f0 < nyquist]
    amps = [1 / n**2 if cls.timbre == "harmonic" else 1 / n for n in ns]
    phases = rng.uniform(0, 1, len(ns))

    def period(p):
      return sum(
          a * np.sin(2 * np.pi * (n * p + q))
          for n, a, q in zip(ns, amps, phases)
      )

    wave = _periodic(period, f0, num_samples, sample_rate, rng.uniform())
  elif cls.timbre == "tremolo":  # 7 Hz amplitude modulation, 50% deep
    wave = _periodic(
        lambda p: np.sin(2 * np.pi * p),
        f0,
        num_samples,
        sample_rate,
        rng.uniform(),
    )
    wave = wave * (1 - 0.5 * (0.5 + 0.5 * np.sin(2 * np.pi * 7 * t)))
  elif cls.timbre == "vibrato":  # 5 Hz frequency modulation, +-3%
    mod = 0.03 * f0 / (2 * np.pi * 5) * np.sin(2 * np.pi * 5 * t)
    wave = _periodic(
        lambda p: np.sin(2 * np.pi * p),
        f0,
        num_samples,
        sample_rate,
        mod + rng.uniform(),
    )
  elif cls.timbre == "noise_band":
    # Complex noise, smooth at a rate of 10% of f0, shifted up to f0: a band
    # of noise around f0 without an FFT of the whole clip.
    rate = 0.1 * f0
    knots = int(math.ceil(num_samples / sample_rate * rate)) + 2
    z = rng.normal(size=knots) + 1j * rng.normal(size=knots)
    at = t * rate
    z = np.interp(at, np.arange(knots), z.real) + 1j * np.interp(
        at, np.arange(knots), z.imag
    )
    carrier = _periodic(
        lambda p: np.exp(2j * np.pi * p), f0, num_samples, sample_rate
    )
    wave = (z * carrier).real
  else:
    raise ValueError(cls.timbre)
  wave = wave.astype(np.float32)
  return wave * np.float32(0.7071 / max(np.sqrt(np.mean(wave**2)), 1e-8))


def _envelope(events, num_samples, sample_rate, hum_level):
  """Loudness: a hum plus a 3 ms attack / 80 ms decay burst per event. [S]."""
  env = np.full(num_samples, hum_level, np.float32)
  tail = np.arange(int(0.6 * sample_rate)) / sample_rate
  burst = ((1 - np.exp(-tail / 0.003)) * np.exp(-tail / 0.08)).astype(
      np.float32
  )
  for t in events:
    start = int(round(t * sample_rate))
    n = min(len(burst), num_samples - start)
    env[start : start + n] += burst[:n]
  return env


def _pan(mono, position):
  """Equal-power pan of [S] by position in [0, 1] (scalar or [S]): [S, 2]."""
  angle = np.asarray(position, np.float32) * (np.pi / 2)
  return np.stack([mono * np.cos(angle), mono * np.sin(angle)], axis=-1)


def _fundamental(spec):
  """A source's pitch: its class's, detuned and transposed, below Nyquist."""
  return (
      spec["cls"].fundamental_hz * (1 + spec["detune"]) * 2.0 ** spec["octaves"]
  )


def _background_noise(rng, options):
  """Off-screen noise [S] whose level and colour wander, or None.

  Two noises, one dark (-6 dB/octave) and one bright (+3 dB/octave), each
  with its own loudness drawn afresh every 0.5 s (uniform in [0,
  background_noise] RMS, linearly interpolated), so the noise changes within
  a clip and tells nothing about which clip it is in.
  """
  if options.background_noise <= 0:
    return None
  n, sr = options.num_samples, options.sample_rate
  freqs = np.maximum(np.fft.rfftfreq(n, 1 / sr), 50.0) / 1000.0
  knots = np.arange(int(math.ceil(options.duration / 0.5)) + 1) * 0.5
  times = np.arange(n) / sr
  noise = np.zeros(n, np.float32)
  for tilt_db in (-6.0, 3.0):
    spectrum = rng.normal(size=freqs.size) + 1j * rng.normal(size=freqs.size)
    colored = np.fft.irfft(spectrum * freqs ** (tilt_db / 6.02), n)
    colored /= max(float(np.sqrt(np.mean(colored**2))), 1e-8)
    level = np.interp(
        times, knots, rng.uniform(0, options.background_noise, knots.size)
    )
    noise += (level * colored).astype(np.float32)
  return noise


def _render_audio(rng, options, objects, offscreen, noise=None):
  """Stems at the mix's gain: dict of float32 [S] or [S, C], and that gain."""
  sr, n = options.sample_rate, options.num_samples
  stems = {}

  def source(spec):
    wave = _class_wave(spec["cls"], _fundamental(spec), n, sr, rng)
    envelope = _envelope(spec["events"], n, sr, options.hum_level)
    envelope += np.float32(options.voice) * _voice(spec, np.arange(n) / sr)
    return np.float32(spec["gain"]) * envelope * wave

  for i, obj in enumerate(objects):
    sound = source(obj) if obj["sounding"] else np.zeros(n, np.float32)
    if options.channels == 2:  # pan by where the object is on screen
      cx, _ = _centres(obj, np.arange(0, n, 64) / sr)
      pos = np.interp(np.arange(n), np.arange(0, n, 64), cx / options.size)
      sound = _pan(sound, pos)
    stems[f"object_{i}"] = sound.astype(np.float32)
  shape = (n,) if options.channels == 1 else (n, 2)
  off = np.zeros(shape, np.float32)
  if offscreen is not None:
    off = source(offscreen)
    if options.channels == 2:
      off = _pan(off, offscreen["pan"])
  if noise is not None:  # diffuse: the same in both channels
    off = off + (noise if options.channels == 1 else noise[:, None])
  on = sum(stems[f"object_{i}"] for i in range(len(objects)))
  peak = float(np.abs(on + off).max())
  gain = _MIX_PEAK / peak if peak > 0 else 1.0
  stems = {
      k: (v * np.float32(gain)).astype(np.float32) for k, v in stems.items()
  }
  stems["on_screen"] = sum(stems[f"object_{i}"] for i in range(len(objects)))
  stems["off_screen"] = (off * np.float32(gain)).astype(np.float32)
  return stems, gain


def render_clip(index, seed, options=None):
  """Renders clip `index` of world `seed`; writes nothing.

  Returns (frames uint8 [T, H, W, 3], audio float32 [S] or [S, C],
  ground_truth dict = the clip's ground_truth.jsonl line less `split`,
  stems dict of float32 arrays like audio, with audio == on_screen +
  off_screen). Depends only on (index, seed, options).
  """
  options = as_options(options)
  # A 4th stream for options added later, so that the first three (and so
  # the world at default options) stay as they were.
  scene_seq, video_seq, audio_seq, extra_seq = np.random.SeedSequence(
      [seed, index]
  ).spawn(4)
  objects, offscreen = _sample_scene(
      np.random.default_rng(scene_seq), options, index
  )
  extra_rng = np.random.default_rng(extra_seq)
  _transpose(extra_rng, options, objects, offscreen)
  noise = _background_noise(extra_rng, options)
  _draw_voices(extra_rng, options, objects)
  frames, boxes = _render_frames(
      np.random.default_rng(video_seq), options, objects
  )
  stems, gain = _render_audio(
      np.random.default_rng(audio_seq), options, objects, offscreen, noise
  )
  audio = stems["on_screen"] + stems["off_screen"]
  name = clip_name(index)
  main = objects[0]["cls"]
  truth = dict(
      file=f"videos/{name}.mp4",
      stems=f"stems/{name}.npz",
      index=index,
      label=main.name,
      label_index=main.index,
      seed=seed,
      fps=options.fps,
      sample_rate=options.sample_rate,
      channels=options.channels,
      num_frames=options.num_frames,
      num_samples=options.num_samples,
      duration=options.duration,
      size=options.size,
      gain=round(gain, 6),
      box_format="xyxy_pixels",
      objects=[
          dict(
              class_index=o["cls"].index,
              class_name=o["cls"].name,
              shape=o["cls"].shape,
              color=list(o["cls"].color),
              timbre=o["cls"].timbre,
              fundamental_hz=round(_fundamental(o), 3),
              sounding=o["sounding"],
              stem=f"object_{i}",
              event_times=[round(t, 5) for t in o["events"]],
              boxes=np.round(b, 2).tolist(),
          )
          for i, (o, b) in enumerate(zip(objects, boxes))
      ],
      offscreen=None
      if offscreen is None
      else dict(
          class_index=offscreen["cls"].index,
          class_name=offscreen["cls"].name,
          timbre=offscreen["cls"].timbre,
          fundamental_hz=round(_fundamental(offscreen), 3),
          event_times=[round(t, 5) for t in offscreen["events"]],
      ),
  )
  return frames, audio, truth, stems


# #############################################################################
# Files.
# #############################################################################


def _make_clip(job):
  """Worker: renders and writes one clip; returns its ground-truth line."""
  index, seed, options, output_dir, split, write_stems = job
  frames, audio, truth, stems = render_clip(index, seed, options)
  truth["split"] = split
  media.write_mp4(
      os.path.join(output_dir, truth["file"]),
      frames,
      audio,
      options.fps,
      options.sample_rate,
  )
  if write_stems:
    np.savez(os.path.join(output_dir, truth["stems"]), **stems)
  else:
    truth["stems"] = None
  return truth


# Options added after VERSION 1's folders were written: in the key only when
# set, so that a folder written before them stays valid.
_KEYED_WHEN_SET = ("class_cue", "flash", "voice")


def _cache_key(num_videos, seed, options, write_stems):
  defaults = WorldOptions()
  keyed = {
      k: v
      for k, v in dataclasses.asdict(options).items()
      if k not in _KEYED_WHEN_SET or v != getattr(defaults, k)
  }
  return dict(
      version=VERSION,
      num_videos=num_videos,
      seed=seed,
      write_stems=write_stems,
      options=keyed,
  )


def _is_complete(output_dir, key):
  """Whether output_dir already holds this exact world (summary.json)."""
  try:
    with open(os.path.join(output_dir, "summary.json")) as f:
      summary = json.load(f)
  except (OSError, ValueError):
    return None
  if any(summary.get(k) != v for k, v in key.items()):
    return None
  if not os.path.exists(os.path.join(output_dir, "ground_truth.jsonl")):
    return None
  return summary


def _pool_context():
  # fork is fast but unsafe once JAX / TF have started their threads (the
  # training demo calls `generate` after importing them): spawn then.
  if any(m in sys.modules for m in ("jax", "tensorflow")):
    return multiprocessing.get_context("spawn")
  return multiprocessing.get_context("fork")


def generate(
    output_dir, num_videos, seed, workers=None, write_stems=True, **options
):
  """Writes the world to output_dir (skipped if already there); a summary."""
  options = as_options(**options)
  key = _cache_key(num_videos, seed, options, write_stems)
  summary = _is_complete(output_dir, key)
  if summary is not None:
    return dict(summary, cached=True)
  start = time.time()
  for sub in ("videos", "stems"):
    os.makedirs(os.path.join(output_dir, sub), exist_ok=True)
    for name in os.listdir(os.path.join(output_dir, sub)):  # stale clips
      if name.startswith("clip_"):
        os.remove(os.path.join(output_dir, sub, name))
  for name in ("summary.json",):
    if os.path.exists(os.path.join(output_dir, name)):
      os.remove(os.path.join(output_dir, name))
  splits = assign_splits(
      num_videos, seed, options.num_classes, options.test_fraction
  )
  jobs = [
      (i, seed, options, output_dir, splits[i], write_stems)
      for i in range(num_videos)
  ]
  workers = max(1, min(workers or os.cpu_count() or 1, num_videos))
  if workers == 1:
    truths = [_make_clip(job) for job in jobs]
  else:
    with _pool_context().Pool(workers) as pool:
      truths = list(pool.imap(_make_clip, jobs, chunksize=1))
  _write_tables(output_dir, truths)
  seconds = time.time() - start
  summary = dict(
      key,
      class_names=[
          c.name for c in class_table(options.num_classes, options.class_cue)
      ],
      num_train=splits.count("train"),
      num_test=splits.count("test"),
      num_offscreen=sum(t["offscreen"] is not None for t in truths),
      seconds=round(seconds, 3),
      clips_per_second=round(num_videos / max(seconds, 1e-9), 3),
  )
  # Written last and atomically: its presence means the folder is complete.
  tmp = os.path.join(output_dir, f"summary.json.{os.getpid()}.tmp")
  with open(tmp, "w") as f:
    json.dump(summary, f, indent=1)
  os.replace(tmp, os.path.join(output_dir, "summary.json"))
  return dict(summary, cached=False)


def _write_tables(output_dir, truths):
  """labels.csv (file,label,split) and ground_truth.jsonl, in clip order."""
  with open(os.path.join(output_dir, "labels.csv"), "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["file", "label", "split"])
    for t in truths:
      writer.writerow([t["file"], t["label"], t["split"]])
  with open(os.path.join(output_dir, "ground_truth.jsonl"), "w") as f:
    for t in truths:
      f.write(json.dumps(t) + "\n")


def main(argv=None):
  """Command line: python -m avself.data.synthetic --output=DIR ..."""
  defaults = WorldOptions()
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--output", required=True)
  parser.add_argument("--num_videos", type=int, required=True)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--workers", type=int, default=os.cpu_count())
  parser.add_argument(
      "--no_stems",
      action="store_true",
      help="skip stems/*.npz (~1.2 MB per source per clip)",
  )
  for field in dataclasses.fields(WorldOptions):
    default = getattr(defaults, field.name)
    parser.add_argument(f"--{field.name}", type=type(default), default=default)
  args = parser.parse_args(argv)
  options = {
      f.name: getattr(args, f.name) for f in dataclasses.fields(WorldOptions)
  }
  summary = generate(
      args.output,
      args.num_videos,
      args.seed,
      workers=args.workers,
      write_stems=not args.no_stems,
      **options,
  )
  if summary["cached"]:
    print(
        f"synthetic: {args.output} already holds these {args.num_videos} "
        "clips; skipped."
    )
  else:
    print(
        f"synthetic: wrote {args.num_videos} clips "
        f"({summary['num_train']} train / {summary['num_test']} test, "
        f"{summary['num_offscreen']} with off-screen sound) to "
        f"{args.output} in {summary['seconds']:.1f} s "
        f"({summary['clips_per_second']:.1f} clips/s)"
    )
  return summary


if __name__ == "__main__":
  main()
