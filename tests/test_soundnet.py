"""SoundNet: the model's time steps, the KL loss, teacher tables and a tiny run."""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy import stats

import tiny
from avself import optimizer
from avself import state as state_lib
from avself import train
from avself.data import ops
from avself.data import pipeline
from avself.data import targets
from avself.data import teacher
from avself.models import soundnet
from avself.tasks import soundnet as soundnet_task


def tiny_soundnet_config(records_dir: str) -> ml_collections.ConfigDict:
  """SoundNet at width 1/8 on 1 s windows (16 kHz): conv8 gives 5 steps."""
  c = tiny.tiny_config(records_dir)
  c.task = "soundnet"
  c.model = ml_collections.ConfigDict(
      dict(
          name="soundnet",
          width=0.125,
          dtype="float32",
          spectrogram_shape=None,
          pool_sizes=(2, 2, 2),
          conv8_kernel=8,
          transfer_layers=("conv5", "conv6", "conv7"),
          teacher_classes=(10,),
      )
  )
  c.data.spectrogram.kind = "waveform"
  c.data.frame_targets.steps = 5
  c.teacher = ml_collections.ConfigDict(
      dict(steps=4, batch_size=16, width=0.125, learning_rate=1e-3, seed=0)
  )
  c.evals = ml_collections.ConfigDict()
  c.optimizer.learning_rate = 3e-3
  return c


def test_kl_matches_scipy_per_teacher_and_sums():
  rng = np.random.default_rng(0)
  classes = (3, 4)
  teacher_p = np.concatenate(
      [rng.dirichlet(np.ones(k), size=(2, 5)) for k in classes], axis=-1
  )
  teacher_p[0, 0, :3] = [0.0, 0.5, 0.5]  # a zero: 0 log 0 = 0
  logits = rng.normal(size=(2, 5, 7))
  got = soundnet_task.kl_divergence(
      jnp.asarray(teacher_p), jnp.asarray(logits), classes
  )
  want = np.zeros((2, 5))
  for lo, hi in ((0, 3), (3, 7)):
    q = np.exp(logits[..., lo:hi])
    q /= q.sum(-1, keepdims=True)
    want += stats.entropy(teacher_p[..., lo:hi], q, axis=-1)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)
  # KL of a distribution with itself is 0.
  same = soundnet_task.kl_divergence(
      jax.nn.softmax(jnp.asarray(logits[..., :3])),
      jnp.asarray(logits[..., :3]),
      (3,),
  )
  np.testing.assert_allclose(np.asarray(same), 0.0, atol=1e-6)


@pytest.mark.parametrize(
    "samples,pools,kernel",
    [(441000, (8, 8, 4), 8), (16000, (2, 2, 2), 8), (32000, (4, 4, 2), 8)],
)
def test_output_steps_matches_the_model(samples, pools, kernel):
  model = soundnet.SoundNet(
      teacher_classes=(3, 2),
      width=1 / 16,
      pool_sizes=pools,
      conv8_kernel=kernel,
  )
  x = jnp.zeros((1, samples, 1))
  shapes = jax.eval_shape(
      lambda: model.apply(
          model.init(jax.random.key(0), x, train=False), x, train=False
      )
  )
  assert shapes["logits"].shape == (
      1,
      soundnet.output_steps(samples, pools, kernel),
      5,
  )
  if samples == 441000:  # the paper's 20 s at 22,050 Hz: one output per 5 s
    assert soundnet.output_steps(samples) == 4


def test_too_short_audio_is_a_clear_error():
  model = soundnet.SoundNet(teacher_classes=(3,), width=1 / 16)
  x = jnp.zeros((1, 22050, 1))
  with pytest.raises(ValueError, match="too short"):
    model.init(jax.random.key(0), x, train=False)


def test_waveform_front_end_is_the_mono_waveform_times_gain():
  config = ml_collections.ConfigDict(dict(kind="waveform", mono=True))
  wave = np.random.default_rng(0).normal(size=(2, 100, 2)).astype(np.float32)
  out = ops.spectrogram_batch(wave, config, 16000, gain=np.float32([1.0, 0.5]))
  want = wave.mean(-1, keepdims=True) * np.float32([1.0, 0.5])[:, None, None]
  np.testing.assert_allclose(np.asarray(out), want, rtol=1e-6)


def _one_batch(config):
  ds = pipeline.make_dataset(
      config.data,
      mode="frame_targets",
      split="train",
      batch_size=8,
      train=True,
      seed=0,
  )
  return next(ds.as_numpy_iterator())


def _table_with(tmp_path, records_dir, change):
  """A uniform-posterior table for the train records, with `change` applied."""
  ids, prints, rows = [], [], []
  for video in targets.read_videos(records_dir, "train"):
    ids.append(video["video_id"])
    prints.append(int(video["fingerprint"]))
    rows.append(np.full((len(video["frames"]), 10), 0.1, np.float32))
  change(ids, prints, rows)
  return targets.save_table(str(tmp_path / "t.npz"), ids, prints, rows)


def test_frame_targets_mode_gives_the_table_rows_of_the_frames(
    tmp_path, tiny_records
):
  config = tiny_soundnet_config(tiny_records)

  def mark(ids, prints, rows):  # row value = frame index / 1000
    for r in rows:
      r[:] = (np.arange(len(r)) / 1000.0)[:, None]

  config.data.frame_targets.path = _table_with(tmp_path, tiny_records, mark)
  batch = _one_batch(config)
  assert batch["audio"].shape == (8, 16000, 1)
  assert batch["target"].shape == (8, 5, 10)
  frames = np.round(batch["target"][..., 0] * 1000).astype(int)  # [B, 5]
  # 5 parts of a 1 s window at 10 fps: frames 2 apart, in order.
  np.testing.assert_array_equal(np.diff(frames, axis=1), 2)
  assert "class_label" not in batch and "label" not in batch


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda ids, p, r: p.__setitem__(0, p[0] + 1), "do not match"),
        (
            lambda ids, p, r: r.__setitem__(0, r[0][:-1]),
            "do not match",
        ),
        (lambda ids, p, r: ids.__setitem__(0, "other.mp4@0"), "have no row"),
    ],
)
def test_a_table_that_does_not_match_the_records_is_an_error(
    tmp_path, tiny_records, change, message
):
  config = tiny_soundnet_config(tiny_records)
  config.data.samples_per_video = 1
  config.data.frame_targets.path = _table_with(tmp_path, tiny_records, change)
  ds = pipeline.make_dataset(
      config.data,
      mode="frame_targets",
      split="train",
      batch_size=64,
      train=False,
      seed=0,
  )
  with pytest.raises(Exception, match=message):
    for _ in ds:
      pass


def test_tiny_soundnet_run_learns_the_demo_teacher(tmp_path, tiny_records):
  config = tiny_soundnet_config(tiny_records)
  config = soundnet_task.prepare_data(config, str(tmp_path))
  table = targets.load_table(config.data.frame_targets.path)
  np.testing.assert_allclose(table["rows"].sum(-1), 1.0, rtol=1e-5)
  assert table["meta"]["class_names"][0] == "azure_square"
  # The demo teacher is cached beside the records: a second call reuses it.
  assert (
      soundnet_task.prepare_data(
          tiny_soundnet_config(tiny_records), str(tmp_path)
      ).data.frame_targets.path
      == config.data.frame_targets.path
  )
  losses = _fit_one_batch(soundnet_task, config, steps=15)
  assert losses[-1] < 0.5 * losses[0], losses


def test_soundnet_checks_steps_and_front_end(tiny_records):
  config = tiny_soundnet_config(tiny_records)
  config.data.frame_targets.steps = 4
  with pytest.raises(ValueError, match="conv8 gives 5 time step"):
    soundnet_task.prepare_data(config, "")
  config = tiny_soundnet_config(tiny_records)
  config.data.spectrogram.kind = "mel"
  with pytest.raises(ValueError, match="raw audio"):
    soundnet_task.prepare_data(config, "")


def _fit_one_batch(task, config, steps):
  """Losses of `steps` optimiser steps on one real batch (8 devices)."""
  import functools  # pylint: disable=g-import-not-at-top

  from avself import sharding  # pylint: disable=g-import-not-at-top

  mesh = sharding.make_mesh()
  model = task.build_model(config)
  tx = optimizer.make_optimizer(config)
  state = state_lib.create_train_state(
      task, model, tx, config, jax.random.key(0), mesh
  )
  ds = pipeline.make_dataset(
      config.data,
      mode=task.data_mode(config),
      split="train",
      batch_size=config.batch_size,
      train=True,
      seed=0,
  )
  batch = sharding.to_global(next(ds.as_numpy_iterator()), mesh)
  step = jax.jit(
      functools.partial(
          train.train_step, task=task, model=model, tx=tx, skip_nonfinite=False
      )
  )
  losses = []
  for _ in range(steps):
    state, metrics = step(state, batch, jax.random.key(1))
    losses.append(float(metrics["loss"]))
  return losses


def test_teacher_tables_concatenate_for_two_teachers(tmp_path, tiny_records):
  a = _table_with(tmp_path, tiny_records, lambda *_: None)
  b = str(tmp_path / "b.npz")
  os.replace(a, b)
  a = _table_with(tmp_path, tiny_records, lambda *_: None)
  joined = targets.load_table(
      teacher.concatenate_tables([a, b], str(tmp_path / "ab.npz"))
  )
  assert joined["rows"].shape[1] == 20
  assert joined["meta"]["classes"] == [10, 10]


def test_a_keras_classifier_is_run_over_the_records_frames(
    tmp_path, tiny_records
):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  inputs = tf.keras.Input((32, 32, 3))
  pooled = tf.keras.layers.GlobalAveragePooling2D()(inputs)
  outputs = tf.keras.layers.Dense(3, activation="softmax")(pooled)
  path = str(tmp_path / "tiny.keras")
  tf.keras.Model(inputs, outputs).save(path)
  probabilities, info = teacher.load_classifier(f"keras:{path}", "tf")
  assert info["image_size"] == 32
  out = teacher.classify_records(
      tiny_records,
      "test",
      probabilities,
      str(tmp_path / "test.teacher-tiny.npz"),
      image_size=32,
      resize_shorter=40,
  )
  table = targets.load_table(out)
  assert table["rows"].shape == (table["num_frames"].sum(), 3)
  np.testing.assert_allclose(table["rows"].sum(-1), 1.0, rtol=1e-5)
  # Different frames, different posteriors: the frames reached the model.
  assert np.ptp(table["rows"][:, 0]) > 1e-4
  with pytest.raises(ValueError, match="keras_preprocess"):
    teacher.load_classifier(f"keras:{path}", "imagenet")
