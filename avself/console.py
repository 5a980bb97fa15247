"""What a run prints: avself's own INFO lines and every warning, in a few lines."""

import logging as std_logging
import os

from absl import logging

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class _AvselfInfoOnly(std_logging.Filter):
  """Lets through avself's INFO lines and every library's warnings and errors."""

  def filter(self, record: std_logging.LogRecord) -> bool:
    return record.levelno >= std_logging.WARNING or record.pathname.startswith(
        _PACKAGE_DIR
    )


def quiet_library_logs() -> None:
  """Library INFO lines (orbax's checkpoint manager, clu's writers, jax's
  backend probing) go below the console; their warnings still show."""
  logging.get_absl_handler().addFilter(_AvselfInfoOnly())


def config_summary(config, workdir: str) -> str:
  """One line: what this run trains, on what, for how long, and where."""
  data = config.data
  if data.get("path"):
    source = data.path
  elif data.get("synthetic"):
    source = f"synthetic world ({data.synthetic.num_videos} videos, cached)"
  else:
    source = "?"
  return (
      f"avself: task {config.task}, model {config.model.name} "
      f"(width {config.model.width}), batch {config.batch_size}, "
      f"{config.total_steps} steps, {config.optimizer.name} "
      f"lr {config.optimizer.learning_rate:g} ({config.optimizer.schedule}); "
      f"data: {source}; evals: {', '.join(config.get('evals') or {}) or 'none'}; "
      f"workdir: {workdir}"
  )
