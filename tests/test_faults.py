"""Preemption, exact resume, killed saves, NaNs, corrupt shards and bad configs."""

import glob
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import tiny
from avself import checkpoint as ckpt_lib
from avself import sharding
from avself import state as state_lib
from avself import train
from avself.data import records


def _env():
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("XLA_FLAGS", None)
  return env


def _cmd(workdir, records_dir, steps, every=5, extra=()):
  return [
      sys.executable,
      "-m",
      "avself.main",
      f"--config={tiny.TINY_CONFIG_FILE}",
      f"--workdir={workdir}",
      f"--config.data.path={records_dir}",
      f"--config.total_steps={steps}",
      f"--config.checkpoint.every_steps={every}",
      "--config.log_every_steps=1",
      "--config.eval_every_steps=1000",
      "--config.evals.avc.num_examples=16",
      "--num_cpu_devices=2",
      "--distributed=off",
      *extra,
  ]


def _run(cmd, timeout=600):
  proc = subprocess.run(
      cmd, env=_env(), capture_output=True, text=True, timeout=timeout
  )
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
  return proc


def _latest(workdir):
  return ckpt_lib.make_manager(str(workdir), read_only=True).latest_step()


def _params(workdir):
  _, _, _, state = state_lib.restore(str(workdir))
  return sharding.to_host(state.params), sharding.to_host(state.model_state)


def _assert_bitwise_equal(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert x.dtype == y.dtype and np.array_equal(x, y)


@pytest.mark.multiprocess
def test_interrupted_runs_end_bitwise_equal_to_a_straight_run(
    tmp_path, tiny_records
):
  straight, resumed, preempted = (
      tmp_path / "straight",
      tmp_path / "resumed",
      tmp_path / "sig",
  )
  _run(_cmd(straight, tiny_records, 20))
  # 10 steps, the process ends, then 10 more in a new process.
  _run(_cmd(resumed, tiny_records, 10))
  assert _latest(resumed) == 10
  _run(_cmd(resumed, tiny_records, 20))
  # SIGTERM mid-run: save at the current step, exit 0, resume to the end.
  proc = subprocess.Popen(
      _cmd(preempted, tiny_records, 20, every=100),
      env=_env(),
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
  )
  deadline = time.time() + 300
  events = lambda: glob.glob(os.path.join(preempted, "events.out*"))
  while time.time() < deadline and not (
      events() and os.path.getsize(events()[0]) > 2000
  ):
    time.sleep(0.5)
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out[-3000:]
  stopped_at = _latest(preempted)
  assert stopped_at is not None and 0 < stopped_at < 20, out[-2000:]
  _run(_cmd(preempted, tiny_records, 20, every=100))
  expected = _params(straight)
  _assert_bitwise_equal(expected, _params(resumed))
  _assert_bitwise_equal(expected, _params(preempted))


@pytest.mark.multiprocess
def test_kill_9_during_saves_leaves_a_restorable_checkpoint(
    tmp_path, tiny_records
):
  workdir = tmp_path / "killed"
  # Save every step so the kill lands during (async) saves.
  for delay in (25, 35):
    proc = subprocess.Popen(
        _cmd(workdir, tiny_records, 400, every=1),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    step = _latest(workdir)
    if step is not None:
      params, _ = _params(workdir)  # The latest complete checkpoint restores.
      assert all(np.isfinite(x).all() for x in jax.tree.leaves(params))
  # A save killed half-way leaves a temporary folder; it is never "latest".
  ckpt_dir = workdir / ckpt_lib.CHECKPOINT_DIR
  os.makedirs(
      ckpt_dir / "999.orbax-checkpoint-tmp-1234" / "state", exist_ok=True
  )
  (ckpt_dir / "999.orbax-checkpoint-tmp-1234" / "state" / "junk").write_bytes(
      b"\x00" * 10
  )
  assert _latest(workdir) != 999
  before = _latest(workdir) or 0
  _run(_cmd(workdir, tiny_records, before + 2, every=1))
  assert _latest(workdir) == before + 2


def _poisoned_records(src, dst, num_bad=6):
  """A copy of `src` plus a train shard of videos whose audio is NaN."""
  shutil.copytree(src, dst)
  bad = []
  for i in range(num_bad):
    bad.append(
        records.make_sequence_example(
            filename=f"nan_{i}.mp4",
            jpeg_frames=[_tiny_jpeg()] * 30,
            waveform=np.full((48000,), np.nan, np.float32),
            sample_rate=16000,
            fps=10,
            label_index=[0],
            audio_format="floats",
        )
    )
  shards = records.list_shards(dst, "train")
  n = len(shards) + 1
  for i, path in enumerate(shards):
    os.rename(path, records.shard_path(dst, "train", i, n))
  records.write_records(records.shard_path(dst, "train", n - 1, n), bad)
  return dst


def _tiny_jpeg():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  return tf.io.encode_jpeg(np.full((40, 40, 3), 128, np.uint8)).numpy()


def test_nan_loss_stops_naming_the_step_and_keeps_last_good_checkpoint(
    tmp_path, tiny_records
):
  data = _poisoned_records(tiny_records, str(tmp_path / "poisoned"))
  config = tiny.tiny_config(data)
  config.total_steps = 40
  config.log_every_steps = 1
  config.checkpoint.every_steps = 1
  with pytest.raises(train.NonFiniteLossError, match=r"at step (\d+)") as err:
    train.train_and_evaluate(config, str(tmp_path / "stop"))
  bad_step = int(str(err.value).split("at step ")[1].split(";")[0])
  latest = _latest(tmp_path / "stop")
  assert latest is None or latest < bad_step
  if latest:
    params, stats = _params(tmp_path / "stop")
    assert all(np.isfinite(x).all() for x in jax.tree.leaves((params, stats)))
  # The option skips such steps instead and keeps training.
  config.skip_nonfinite = True
  config.checkpoint.every_steps = 40
  results = train.train_and_evaluate(config, str(tmp_path / "skip"))
  assert results["step"] == 40
  params, stats = _params(tmp_path / "skip")
  assert all(np.isfinite(x).all() for x in jax.tree.leaves((params, stats)))


def test_unknown_config_key_fails_before_compiling(tmp_path):
  proc = subprocess.run(
      [
          sys.executable,
          "-m",
          "avself.main",
          f"--config={tiny.TINY_CONFIG_FILE}",
          f"--workdir={tmp_path}",
          "--config.optimizer.learning_rat=0.1",
      ],
      env=_env(),
      capture_output=True,
      text=True,
      timeout=120,
  )
  assert proc.returncode != 0
  assert "learning_rat" in proc.stderr
  proc = subprocess.run(
      [
          sys.executable,
          "-m",
          "avself.main",
          f"--config={tiny.TINY_CONFIG_FILE}",
          f"--workdir={tmp_path}",
          "--config.batch_size=7",
          "--num_cpu_devices=2",
          "--distributed=off",
      ],
      env=_env(),
      capture_output=True,
      text=True,
      timeout=120,
  )
  assert proc.returncode != 0
  assert "config.batch_size=7" in proc.stderr
  assert not os.path.exists(tmp_path / ckpt_lib.CHECKPOINT_DIR)
