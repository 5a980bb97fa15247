"""Config checks that run before anything compiles, and data resolution."""

import importlib.util
import os
from typing import Any

import jax
import ml_collections


class ConfigError(ValueError):
  """A config value that cannot work; the message names the key."""


def flatten(
    config: ml_collections.ConfigDict, prefix: str = ""
) -> dict[str, Any]:
  """`{'a.b.c': value}` view of a nested config."""
  out = {}
  for key, value in config.items():
    name = f"{prefix}{key}"
    if isinstance(value, ml_collections.ConfigDict):
      out.update(flatten(value, name + "."))
    else:
      out[name] = value
  return out


def _require(config, key: str):
  node = config
  for part in key.split("."):
    if part not in node:
      raise ConfigError(f"config.{key} is required but missing")
    node = node[part]
  return node


def load_file(path: str):
  """A Python file outside any package (a config, a benchmark) as a module.

  configs/ is a folder of files, not a package: this is how one config
  builds on another, and how tests and benchmarks read them.
  """
  spec = importlib.util.spec_from_file_location(
      os.path.splitext(os.path.basename(path))[0], path
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def variants(arg: str | None, known: tuple[str, ...]) -> set[str]:
  """The comma-separated variants of `--config=FILE.py:a,b`; a name not in `known` raises.

  A typo ("scrach") would otherwise run the default config without a word.
  """
  names = {v.strip() for v in (arg or "").split(",")} - {""}
  unknown = sorted(names - set(known))
  if unknown:
    raise ValueError(
        f"unknown config variant(s) {unknown}: this config has {list(known)}"
    )
  return names


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the key for values that cannot work."""
  for key in (
      "task",
      "seed",
      "batch_size",
      "total_steps",
      "model.name",
      "optimizer.learning_rate",
      "data.sample_rate",
      "data.audio_seconds",
  ):
    _require(config, key)
  devices = jax.device_count()
  if config.batch_size <= 0 or config.batch_size % devices:
    raise ConfigError(
        f"config.batch_size={config.batch_size} must be a positive multiple of the "
        f"{devices} devices in the mesh"
    )
  if config.batch_size % jax.process_count():
    raise ConfigError(
        f"config.batch_size={config.batch_size} must divide evenly over "
        f"{jax.process_count()} processes"
    )
  if config.total_steps <= 0:
    raise ConfigError(
        f"config.total_steps={config.total_steps} must be positive"
    )
  if config.optimizer.learning_rate <= 0:
    raise ConfigError(
        f"config.optimizer.learning_rate={config.optimizer.learning_rate} "
        "must be positive"
    )
  for key in ("log_every_steps", "eval_every_steps", "checkpoint.every_steps"):
    if _require(config, key) <= 0:
      raise ConfigError(f"config.{key} must be positive")
  _validate_spectrogram(config)
  if not config.data.get("path") and not config.data.get("synthetic"):
    raise ConfigError(
        "config.data.path is empty: point it at a folder made by "
        "`python -m avself.data.prepare` (or set config.data.synthetic)"
    )


def _validate_spectrogram(config) -> None:
  """The front end must produce the model's declared audio input shape."""
  expected = config.model.get("spectrogram_shape")
  spec = config.data.get("spectrogram")
  if not expected or not spec:
    return
  from avself.data import audio  # pylint: disable=g-import-not-at-top

  num_samples = int(round(config.data.sample_rate * config.data.audio_seconds))
  try:
    got = tuple(audio.spectrogram_shape(spec, num_samples))
  except ValueError as e:
    raise ConfigError(f"config.data.spectrogram: {e}") from e
  if got != tuple(expected):
    raise ConfigError(
        f"config.data.spectrogram gives a {got[0]}x{got[1]} (freq x time) input for "
        f"{config.data.audio_seconds} s at {config.data.sample_rate} Hz, but "
        f"config.model.spectrogram_shape={tuple(expected)}; fix one of them"
    )


# Compute dtype where config.model.dtype = "auto": bfloat16 where the matrix
# units take it natively, float32 on CPUs (which emulate bfloat16 slowly).
_AUTO_DTYPE = {"tpu": "bfloat16", "gpu": "bfloat16", "cpu": "float32"}


def compute_dtype(model_config, platform: str | None = None):
  """The model's compute dtype; "auto" picks by `platform` (default: JAX's backend).

  Parameters and optimiser state stay float32 whatever this returns.
  """
  name = model_config.get("dtype", "float32")
  if name == "auto":
    platform = platform or jax.default_backend()
    name = _AUTO_DTYPE.get(platform, "float32")
  return jax.numpy.dtype(name)


def packs_columns(model_config, platform: str | None = None) -> bool:
  """Whether the VGG trunks run block 1 on column pairs (`models/vgg.py`).

  `model.pack_columns` is "auto" (the default: on TPUs, whose 128-lane tiles
  would store the 64-channel maps at twice their size), "on" or "off"; the
  trunks compute the same either way.
  """
  value = model_config.get("pack_columns", "auto")
  if value not in ("auto", "on", "off"):
    raise ConfigError(
        f"config.model.pack_columns={value!r}: use 'auto', 'on' or 'off'"
    )
  if value == "auto":
    return (platform or jax.default_backend()) == "tpu"
  return value == "on"


def resolve_data(
    config: ml_collections.ConfigDict,
) -> ml_collections.ConfigDict:
  """Fills `config.data.path` with the synthetic world's records when asked."""
  if config.data.get("path") or not config.data.get("synthetic"):
    return config
  from avself.data import synthetic_records  # pylint: disable=g-import-not-at-top

  path = synthetic_records.ensure_synthetic_records(config.data)
  config = ml_collections.ConfigDict(config.to_dict())  # Unlocked copy.
  config.data.path = os.path.abspath(path)
  return config


def base_config() -> ml_collections.ConfigDict:
  """Defaults shared by every experiment; config files override what differs."""
  from avself.data import pipeline  # pylint: disable=g-import-not-at-top

  c = ml_collections.ConfigDict()
  c.task = "avc"
  c.seed = 0
  c.batch_size = 256  # Global, over all devices and hosts.
  c.total_steps = 100_000
  c.log_every_steps = 100
  c.eval_every_steps = 5_000
  c.skip_nonfinite = False

  c.model = ml_collections.ConfigDict()
  c.model.name = "l3"
  c.model.width = 1.0
  c.model.dtype = "float32"
  # VGG trunks: block 1 on column pairs; "auto" = on TPUs (models/vgg.py).
  c.model.pack_columns = "auto"
  c.model.spectrogram_shape = (257, 199)

  c.data = pipeline.default_data_config()
  # Per-host input streams the global batch is built from; 0 = one per
  # process. Set it to a larger run's process count to replay that run's
  # exact global batches on fewer hosts.
  c.data.input_streams = 0

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 1e-4
  c.optimizer.weight_decay = 1e-5
  c.optimizer.schedule = "constant"
  c.optimizer.warmup_steps = 0
  c.optimizer.grad_clip_norm = 0.0
  # Top-level parameter groups (e.g. ('video_branch', 'fusion')) held still for
  # the first freeze_steps steps: a new head learns first (LP-FT); () = none.
  c.optimizer.freeze = ()
  c.optimizer.freeze_steps = 0

  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.every_steps = 1_000
  c.checkpoint.keep = 3
  c.checkpoint.async_save = True

  c.evals = ml_collections.ConfigDict()
  c.evals.avc = ml_collections.ConfigDict({"type": "avc", "num_examples": 4096})
  return c


def synthetic_world_config() -> ml_collections.ConfigDict:
  """Options for building the synthetic world and its records (the demo)."""
  from avself.data.synthetic import options as synthetic_options  # pylint: disable=g-import-not-at-top

  s = ml_collections.ConfigDict()
  s.num_videos = 300
  s.seed = 0
  s.num_classes = 10
  s.size = 128
  s.fps = 15.0
  s.duration = 6.0
  s.offscreen_prob = 0.3
  s.test_fraction = 0.2
  s.max_objects = 3  # Visible objects per clip: 1..max_objects.
  s.silent_prob = (
      0.0  # Chance that a visible object other than the main one is mute.
  )
  s.hum_level = 0.2  # Continuous hum relative to a bounce's burst.
  s.pitch_spread = (
      0.0  # Octaves over which a source's pitch varies around its class's.
  )
  s.background_noise = (
      0.0  # Most off-screen noise (RMS, relative to a burst's peak).
  )
  s.class_cue = (
      "look"  # 'look': classes differ in colour and shape; 'motion': in speed.
  )
  s.flash = (
      1.0  # Strength of the visible flash at a bounce (0: seen only as a turn).
  )
  s.voice = 0.0  # Sounding objects speak: loudness and look follow one envelope (0: off).
  # Of the generated mp4s (the world's own default); prepare resamples to
  # data.sample_rate.
  s.sample_rate = synthetic_options.WorldOptions.sample_rate
  s.write_stems = False  # Per-source audio for separation (large: float32).
  # Where the videos and records are cached ('' = ~/.cache/avself).
  s.cache_dir = ""
  # prepare options: frames kept per second, stored shorter side, shards.
  s.prepare_fps = 15.0
  s.shorter_side = 72
  s.num_shards = 4
  s.workers = 0  # 0 = all cores.
  return s


def synthetic_towers_config(model_name: str) -> ml_collections.ConfigDict:
  """AVE-Net-sized towers on the synthetic world, trained in minutes on a CPU.

  Shared by the AVE-Net, contrastive, cross-modal and AVOL demos, so that they
  see the same world, sizes, batch and steps and their numbers compare.
  """
  c = base_config()
  c.batch_size = 32
  c.total_steps = 600
  c.log_every_steps = 50
  c.eval_every_steps = 200
  c.checkpoint.every_steps = 200
  c.model.name = model_name
  c.model.width = 0.25
  c.model.spectrogram_shape = (64, 98)
  c.optimizer.learning_rate = 1e-3

  d = c.data
  d.synthetic = synthetic_world_config()
  d.sample_rate = 16000
  d.image_size = 64
  d.resize_shorter = 72
  d.spectrogram.kind = "mel"
  d.spectrogram.num_mel_bins = 64
  d.spectrogram.frame_length = 400
  d.spectrogram.frame_step = 160
  d.spectrogram.fft_length = 512
  d.shuffle_buffer = 512
  d.cache = True
  c.evals.avc.num_examples = 1024
  return c


def retrieval_eval() -> ml_collections.ConfigDict:
  """Video-level retrieval in four directions, with the probe and a random net."""
  return ml_collections.ConfigDict(
      dict(
          type="retrieval",
          k=30,
          level="video",
          probe=True,
          random_init=True,
          picture_queries=2,
      )
  )
