"""Every task module fills in the `avself.tasks.Task` protocol."""

import importlib
import inspect
import pkgutil

import pytest

from avself import config_lib
from avself import tasks
from avself.data import pipeline

TASK_NAMES = sorted(
    m.name for m in pkgutil.iter_modules(tasks.__path__) if not m.ispkg
)
WARM_STARTS = {"action", "separation", "sync"}
PREPARES_DATA = {"ambient", "soundnet", "sonorize"}


def _members(protocol) -> list[str]:
  return [
      name
      for name, value in vars(protocol).items()
      if inspect.isfunction(value) and not name.startswith("_")
  ]


def test_every_task_is_found():
  assert set(TASK_NAMES) >= {
      "action",
      "avc",
      "avol",
      "contrastive",
      "crossmodal",
      "sync",
  }


@pytest.mark.parametrize("name", TASK_NAMES)
def test_task_module_fills_in_the_protocol(name):
  module = tasks.get_task(name)
  assert module is importlib.import_module(f"avself.tasks.{name}")
  assert isinstance(module, tasks.Task)
  for member in _members(tasks.Task):
    want = list(inspect.signature(getattr(tasks.Task, member)).parameters)
    got = list(inspect.signature(getattr(module, member)).parameters)
    assert got == want[1:], f"avself.tasks.{name}.{member}{tuple(got)}"


@pytest.mark.parametrize("name", TASK_NAMES)
def test_warm_start_is_optional_and_typed(name):
  module = tasks.get_task(name)
  assert isinstance(module, tasks.WarmStartTask) == (name in WARM_STARTS)
  if name in WARM_STARTS:
    want = list(inspect.signature(tasks.WarmStartTask.warm_start).parameters)
    got = list(inspect.signature(module.warm_start).parameters)
    assert got == want[1:]


@pytest.mark.parametrize("name", TASK_NAMES)
def test_prepare_data_is_optional_and_typed(name):
  module = tasks.get_task(name)
  assert isinstance(module, tasks.PrepareDataTask) == (name in PREPARES_DATA)
  if name in PREPARES_DATA:
    want = list(
        inspect.signature(tasks.PrepareDataTask.prepare_data).parameters
    )
    got = list(inspect.signature(module.prepare_data).parameters)
    assert got == want[1:]


def test_protocol_members_have_docstrings():
  for protocol in (tasks.Task, tasks.WarmStartTask, tasks.PrepareDataTask):
    for member in _members(protocol):
      assert getattr(protocol, member).__doc__, member


def test_a_module_missing_a_member_is_not_a_task():
  partial = type("Partial", (), {"data_mode": staticmethod(lambda c: "avc")})
  assert not isinstance(partial(), tasks.Task)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_data_mode_is_a_pipeline_mode(name):
  module = tasks.get_task(name)
  config = config_lib.base_config()
  config.task = name
  assert module.data_mode(config) in pipeline.MODES
