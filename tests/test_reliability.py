"""A user's own data: no test split, damaged checkpoints, late or failed saves."""

import glob
import json
import os
import shlex
import shutil
import subprocess

import jax
import numpy as np
import pytest

import test_faults
import tiny
from avself import checkpoint as ckpt_lib
from avself import config_lib
from avself import sharding
from avself import state as state_lib
from avself import train
from avself.data import records


def _train_only(src, dst):
  """A copy of `src` as `prepare` without --labels writes it: no test split."""
  os.makedirs(dst)
  for f in records.list_shards(src, "train"):
    shutil.copy(f, dst)
  manifest = records.load_manifest(src)
  manifest["splits"] = {"train": manifest["splits"]["train"]}
  with open(os.path.join(dst, records.MANIFEST_NAME), "w") as f:
    json.dump(manifest, f)
  return str(dst)


def _steps(workdir):
  return ckpt_lib.make_manager(str(workdir), read_only=True).all_steps()


def test_records_without_a_test_split_are_refused_before_step_1(
    tmp_path, tiny_records
):
  config = tiny.tiny_config(_train_only(tiny_records, tmp_path / "rec"))
  with pytest.raises(config_lib.ConfigError) as e:
    train.train_and_evaluate(config, str(tmp_path / "w"))
  message = str(e.value)
  assert "config.evals.avc" in message and "'test'" in message
  assert "--test_fraction" in message and "['train']" in message
  assert not _steps(tmp_path / "w")  # refused before any step


def test_eval_batch_larger_than_the_eval_split_is_refused_before_step_1(
    tmp_path, tiny_records
):
  config = tiny.tiny_config(tiny_records)
  config.batch_size = 128  # the 12 test videos give 48 examples
  with pytest.raises(config_lib.ConfigError, match="no full batch of 128"):
    train.train_and_evaluate(config, str(tmp_path))
  assert not _steps(tmp_path)


def test_sample_rate_of_the_records_is_checked_at_start_up(
    tmp_path, tiny_records
):
  config = tiny.tiny_config(tiny_records)
  config.data.sample_rate = 48000
  config.model.spectrogram_shape = (32, 149)  # consistent with 48 kHz
  with pytest.raises(config_lib.ConfigError, match="16000 Hz") as e:
    train.train_and_evaluate(config, str(tmp_path))
  assert "--config.data.sample_rate=16000" in str(e.value)


def test_empty_records_folder_says_no_records_naming_it(tmp_path):
  empty = tmp_path / "rec"
  empty.mkdir()
  config = tiny.tiny_config(str(empty))
  with pytest.raises(config_lib.ConfigError, match="no records to train on"):
    train.train_and_evaluate(config, str(tmp_path / "w"))


def test_a_failing_evaluation_keeps_the_checkpoint_of_its_step(
    tmp_path, tiny_records, monkeypatch
):
  config = tiny.tiny_config(tiny_records)
  config.total_steps = 2

  def fail(*args, **kwargs):
    raise RuntimeError("evaluation broke")

  monkeypatch.setattr(train, "run_evaluators", fail)
  with pytest.raises(RuntimeError, match="evaluation broke"):
    train.train_and_evaluate(config, str(tmp_path))
  assert _steps(tmp_path) == [2]


def _state_files(workdir, step):
  folder = os.path.join(workdir, ckpt_lib.CHECKPOINT_DIR, str(step), "state")
  files = [f for f in glob.glob(f"{folder}/**", recursive=True)]
  return sorted((f for f in files if os.path.isfile(f)), key=os.path.getsize)


def _flip_bytes(workdir, count=64):
  """64 bytes inverted in the largest file of step 4's state (the arrays)."""
  path = _state_files(workdir, 4)[-1]
  data = bytearray(open(path, "rb").read())
  rng = np.random.default_rng(0)
  for i in rng.choice(len(data), size=min(count, len(data)), replace=False):
    data[i] ^= 0xFF
  open(path, "wb").write(bytes(data))


def _truncate(workdir):
  """Step 4's largest state file cut in half."""
  path = _state_files(workdir, 4)[-1]
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)


def _other_values(workdir):
  """Step 4's state replaced by step 2's: it reads without any error.

  Only the digest saved with step 4 can tell (damage that decompresses,
  e.g. in uncompressed chunks or metadata, loads silently the same way).
  """
  steps = os.path.join(workdir, ckpt_lib.CHECKPOINT_DIR)
  shutil.rmtree(os.path.join(steps, "4", "state"))
  shutil.copytree(
      os.path.join(steps, "2", "state"), os.path.join(steps, "4", "state")
  )


@pytest.mark.parametrize("damage", [_flip_bytes, _truncate, _other_values])
def test_damaged_latest_checkpoint_falls_back_to_the_newest_intact_step(
    tmp_path, tiny_records, damage, caplog
):
  config = tiny.tiny_config(tiny_records)
  workdir = str(tmp_path)
  train.train_and_evaluate(config, workdir)
  assert _steps(workdir) == [2, 4]
  damage(workdir)

  # Reading: the damaged step is named and skipped.
  manager = ckpt_lib.make_manager(workdir, read_only=True)
  _, _, _, state = state_lib.restore(workdir)
  assert int(state.step) == 2
  with pytest.raises(ckpt_lib.CheckpointError, match="step 4 is damaged"):
    ckpt_lib.restore_state(manager, ckpt_lib.abstract_like(state), 4)

  # Training: resumes from step 2, moves step 4 aside and saves it afresh.
  caplog.set_level("WARNING")
  results = train.train_and_evaluate(config, workdir)
  assert results["step"] == 4
  assert "step 4" in caplog.text and "damaged" in caplog.text
  assert _steps(workdir) == [2, 4]
  assert os.listdir(os.path.join(workdir, ckpt_lib.DAMAGED_DIR)) == ["4"]
  _, _, _, state = state_lib.restore(workdir)
  assert int(state.step) == 4
  assert all(
      np.isfinite(x).all() for x in jax.tree.leaves(sharding.to_host(state))
  )


def test_digest_changes_with_any_value_and_is_stable():
  a = {"w": jax.numpy.arange(6.0).reshape(2, 3), "n": jax.numpy.int32(3)}
  b = {"w": a["w"].at[1, 2].set(5.0000005), "n": a["n"]}
  assert ckpt_lib.state_digest(a) == ckpt_lib.state_digest(dict(a))
  assert ckpt_lib.state_digest(a) != ckpt_lib.state_digest(b)


def _main(workdir, records_dir, steps, *extra, file_blocks=None):
  """`python -m avself.main` on the tiny config, under `ulimit -f` if given."""
  cmd = test_faults._cmd(workdir, records_dir, steps, every=2, extra=extra)
  if file_blocks:  # writes past the limit fail with EFBIG ("File too large")
    cmd = ["bash", "-c", f'ulimit -f {file_blocks} && exec "$@"', "-", *cmd]
  return subprocess.run(
      cmd, env=test_faults._env(), capture_output=True, text=True, timeout=600
  )


def test_disk_full_stops_the_run_at_the_failed_save_with_the_error_last(
    tmp_path, tiny_records
):
  proc = _main(
      tmp_path,
      tiny_records,
      12,
      "--config.eval_every_steps=12",
      file_blocks=200,  # 200 KiB: less than the state's arrays
  )
  assert proc.returncode == 1
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith("avself.main: error:") and "File too large" in last
  # Stopped at the first save: no later save, no evaluation, no results.
  assert "Saving checkpoint at step 4" not in proc.stderr
  assert "Evaluator avc took" not in proc.stderr
  assert "sys.meta_path is None" not in proc.stderr
  assert not os.path.exists(tmp_path / "results.json")


def test_config_key_typo_prints_one_line(tmp_path):
  proc = _main(tmp_path, tmp_path, 1, "--config.batch_sise=8")
  assert proc.returncode == 2
  assert "Traceback" not in proc.stderr
  last = proc.stderr.strip().splitlines()[-1]
  assert last == (
      "avself.main: error: bad config override (--config.batch_sise): "
      '\'batch_sise\' Did you mean "batch_size" instead of "batch_sise"?'
  )


def test_ci_runs_the_multiprocess_tests_too():
  with open(os.path.join(tiny.ROOT, ".ci", "run")) as f:
    commands = [
        shlex.split(line) for line in f if line.startswith("python -m pytest")
    ]
  marks = {
      c[c.index("-m", 3) + 1] for c in commands
  }  # after `python -m pytest`
  assert marks == {"not multiprocess", "multiprocess"}
