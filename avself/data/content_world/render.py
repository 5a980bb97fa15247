"""One clip of the content world: frames and sound of a class, drawn by seed.

A class pairs a texture (stripes, checks, rings, ...) and a colour with a
kind of sound. Nothing in the sound follows the picture in time: a window's
sound tells its class only by what it sounds like, and a silent window tells
nothing.
"""

import dataclasses

import numpy as np

# (name, texture, hue, sound): 10 classes. Hues are spread so that colour
# alone is a strong cue only together with the texture (neighbours are close).
CLASSES = (
    ("stripes_hum", "stripes", 0.00, "hum"),
    ("checks_hiss", "checks", 0.10, "hiss"),
    ("rings_clicks", "rings", 0.20, "clicks"),
    ("spokes_chirp_up", "spokes", 0.30, "chirp_up"),
    ("dots_chirp_down", "dots", 0.40, "chirp_down"),
    ("zigzag_buzz", "zigzag", 0.50, "buzz"),
    ("grid_bell", "grid", 0.60, "bell"),
    ("spiral_warble", "spiral", 0.70, "warble"),
    ("blotches_rumble", "blotches", 0.80, "rumble"),
    ("outline_trill", "outline", 0.90, "trill"),
)
DISTRACTORS = ("babble", "whistle", "rain", "motor")


@dataclasses.dataclass(frozen=True)
class Options:
  """What every clip shares (the defaults: 4 s, 128x128 at 25 fps, 48 kHz)."""

  seconds: float = 4.0
  size: int = 128
  fps: float = 25.0
  sample_rate: int = 48000
  silence_fraction: float = 0.35  # of each clip, on average, in gaps
  offscreen_prob: float = 0.5  # clips with an unrelated off-screen sound
  offscreen_level: float = 0.8  # its loudest level (drawn from 0.3 up to it)
  hue_spread: float = 0.0  # 0: each class has its hue; 1: any hue, any class


def label_of(index: int) -> int:
  return index % len(CLASSES)


def split_of(index: int) -> str:
  """Every fifth clip of each class is 'test' (20 %), the rest 'train'."""
  return "test" if (index // len(CLASSES)) % 5 == 4 else "train"


def clip_name(index: int) -> str:
  return f"clip_{index:05d}.mp4"


################################################################################
# Pictures.
################################################################################


def _hsv(h, s, v):
  """RGB in [0, 1] of hue h, saturation s, value v (scalars)."""
  k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
  return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _texture(kind, u, v, period, blotch):
  """Texture in [0, 1] at object coordinates u, v (pixels, rotated)."""
  w = 2 * np.pi / period
  r, theta = np.hypot(u, v), np.arctan2(v, u)
  if kind == "stripes":
    t = np.sin(w * u)
  elif kind == "checks":
    t = np.sign(np.sin(w * u) * np.sin(w * v))
  elif kind == "rings":
    t = np.sin(w * r)
  elif kind == "spokes":
    t = np.sin(8 * theta)
  elif kind == "dots":
    t = (np.cos(w * u) + np.cos(w * v) > 1.0) * 2.0 - 1.0
  elif kind == "zigzag":
    t = np.sin(w * (u + 0.6 * period * np.abs(np.sin(w * v / 2))))
  elif kind == "grid":
    t = (np.maximum(np.abs(np.cos(w * u)), np.abs(np.cos(w * v))) > 0.9) * 2.0
    t = t - 1.0
  elif kind == "spiral":
    t = np.sin(4 * theta + w * r)
  elif kind == "blotches":
    t = blotch(u, v)
  elif kind == "outline":
    t = np.full_like(u, -1.0)
  else:
    raise ValueError(kind)
  return 0.5 + 0.5 * t


def _smooth_noise(rng, shape, cells):
  """Smooth random field in [-1, 1]: a coarse grid, bilinearly upsampled."""
  grid = rng.uniform(-1, 1, (cells + 1, cells + 1))
  y = np.linspace(0, cells, shape[0])
  x = np.linspace(0, cells, shape[1])
  y0 = np.minimum(y.astype(int), cells - 1)
  x0 = np.minimum(x.astype(int), cells - 1)
  fy, fx = (y - y0)[:, None], (x - x0)[None, :]
  g = grid
  return (
      g[y0][:, x0] * (1 - fy) * (1 - fx)
      + g[y0 + 1][:, x0] * fy * (1 - fx)
      + g[y0][:, x0 + 1] * (1 - fy) * fx
      + g[y0 + 1][:, x0 + 1] * fy * fx
  )


def _path(rng, num_frames, size, radius, scale):
  """Smooth wandering centres [T, 2] that stay in view."""
  lo, hi = radius * 0.6, size - radius * 0.6
  pos = rng.uniform(lo + 8 * scale, hi - 8 * scale, 2)
  vel = rng.normal(0, 1.2, 2) * scale
  out = np.empty((num_frames, 2))
  for t in range(num_frames):
    vel = 0.9 * vel + rng.normal(0, 0.5, 2) * scale
    pos = pos + vel
    for i in range(2):
      if not lo <= pos[i] <= hi:
        vel[i] = -vel[i]
        pos[i] = np.clip(pos[i], lo, hi)
    out[t] = pos
  return out


def render_frames(rng, options, label):
  """uint8 [T, H, W, 3]: the class's object drifting over a random background."""
  _, texture, hue, _ = CLASSES[label]
  n, size = int(round(options.seconds * options.fps)), options.size
  # Background: two random colours mixed by a smooth field, drifting slowly.
  bg_a = _hsv(rng.uniform(), rng.uniform(0.1, 0.6), rng.uniform(0.2, 0.8))
  bg_b = _hsv(rng.uniform(), rng.uniform(0.1, 0.6), rng.uniform(0.2, 0.8))
  field = 0.5 + 0.5 * _smooth_noise(rng, (2 * size, 2 * size), 6)
  drift = rng.normal(0, 0.4, 2)
  # The object: the class's texture in two shades of the class's hue.
  h = (hue + rng.normal(0, 0.02)) % 1.0
  if options.hue_spread:  # drawn only then: the default world is unchanged
    h = (h + options.hue_spread * rng.uniform()) % 1.0
  light = _hsv(h, rng.uniform(0.5, 0.9), rng.uniform(0.8, 1.0))
  dark = _hsv((h + 0.5) % 1.0, rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.35))
  scale = size / 128  # sizes below are for 128 x 128 frames
  radius = rng.uniform(20, 32) * scale
  period = rng.uniform(7, 12) * scale
  blotch_field = _smooth_noise(rng, (81, 81), 5)

  def blotch(u, v):
    iu = np.clip((u / scale + 40).astype(int), 0, 80)
    iv = np.clip((v / scale + 40).astype(int), 0, 80)
    return np.sign(blotch_field[iv, iu])

  centres = _path(rng, n, size, radius, scale)
  angle0, spin = rng.uniform(0, 2 * np.pi), rng.normal(0, 0.03)
  box = int(np.ceil(radius)) + 1  # the object is drawn in its bounding box
  offsets = np.arange(-box, box + 1, dtype=np.float32)
  field = field.astype(np.float32)
  bg_a, bg_b = bg_a.astype(np.float32), bg_b.astype(np.float32)
  frames = np.empty((n, size, size, 3), np.uint8)
  for t in range(n):
    oy, ox = (np.array([size, size]) / 2 + drift * t).astype(int) % size
    mix = field[oy : oy + size, ox : ox + size][..., None]
    image = bg_b + (bg_a - bg_b) * mix
    cy, cx = np.round(centres[t]).astype(int)
    ys, xs = cy + offsets.astype(int), cx + offsets.astype(int)
    keep_y, keep_x = (ys >= 0) & (ys < size), (xs >= 0) & (xs < size)
    dy = (ys[keep_y] - centres[t, 0])[:, None]
    dx = (xs[keep_x] - centres[t, 1])[None, :]
    a = angle0 + spin * t
    u = np.cos(a) * dx + np.sin(a) * dy
    v = -np.sin(a) * dx + np.cos(a) * dy
    r = np.hypot(dx, dy)
    inside = np.clip(radius - r + 0.5, 0, 1)[..., None]
    tex = _texture(texture, u, v, period, blotch)[..., None]
    if texture == "outline":
      tex = np.where((r > radius - 5 * scale)[..., None], 0.0, 1.0)
    obj = light * tex + dark * (1 - tex)
    window = image[
        ys[keep_y][0] : ys[keep_y][-1] + 1, xs[keep_x][0] : xs[keep_x][-1] + 1
    ]
    window[:] = obj * inside + window * (1 - inside)
    image += rng.standard_normal(image.shape, np.float32) * 0.02
    frames[t] = np.clip(image * 255, 0, 255).astype(np.uint8)
  return frames


################################################################################
# Sounds.
################################################################################


def _ramp(x, sample_rate, ms=10.0):
  """`x` faded in and out over `ms`."""
  k = min(len(x) // 2, int(sample_rate * ms / 1000))
  if k:
    fade = np.linspace(0.0, 1.0, k)
    x = x.copy()
    x[:k] *= fade
    x[-k:] *= fade[::-1]
  return x


def _bandpass_noise(rng, num, sample_rate, lo, hi):
  spectrum = np.fft.rfft(rng.standard_normal(num))
  f = np.fft.rfftfreq(num, 1.0 / sample_rate)
  spectrum[(f < lo) | (f > hi)] = 0
  x = np.fft.irfft(spectrum, num)
  return x / (np.std(x) + 1e-9)


def _harmonics(phase, weights):
  return sum(w * np.sin((i + 1) * phase) for i, w in enumerate(weights))


def class_sound(rng, kind, num, sample_rate):
  """`num` samples of a class's sound, its parameters drawn from `rng`."""
  t = np.arange(num) / sample_rate
  if kind == "hum":  # harmonic tone with vibrato
    f0 = rng.uniform(140, 280) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    x = _harmonics(2 * np.pi * np.cumsum(f0) / sample_rate, [1, 0.6, 0.4, 0.2])
  elif kind == "hiss":  # high band of noise
    centre = rng.uniform(3000, 5000)
    x = _bandpass_noise(rng, num, sample_rate, centre * 0.8, centre * 1.25)
  elif kind == "clicks":  # a train of short clicks
    rate = rng.uniform(8, 25)
    x = np.zeros(num)
    for start in np.arange(rng.uniform(0, 1 / rate), t[-1], 1 / rate):
      i = int(start * sample_rate)
      click = rng.standard_normal(96) * np.exp(-np.arange(96) / 15)
      x[i : i + 96] += click[: num - i]
  elif kind in ("chirp_up", "chirp_down"):  # repeated sweeps
    period = rng.uniform(0.15, 0.35)
    frac = (t / period) % 1.0
    lo, hi = rng.uniform(400, 700), rng.uniform(1600, 2600)
    frac = frac if kind == "chirp_up" else 1.0 - frac
    f = lo * (hi / lo) ** frac
    x = np.sin(2 * np.pi * np.cumsum(f) / sample_rate)
    x *= np.sin(np.pi * ((t / period) % 1.0)) ** 0.5
  elif kind == "buzz":  # a square-ish low tone
    f0 = rng.uniform(90, 160)
    x = np.tanh(4 * np.sin(2 * np.pi * f0 * t))
  elif kind == "bell":  # struck inharmonic partials
    f0 = rng.uniform(500, 900)
    rate = rng.uniform(1.5, 4)
    x = np.zeros(num)
    strikes = np.arange(rng.uniform(0, 0.3), t[-1], 1 / rate)
    partials = f0 * np.array([1.0, 2.76, 5.40, 8.93])
    for start in strikes:
      i = int(start * sample_rate)
      tt = t[: num - i]
      ring = sum(
          np.exp(-tt * (4 + 3 * k)) * np.sin(2 * np.pi * p * tt) / (k + 1)
          for k, p in enumerate(partials)
      )
      x[i:] += ring
  elif kind == "warble":  # FM tone
    fc, fm = rng.uniform(600, 1000), rng.uniform(6, 14)
    x = np.sin(
        2 * np.pi * fc * t + rng.uniform(3, 8) * np.sin(2 * np.pi * fm * t)
    )
  elif kind == "rumble":  # low noise, amplitude-modulated
    x = _bandpass_noise(rng, num, sample_rate, 40, rng.uniform(180, 300))
    x *= 1 + 0.6 * np.sin(2 * np.pi * rng.uniform(2, 6) * t)
  elif kind == "trill":  # two alternating pure notes
    f1 = rng.uniform(1000, 1600)
    f2 = f1 * rng.uniform(1.12, 1.3)
    rate = rng.uniform(6, 12)
    f = np.where((t * rate) % 1.0 < 0.5, f1, f2)
    x = np.sin(2 * np.pi * np.cumsum(f) / sample_rate)
  else:
    raise ValueError(kind)
  return x / (np.sqrt(np.mean(x**2)) + 1e-9)


def distractor_sound(rng, kind, num, sample_rate):
  """`num` samples of an off-screen sound unrelated to any class."""
  t = np.arange(num) / sample_rate
  if kind == "babble":  # a voice-like pulse train through moving formants
    f0 = rng.uniform(100, 220) * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = np.cumsum(f0) / sample_rate
    source = _harmonics(2 * np.pi * phase, [1.0 / (k + 1) for k in range(20)])
    spectrum = np.fft.rfft(source)
    f = np.fft.rfftfreq(num, 1.0 / sample_rate)
    gain = sum(
        np.exp(-(((f - rng.uniform(lo, hi)) / 120) ** 2))
        for lo, hi in ((300, 800), (900, 2200), (2300, 3000))
    )
    x = np.fft.irfft(spectrum * gain, num)
    x *= 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 5) * t) ** 2
  elif kind == "whistle":  # a slowly gliding pure tone
    f = rng.uniform(1200, 2500) * 2 ** (0.5 * np.sin(2 * np.pi * 0.3 * t))
    x = np.sin(2 * np.pi * np.cumsum(f) / sample_rate)
  elif kind == "rain":  # broadband noise with random drops
    x = 0.3 * _bandpass_noise(rng, num, sample_rate, 200, 8000)
    drops = rng.integers(0, num, int(t[-1] * 40))
    x[drops] += rng.uniform(-4, 4, len(drops))
  elif kind == "motor":  # a low harmonic drone with rising and falling speed
    f0 = rng.uniform(40, 80) * (1 + 0.2 * np.sin(2 * np.pi * 0.25 * t))
    x = _harmonics(
        2 * np.pi * np.cumsum(f0) / sample_rate, [1.0, 0.8, 0.6, 0.5, 0.3]
    )
  else:
    raise ValueError(kind)
  return x / (np.sqrt(np.mean(x**2)) + 1e-9)


def gate(rng, num, sample_rate, silence_fraction):
  """0/1 [num]: stretches of sound (0.4-1.6 s) and silence, ramped."""
  on_mean = 1.0
  off_mean = on_mean * silence_fraction / max(1e-6, 1 - silence_fraction)
  g = np.zeros(num)
  pos, on = 0.0, rng.uniform() > silence_fraction
  seconds = num / sample_rate
  while pos < seconds:
    mean = on_mean if on else off_mean
    length = rng.uniform(0.4, 1.6) * mean
    if on:
      i, j = int(pos * sample_rate), int(
          min(pos + length, seconds) * sample_rate
      )
      g[i:j] = _ramp(np.ones(j - i), sample_rate)
    pos, on = pos + length, not on
  return g


def render_audio(rng, options, label):
  """(float32 [S] mono in [-1, 1], whether an off-screen sound plays)."""
  num = int(round(options.seconds * options.sample_rate))
  sr = options.sample_rate
  main = class_sound(rng, CLASSES[label][3], num, sr)
  main *= gate(rng, num, sr, options.silence_fraction)
  mix = main * rng.uniform(0.8, 1.2)
  offscreen = bool(rng.uniform() < options.offscreen_prob)
  if offscreen:
    kind = DISTRACTORS[rng.integers(len(DISTRACTORS))]
    other = distractor_sound(rng, kind, num, sr)
    other *= gate(rng, num, sr, options.silence_fraction)
    mix = mix + other * rng.uniform(0.3, options.offscreen_level)
  mix = mix + 0.003 * rng.standard_normal(num)  # a faint noise floor
  mix = mix * rng.uniform(0.45, 0.9) / (np.max(np.abs(mix)) + 1e-9)
  return np.clip(mix, -1, 1).astype(np.float32), offscreen


def render_clip(index: int, seed: int, options: Options = Options()):
  """(frames uint8 [T, H, W, 3], audio float32 [S], truth dict) of clip `index`."""
  rng = np.random.default_rng([seed, index])
  label = label_of(index)
  frames = render_frames(rng, options, label)
  audio, offscreen = render_audio(rng, options, label)
  truth = {
      "file": clip_name(index),
      "label": CLASSES[label][0],
      "label_index": label,
      "split": split_of(index),
      "offscreen": offscreen,
  }
  return frames, audio, truth
