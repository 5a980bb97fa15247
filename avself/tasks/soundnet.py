"""SoundNet (Aytar, Vondrick & Torralba 2016): vision teaches sound.

The audio net sees only the raw waveform (`data.spectrogram.kind =
'waveform'`); its conv8 gives a class distribution per time step, and the loss
is KL(teacher || student) against the class posteriors that image
classifiers gave the frames at those times (Sec. 3.2). The posteriors come
from the pipeline's `frame_targets` mode: a table made once over the records
by `avself.data.teacher` (`data.frame_targets.path`), or, with `config.teacher`
set (the synthetic demo), by a demo classifier trained here on the training
frames' labels and cached beside the records. With several teachers
(`model.teacher_classes`, e.g. (1000, 401) for ImageNet and Places) each
gets its own softmax and KL term, summed.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from avself import config_lib


def data_mode(config) -> str:
  del config
  return "frame_targets"


def _num_samples(config) -> int:
  return int(round(config.data.sample_rate * config.data.audio_seconds))


def teacher_classes(config) -> tuple[int, ...]:
  return tuple(int(k) for k in config.model.teacher_classes)


def build_model(config):
  """SoundNet with one conv8 output per teacher class."""
  from avself.models import soundnet  # pylint: disable=g-import-not-at-top

  m = config.model
  return soundnet.SoundNet(
      teacher_classes=teacher_classes(config),
      width=m.width,
      pool_sizes=tuple(m.pool_sizes),
      conv8_kernel=int(m.conv8_kernel),
      transfer_layers=tuple(m.transfer_layers),
      dtype=config_lib.compute_dtype(m),
  )


def dummy_batch(config, batch_size: int) -> dict:
  """Zeros shaped like a batch, for init and compilation."""
  steps = int(config.data.frame_targets.steps)
  return {
      "audio": np.zeros((batch_size, _num_samples(config), 1), np.float32),
      "target": np.full(
          (batch_size, steps, sum(teacher_classes(config))), 1.0, np.float32
      ),
  }


def init(model, rng, batch):
  return model.init({"params": rng}, batch["audio"], train=False)


def kl_divergence(
    teacher: jnp.ndarray, logits: jnp.ndarray, classes: tuple[int, ...]
) -> jnp.ndarray:
  """Sum over teachers of KL(teacher || softmax(logits)) per row: [..., sum K] -> [...].

  Teacher rows are renormalised per group (posteriors stored in float32 or
  rounded may sum to 1 +- 1e-6); 0 log 0 counts as 0.
  """
  total = 0.0
  bounds = np.cumsum((0,) + tuple(classes))
  for lo, hi in zip(bounds[:-1], bounds[1:]):
    p = teacher[..., lo:hi]
    p = p / jnp.maximum(p.sum(-1, keepdims=True), 1e-12)
    log_q = jax.nn.log_softmax(logits[..., lo:hi], axis=-1)
    log_p = jnp.log(jnp.where(p > 0, p, 1.0))
    total = total + jnp.sum(p * (log_p - log_q), axis=-1)
  return total


def loss_fn(model, params, model_state, batch, rng, train: bool):
  """Mean KL over examples and time steps; `agreement`: student's top class = teacher's."""
  del rng
  variables = {"params": params, **model_state}
  if train:
    outputs, new_state = model.apply(
        variables, batch["audio"], train=True, mutable=["batch_stats"]
    )
  else:
    outputs = model.apply(variables, batch["audio"], train=False)
    new_state = model_state
  logits = outputs["logits"]  # [B, T8, sum K]
  target = batch["target"].astype(jnp.float32)  # [B, steps, sum K]
  if logits.shape[1:] != target.shape[1:]:
    raise ValueError(
        f"SoundNet's conv8 gives {logits.shape[1:]} (steps, classes) but the "
        f"frame targets are {target.shape[1:]}"
    )
  classes = tuple(model.teacher_classes)
  loss = kl_divergence(target, logits, classes).mean()
  first = classes[0]
  agreement = (
      jnp.argmax(logits[..., :first], -1) == jnp.argmax(target[..., :first], -1)
  ).mean()
  return loss, ({"loss": loss, "agreement": agreement}, new_state)


def prepare_data(config, workdir: str):
  """Checks the net against the targets; makes the demo teacher's table when asked."""
  del workdir
  from avself.data import sampling  # pylint: disable=g-import-not-at-top
  from avself.data import targets  # pylint: disable=g-import-not-at-top
  from avself.data import teacher  # pylint: disable=g-import-not-at-top
  from avself.models import soundnet  # pylint: disable=g-import-not-at-top

  m, d = config.model, config.data
  if d.spectrogram.kind != "waveform":
    raise config_lib.ConfigError(
        "the soundnet task takes raw audio: set data.spectrogram.kind='waveform'"
    )
  steps = soundnet.output_steps(
      _num_samples(config), tuple(m.pool_sizes), int(m.conv8_kernel)
  )
  if steps != int(d.frame_targets.steps):
    raise config_lib.ConfigError(
        f"SoundNet's conv8 gives {steps} time step(s) for "
        f"{d.audio_seconds} s at {d.sample_rate} Hz but "
        f"data.frame_targets.steps={d.frame_targets.steps}"
    )
  config = ml_collections.ConfigDict(config.to_dict())
  if not config.data.frame_targets.path:
    if not config.get("teacher"):
      raise config_lib.ConfigError(
          "data.frame_targets.path is empty: make a teacher table with "
          "`python -m avself.data.teacher classify` (or set config.teacher for "
          "the demo teacher)"
      )
    config.data.frame_targets.path = teacher.ensure_demo_teacher(config)
  table = targets.load_table(sampling.frame_targets_path(config.data))
  if table["rows"].shape[1] != sum(teacher_classes(config)):
    raise config_lib.ConfigError(
        f"the teacher table has {table['rows'].shape[1]} classes but "
        f"model.teacher_classes={tuple(m.teacher_classes)}"
    )
  return config
