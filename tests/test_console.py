"""What a run prints: avself's lines and every warning, not the libraries' INFO."""

import logging
import os

from avself import config_lib
from avself import console
from avself import train


def _record(path: str, level: int) -> logging.LogRecord:
  return logging.LogRecord("absl", level, path, 1, "message", (), None)


def test_library_info_lines_are_dropped_but_not_their_warnings():
  keep = console._AvselfInfoOnly()
  own = os.path.join(os.path.dirname(console.__file__), "train.py")
  library = "/venv/site-packages/orbax/checkpoint/checkpoint_manager.py"
  assert keep.filter(_record(own, logging.INFO))
  assert not keep.filter(_record(library, logging.INFO))
  assert keep.filter(_record(library, logging.WARNING))
  assert keep.filter(_record(library, logging.ERROR))


def test_progress_line_has_step_loss_accuracy_rate_and_eta():
  line = train._progress_line(
      50, 1700, {"loss": 0.69312, "accuracy": 0.5, "steps_per_sec": 2.0}
  )
  assert line == (
      "step 50/1700: loss 0.6931, accuracy 0.5000, 2.00 steps/s, ETA 13m45s"
  )
  hours = train._progress_line(0, 36000, {"steps_per_sec": 2.0})
  assert hours.endswith("ETA 5h00m")


def test_config_summary_is_one_line_naming_data_and_workdir():
  config = config_lib.base_config()
  config.data.synthetic = config_lib.synthetic_world_config()
  line = console.config_summary(config, "/tmp/w")
  assert "\n" not in line
  assert "task avc" in line and "model l3" in line
  assert "synthetic world (300 videos" in line and "workdir: /tmp/w" in line
