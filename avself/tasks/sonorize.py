"""Sonorization: the sound of a silent video (Owens et al., CVPR 2016).

From a clip of consecutive frames (pipeline mode 'clip'), the net
(`avself.models.sonorize`) regresses, per video step, the log mel bands of
the clip's own sound (`avself.synthesis.log_mel`, computed from the waveform
on the device); the loss is the mean squared (or absolute) error over steps
and bands. Waveforms are made from the predicted bands afterwards
(`avself.synthesis`): the nearest training sound, whose features
`prepare_data` indexes once into WORKDIR/sonorize/index.npz, or Griffin-Lim.
"""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from avself import config_lib
from avself import synthesis

INDEX_FILE = os.path.join("sonorize", "index.npz")


def data_mode(config) -> str:
  del config
  return "clip"


def build_model(config):
  """SonorizeNet regressing `sonorize.num_bands` bands per step."""
  from avself.models import sonorize  # pylint: disable=g-import-not-at-top

  m = config.model
  return sonorize.SonorizeNet(
      num_bands=int(config.sonorize.num_bands),
      steps_per_frame=int(config.sonorize.steps_per_frame),
      width=m.width,
      hidden=int(m.hidden),
      temporal=m.temporal,
      temporal_layers=int(m.temporal_layers),
      temporal_kernel=int(m.temporal_kernel),
      sample_rate=int(config.data.sample_rate),
      fps=float(config.data.clip.num_frames)
      / float(config.data.clip.clip_seconds),
      loss=config.sonorize.loss,
      dtype=config_lib.compute_dtype(m),
      pack_columns=config_lib.packs_columns(m),
  )


def dummy_batch(config, batch_size: int) -> dict:
  d = config.data
  n = int(round(d.clip.clip_seconds * d.sample_rate))
  size = d.image_size
  return {
      "video": np.zeros(
          (batch_size, int(d.clip.num_frames), size, size, 3), np.float32
      ),
      "waveform": np.zeros((batch_size, n, 1), np.float32),
  }


def init(model, rng, batch):
  return model.init({"params": rng}, batch["video"], train=False)


def targets(waveform: jax.Array, spec: synthesis.FeatureSpec) -> jax.Array:
  """waveform [B, n, C] -> log mel [B, n // hop, M] of its channels' mean."""
  return synthesis.log_mel(waveform.mean(-1), spec, xp=jnp)


def regression_loss(
    predicted: jax.Array, target: jax.Array, kind: str = "l2"
) -> jax.Array:
  """Mean over batch, steps and bands of the squared ('l2') or absolute ('l1') error."""
  error = predicted - target
  if kind == "l2":
    return jnp.mean(error**2)
  if kind == "l1":
    return jnp.mean(jnp.abs(error))
  raise ValueError(f"sonorize.loss must be 'l2' or 'l1', got {kind!r}")


def predict(model, variables, video) -> jax.Array:
  """[B, T, S, S, 3] in [-1, 1] -> predicted log mel [B, T * steps_per_frame, M]."""
  return model.apply(variables, video, train=False)["features"]


def loss_fn(model, params, model_state, batch, rng, train: bool):
  """Regression of the clip's log mel bands.

  `accuracy` (the step log's second number) is the share of steps whose
  bands lie within 1 nat RMS of the truth.
  """
  del rng
  variables = {"params": params, **model_state}
  if train:
    outputs, new_state = model.apply(
        variables, batch["video"], train=True, mutable=["batch_stats"]
    )
  else:
    outputs = model.apply(variables, batch["video"], train=False)
    new_state = model_state
  predicted = outputs["features"]
  target = targets(batch["waveform"], model.feature_spec)
  target = target[:, : predicted.shape[1]]
  loss = regression_loss(predicted, target, model.loss)
  step_rms = jnp.sqrt(jnp.mean((predicted - target) ** 2, axis=-1))
  metrics = {"loss": loss, "accuracy": jnp.mean(step_rms < 1.0)}
  return loss, (metrics, new_state)


def index_path(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), INDEX_FILE)


def build_index(config, path: str) -> synthesis.ExampleIndex:
  """Features and sound of every training video (whole, in record order) -> `path`."""
  from avself.data import reading  # pylint: disable=g-import-not-at-top
  from avself.data import records  # pylint: disable=g-import-not-at-top

  d = config.data
  spec = synthesis.feature_spec(config)
  files = records.list_shards(d.path, d.train_split)
  videos = reading.read_videos(
      files, d, train=False, seed=0, process_index=0, min_samples=1
  )
  limit = int(config.sonorize.get("index_seconds") or 0) * spec.sample_rate
  feats, waves, starts, labels, total = [], [], [0], [], 0
  for video in videos.as_numpy_iterator():
    if abs(float(video["fps"]) - spec.fps) > 1e-3:
      raise config_lib.ConfigError(
          f"data.clip: {d.clip.num_frames} frames in {d.clip.clip_seconds} s "
          f"is {spec.fps:g} fps, the records' is {float(video['fps']):g}"
      )
    wave = np.asarray(video["waveform"], np.float32).mean(-1)
    usable = int(len(video["frames"]) / video["fps"] * spec.sample_rate)
    steps = min(len(wave), usable) // spec.hop
    if steps < 1:
      continue
    wave = wave[: steps * spec.hop]
    feats.append(synthesis.log_mel(wave, spec))
    waves.append(wave)
    starts.append(starts[-1] + steps)
    labels.append(int(video["label"]))
    total += len(wave)
    if limit and total >= limit:
      break
  if not feats:
    raise config_lib.ConfigError(
        f"no training video in {d.path} ({d.train_split}) to index"
    )
  index = synthesis.ExampleIndex(
      np.concatenate(feats), np.concatenate(waves), starts, labels, spec
  )
  index.save(path)
  return index


def prepare_data(config, workdir: str):
  """Indexes the training sounds into WORKDIR/sonorize/index.npz once.

  Unless `sonorize.index` names an index already; the returned config
  names it, so the evaluator and `avself.sonorize` find it.
  """
  synthesis.feature_spec(config).hop  # pylint: disable=expression-not-assigned
  config = ml_collections.ConfigDict(config.to_dict())
  path = config.sonorize.get("index") or index_path(workdir)
  if jax.process_index() == 0 and not os.path.exists(path):
    build_index(config, path)
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

    multihost_utils.sync_global_devices("avself_sonorize_index")
  config.sonorize.index = path
  return config
