"""Frozen transfer features of the trained and the random-init networks."""

import json
from typing import Sequence


def transfer_features(
    model, variables, batch, *, modalities: Sequence[str]
) -> dict:
  """{'<modality>': transfer features [B, D] float32} from the trunks' conv4_2."""
  from avself.models import l3  # pylint: disable=g-import-not-at-top

  out = {}
  if "audio" in modalities:
    trunk = model.apply(variables, batch["audio"], method=model.embed_audio)
    # A trunk that defines its own transfer features (SoundNet) gives them.
    out["audio"] = trunk.get("transfer", None)
    if out["audio"] is None:
      out["audio"] = l3.audio_transfer_features(trunk)
  if "vision" in modalities:
    trunk = model.apply(variables, batch["image"], method=model.embed_vision)
    out["vision"] = l3.vision_transfer_features(trunk)
  return out


def per_network(model, variables_by_net: dict, batch, *, modalities) -> dict:
  """Features of several networks (same model, different variables) in one pass."""
  return {
      f"{net}/{name}": value
      for net, variables in variables_by_net.items()
      for name, value in transfer_features(
          model, variables, batch, modalities=modalities
      ).items()
  }


def variables_of(state) -> dict:
  """Flax variables {'params', 'batch_stats', ...} of a train state."""
  return {"params": state.params, **state.model_state}


# One random-init network per process, shared by the probes of an evaluation
# (audio and vision score the same baseline net, initialised once).
_RANDOM_INIT: dict = {}


def _network_key(config) -> str:
  """What decides the random network: the task, the model config, the input shapes."""
  from avself import tasks  # pylint: disable=g-import-not-at-top

  inputs = {
      k: v.shape
      for k, v in tasks.get_task(config.task).dummy_batch(config, 1).items()
  }
  return json.dumps(
      {"task": config.task, "model": config.model.to_dict(), "inputs": inputs},
      sort_keys=True,
      default=str,
  )


def random_init_variables(config, seed: int, mesh) -> dict:
  """Variables of `state.random_init(config, seed)`, the paper's "ours random" net."""
  key = (_network_key(config), seed, mesh)
  if key not in _RANDOM_INIT:
    from avself import state as state_lib  # pylint: disable=g-import-not-at-top

    _RANDOM_INIT.clear()  # hold one network at most
    _, _, state = state_lib.random_init(config, mesh=mesh, seed=seed)
    _RANDOM_INIT[key] = variables_of(state)
  return _RANDOM_INIT[key]
