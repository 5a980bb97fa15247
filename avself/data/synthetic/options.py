"""What the world is: its options, its classes, its splits and clip names."""

import dataclasses

import numpy as np

SHAPES = ("disc", "square", "triangle", "ring", "cross")
# Half extents (left, right, top, bottom) of each shape in units of its radius.
EXTENTS = {
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
FLASH_GROW = 0.2  # a flashing object is 20% larger (and whiter: pictures).


@dataclasses.dataclass(frozen=True)
class WorldOptions:
  """What a clip looks and sounds like; the same options + seed, same clips."""

  num_classes: int = 10
  size: int = 128
  fps: int = 15
  duration: float = 6.0
  # Of the mp4s' audio; also the demo's (config_lib.synthetic_world_config).
  sample_rate: int = 16000
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
  # level every scene._VOICE_STEP s (linear between, squared uniform draws: quiet
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
