"""Audio-visual synchronisation (Owens & Efros 2018): is this sound aligned with these frames?

Examples come from the pipeline's `sync` mode. With `data.sync.paired=True`
(the default, as the authors' `both_examples`) every clip of frames brings its
aligned waveform (label 1) and a waveform of the same video shifted by
|shift| in [min_shift, max_shift] s (label 0), so each batch of B clips holds
2B examples, exactly half positive. With `paired=False` the pipeline draws one
of the two per clip and gives `label`.

The video branch runs once per clip, not once per example: its output is
shared by the aligned and the shifted audio, as in the authors' `shift_net.py`
(`make_net(None, samples1, im_net=net0.im_net)`). That is the same function
(and the same BatchNorm statistics: the 2B video inputs would be the B clips
twice) as running the whole net on a batch of 2B, for about half the video
cost, which dominates on CPU. Loss: sigmoid cross-entropy on the one logit.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from avself import config_lib


def data_mode(config) -> str:
  del config
  return "sync"


def build_model(config):
  """MultisensoryNet of `config.model` (width, conv5_stride, conv4_strides, stage_kernel,
  dtype)."""
  from avself.models import multisensory  # pylint: disable=g-import-not-at-top

  m = config.model
  if m.name != "multisensory":
    raise ValueError(
        f"config.model.name={m.name!r}: the sync task takes 'multisensory'"
    )
  return multisensory.MultisensoryNet(
      width=m.width,
      conv5_stride=m.get("conv5_stride", 2),
      conv4_strides=tuple(m.get("conv4_strides", (2, 2, 2))),
      stage_kernel=tuple(m.get("stage_kernel", (3, 3, 3))),
      dtype=config_lib.compute_dtype(m),
      remat=bool(m.get("remat", False)),
  )


def input_shapes(config) -> dict:
  """Per-example shapes of the model inputs: video [N, S, S, 3] and waveform [n, C]."""
  d = config.data
  num_samples = int(
      round(d.sync.clip_seconds * d.sample_rate)
  )  # as the pipeline
  channels = int(d.get("channels", 1))
  return {
      "video": (d.sync.num_frames, d.image_size, d.image_size, 3),
      "waveform": (num_samples, channels),
  }


def dummy_batch(config, batch_size: int) -> dict:
  """Zeros shaped like a (paired) batch, for init and compilation."""
  shapes = input_shapes(config)
  batch = {k: np.zeros((batch_size, *s), np.float32) for k, s in shapes.items()}
  if config.data.sync.get("paired", True):
    batch["shifted_waveform"] = np.zeros_like(batch["waveform"])
  else:
    batch["label"] = np.ones((batch_size,), np.int32)
  return batch


def init_key(rng):
  """An 'rbg' key derived from `rng` for parameter init (a function of rng, so still seeded)."""
  # XLA:CPU compiles this net's init ~4x faster with 'rbg' than with threefry
  # keys (150 s -> 40 s on the 2-core CI machine); the values need only be a
  # proper random init.
  if jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key):
    rng = jax.random.key_data(rng)
  data = jnp.asarray(rng, jnp.uint32).reshape(-1)
  return jax.random.wrap_key_data(
      jnp.tile(data, 4 // data.shape[0]), impl="rbg"
  )


def init(model, rng, batch):
  return model.init(
      {"params": init_key(rng)}, batch["video"], batch["waveform"], train=False
  )


def _shared_video_logits(module, video, waveforms, train: bool):
  """Video branch once, audio branch and fusion on every waveform: logits [K * B].

  video [B, N, H, W, 3]; waveforms [K * B, n, C] (K audio tracks per clip,
  track-major). The rest is MultisensoryNet.__call__ with a tiled video output.
  """
  video_features = module.video_branch(video, train)  # [B, T', h, w, C]
  copies = waveforms.shape[0] // video.shape[0]
  tiled = jnp.concatenate(
      [video_features] * copies, axis=0
  )  # [K * B, T', h, w, C]
  audio_features = module.audio_branch(
      waveforms, video_features.shape[1], train
  )
  features = module.fusion(tiled, audio_features, train)["scale3"]
  pooled = jnp.mean(features.astype(jnp.float32), axis=(1, 2, 3))
  return module.head(pooled)[:, 0]


def logits_and_labels(model, variables, batch, train: bool):
  """(logits [E], labels [E] float32, new model state); E = 2B paired, B otherwise."""
  mutable = ["batch_stats"] if train else False
  if "shifted_waveform" in batch:
    waveforms = jnp.concatenate(
        [batch["waveform"], batch["shifted_waveform"]], axis=0
    )
    b = batch["video"].shape[0]
    labels = jnp.concatenate([jnp.ones((b,)), jnp.zeros((b,))])
    out = model.apply(
        variables,
        batch["video"],
        waveforms,
        train,
        method=_shared_video_logits,
        mutable=mutable,
    )
  else:
    labels = batch["label"].astype(jnp.float32)
    out = model.apply(
        variables,
        batch["video"],
        batch["waveform"],
        train=train,
        mutable=mutable,
    )
    out = (out[0]["logit"], out[1]) if train else out["logit"]
  if train:
    logits, new_state = out
  else:
    logits, new_state = out, {
        k: v for k, v in variables.items() if k != "params"
    }
  return logits.astype(jnp.float32), labels, new_state


def loss_fn(model, params, model_state, batch, rng, train: bool):
  """Sigmoid cross-entropy of aligned (1) vs shifted (0); accuracy at logit 0."""
  del rng
  logits, labels, new_state = logits_and_labels(
      model, {"params": params, **model_state}, batch, train
  )
  loss = optax.sigmoid_binary_cross_entropy(logits, labels).mean()
  accuracy = ((logits > 0) == (labels > 0.5)).mean()
  return loss, ({"loss": loss, "accuracy": accuracy}, new_state)


def _take(mine: np.ndarray, theirs: np.ndarray, path: str) -> np.ndarray:
  """`theirs` where the shapes agree; the centre taps of a 3D kernel where this net's
  kernel is smaller (a (3, 1, 1) or (1, 1, 1) stage from a (3, 3, 3) one)."""
  if mine.shape == theirs.shape:
    return theirs
  if mine.ndim == 5 and mine.shape[3:] == theirs.shape[3:]:
    small, big = mine.shape[:3], theirs.shape[:3]
    if all(b >= m and (b - m) % 2 == 0 for m, b in zip(small, big)):
      return theirs[
          tuple(slice((b - m) // 2, (b + m) // 2) for m, b in zip(small, big))
      ]
  raise ValueError(
      f"{path}: shape {mine.shape} cannot take the sync run's {theirs.shape} "
      "(width and audio channels must match)"
  )


def restore_run(workdir: str):
  """(config, step, variables as numpy) of the latest checkpoint of a sync run."""
  from avself import checkpoint as ckpt_lib  # pylint: disable=g-import-not-at-top
  from avself import state as state_lib  # pylint: disable=g-import-not-at-top

  source_config, step = ckpt_lib.load_config(workdir)
  if source_config.task != "sync":
    raise ValueError(
        f"config.init_from={workdir!r} holds a {source_config.task!r} run, "
        "not a 'sync' one"
    )
  _, _, _, source = state_lib.restore(workdir, step)
  return (
      source_config,
      step,
      jax.device_get({"params": source.params, **source.model_state}),
  )


def warm_start(config, params, model_state):
  """Every parameter and BatchNorm statistic of the sync run in `config.init_from`
  (no-op when it is empty).

  The convs hold no frame size and no stride, so a sync net trained on small
  frames starts a CAM net with larger frames and fewer strides
  (configs/multisensory_cam_synthetic.py); where this net's stages have
  smaller kernels, they take the centre taps of the run's.
  """
  workdir = config.get("init_from") or ""
  if not workdir:
    return params, model_state
  _, step, theirs = restore_run(workdir)
  mine = jax.device_get({"params": params, **model_state})
  if jax.tree.structure(mine) != jax.tree.structure(theirs):
    raise ValueError(
        f"config.init_from={workdir!r}: its variables are not this net's"
    )
  taken = jax.tree_util.tree_map_with_path(
      lambda path, a, b: _take(
          np.asarray(a), np.asarray(b), jax.tree_util.keystr(path)
      ),
      mine,
      theirs,
  )
  logging.info("Sync net initialised from %s (step %d)", workdir, step)
  return taken["params"], {k: v for k, v in taken.items() if k != "params"}
