r"""Vision teachers for SoundNet: class posteriors of every frame, stored beside the records.

SoundNet (Aytar et al. 2016, Sec. 3) trains its audio net to match, by KL
divergence, the class distributions that image networks give the video's
frames. The teacher is data, not code in the training loop: this command runs
a classifier over the prepared records' frames once and writes an
`avself.data.targets` table (one posterior per frame, keyed by record id and
checked against the frames):

  python -m avself.data.teacher classify --records=/data/records --split=train \
      --classifier=keras:/models/resnet50_imagenet.keras --keras_preprocess=caffe \
      --image_size=224 --resize_shorter=256 [--output=/data/records/train.teacher-imagenet.npz]

Classifiers:
  keras:PATH  a Keras model file or SavedModel directory (tf.keras.models.
              load_model) that outputs class probabilities, e.g. an ImageNet
              ResNet from keras.applications saved with `model.save`; frames
              are centre-cropped to --image_size and prepared by
              keras.applications.imagenet_utils.preprocess_input(mode=
              --keras_preprocess: 'caffe', 'tf' or 'torch', as the model was
              trained). A Places365 model converted to Keras works the same.
  flax:DIR    a Flax classifier written by `train_demo` (the demo teacher).

Two teachers (ImageNet objects and Places scenes, as in the paper): run the
command twice and join the tables with `concatenate_tables`; the SoundNet
config then lists both class counts in `model.teacher_classes`.

The demo teacher (`train_demo`): a small VGG classifier trained on the
synthetic world's labelled *training* frames. Only it sees labels; SoundNet
sees its posteriors on the same frames, never the labels.
"""

import json
import os
from typing import Callable

from absl import app
from absl import flags
from absl import logging
import numpy as np

from avself.data import targets

_PREPROCESS = ("caffe", "tf", "torch")


################################################################################
# Classifiers: uint8 frames [B, S, S, 3] -> probabilities [B, K].
################################################################################


def _demo_model(num_classes: int, width: float):
  import flax.linen as nn  # pylint: disable=g-import-not-at-top

  from avself.models.vgg import VGGTrunk  # pylint: disable=g-import-not-at-top

  class DemoClassifier(nn.Module):
    """VGG trunk -> linear classifier over its pooled features."""

    @nn.compact
    def __call__(self, image, train: bool):
      pooled = VGGTrunk(width=width, name="vision_trunk")(image, train)[
          "pooled"
      ]
      return nn.Dense(num_classes, name="classifier")(pooled)

  return DemoClassifier()


def train_demo(
    data_config,
    out_dir: str,
    *,
    steps: int = 400,
    batch_size: int = 64,
    width: float = 0.25,
    learning_rate: float = 2e-3,
    seed: int = 0,
) -> str:
  """Trains the demo classifier on the train split's labelled frames; returns `out_dir`."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from flax import serialization  # pylint: disable=g-import-not-at-top

  from avself.data import pipeline  # pylint: disable=g-import-not-at-top
  from avself.data import records  # pylint: disable=g-import-not-at-top

  cfg = ml_collections.ConfigDict(data_config.to_dict())
  cfg.spectrogram.kind = "waveform"  # the audio is not used: skip the STFT
  names = (records.load_manifest(cfg.path) or {}).get("label_names") or []
  if not names:
    raise ValueError(
        f"the demo teacher needs labelled records; {cfg.path} has no label names"
    )
  model = _demo_model(len(names), width)
  ds = pipeline.make_dataset(
      cfg,
      mode="pairs",
      split=cfg.train_split,
      batch_size=batch_size,
      train=True,
      seed=seed,
      process_index=0,
      process_count=1,
  )
  shape = (1, cfg.image_size, cfg.image_size, 3)
  variables = model.init(jax.random.key(seed), jnp.zeros(shape), False)
  tx = optax.adam(optax.cosine_decay_schedule(learning_rate, steps))
  opt_state = tx.init(variables["params"])

  @jax.jit
  def step(variables, opt_state, image, label):
    def loss_fn(params):
      logits, state = model.apply(
          {**variables, "params": params},
          image,
          True,
          mutable=["batch_stats"],
      )
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, label)
      return loss.mean(), (state, (logits.argmax(-1) == label).mean())

    (loss, (state, acc)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        variables["params"]
    )
    updates, opt_state = tx.update(grads, opt_state)
    params = optax.apply_updates(variables["params"], updates)
    return {"params": params, **state}, opt_state, loss, acc

  for i, batch in zip(range(steps), ds.as_numpy_iterator()):
    variables, opt_state, loss, acc = step(
        variables, opt_state, batch["image"], batch["class_label"]
    )
    if (i + 1) % 50 == 0 or i + 1 == steps:
      logging.info(
          "demo teacher step %d: loss %.3f, train accuracy %.3f",
          i + 1,
          loss,
          acc,
      )
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, "classifier.msgpack"), "wb") as f:
    f.write(serialization.to_bytes(jax.device_get(variables)))
  with open(os.path.join(out_dir, "classifier.json"), "w") as f:
    json.dump(
        dict(
            kind="avself demo VGG classifier",
            width=width,
            image_size=int(cfg.image_size),
            resize_shorter=int(cfg.resize_shorter),
            class_names=list(names),
            steps=steps,
            train_records=os.path.abspath(cfg.path),
        ),
        f,
        indent=2,
    )
  return out_dir


def load_flax(directory: str) -> tuple[Callable, dict]:
  """The demo classifier in `directory`: (probabilities fn, its json)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from flax import serialization  # pylint: disable=g-import-not-at-top

  with open(os.path.join(directory, "classifier.json")) as f:
    info = json.load(f)
  model = _demo_model(len(info["class_names"]), info["width"])
  size = info["image_size"]
  template = model.init(jax.random.key(0), jnp.zeros((1, size, size, 3)), False)
  with open(os.path.join(directory, "classifier.msgpack"), "rb") as f:
    variables = serialization.from_bytes(template, f.read())

  @jax.jit
  def probabilities(images):  # uint8 [B, S, S, 3]
    x = images.astype(jnp.float32) / 127.5 - 1.0  # as the pipeline's frames
    return jax.nn.softmax(model.apply(variables, x, False), axis=-1)

  return lambda images: np.asarray(probabilities(images)), info


def load_keras(path: str, preprocess: str) -> tuple[Callable, dict]:
  """A Keras classifier that outputs probabilities: (probabilities fn, its info)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  if preprocess not in _PREPROCESS:
    raise ValueError(
        f"--keras_preprocess must be one of {_PREPROCESS}, got {preprocess!r}"
    )
  model = tf.keras.models.load_model(path, compile=False)
  preprocess_input = tf.keras.applications.imagenet_utils.preprocess_input

  def probabilities(images):
    x = preprocess_input(images.astype(np.float32), mode=preprocess)
    return np.asarray(model(x, training=False))

  size = model.input_shape[1]
  return probabilities, dict(kind="keras", path=path, image_size=size)


def load_classifier(spec: str, keras_preprocess: str = "caffe"):
  """`flax:DIR` or `keras:PATH` -> (probabilities fn, info)."""
  kind, _, path = spec.partition(":")
  if kind == "flax":
    return load_flax(path)
  if kind == "keras":
    return load_keras(path, keras_preprocess)
  raise ValueError(f"--classifier must be flax:DIR or keras:PATH, got {spec!r}")


################################################################################
# Running a classifier over records.
################################################################################


def classify_records(
    records_dir: str,
    split: str,
    probabilities: Callable,
    output: str,
    *,
    image_size: int,
    resize_shorter: int,
    batch_size: int = 256,
    meta=None,
) -> str:
  """Posteriors of every frame of `split`'s records (centre crops) -> a targets table."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from avself.data import ops  # pylint: disable=g-import-not-at-top

  @tf.function
  def decode(frames):
    return tf.map_fn(
        lambda jpeg: ops.decode_crop(
            jpeg, size=image_size, resize_shorter=resize_shorter
        ),
        frames,
        fn_output_signature=tf.TensorSpec(
            [image_size, image_size, 3], tf.uint8
        ),
    )

  ids, prints, rows = [], [], []
  for video in targets.read_videos(records_dir, split):
    images = decode(video["frames"]).numpy()
    rows.append(
        np.concatenate(
            [
                probabilities(images[i : i + batch_size])
                for i in range(0, len(images), batch_size)
            ]
        )
    )
    ids.append(video["video_id"])
    prints.append(int(video["fingerprint"]))
  logging.info(
      "Teacher posteriors of %d frames of %d videos -> %s",
      sum(len(r) for r in rows),
      len(rows),
      output,
  )
  return targets.save_table(
      output, ids, prints, rows, dict(meta or {}, records=records_dir)
  )


def concatenate_tables(paths: list, output: str) -> str:
  """Joins the class axes of tables over the same records (two teachers -> one table)."""
  tables = [targets.load_table(p) for p in paths]
  first = tables[0]
  for path, t in zip(paths[1:], tables[1:]):
    if not (
        np.array_equal(t["video_id"], first["video_id"])
        and np.array_equal(t["fingerprint"], first["fingerprint"])
    ):
      raise ValueError(f"{path} covers other records than {paths[0]}")
  rows = np.concatenate([t["rows"] for t in tables], axis=1)
  split = np.split(rows, first["offset"][1:])
  meta = dict(teachers=[t["meta"] for t in tables])
  meta["classes"] = [int(t["rows"].shape[1]) for t in tables]
  return targets.save_table(
      output, list(first["video_id"]), list(first["fingerprint"]), split, meta
  )


def ensure_demo_teacher(config, **train_kwargs) -> str:
  """The demo teacher's table for the train split (trained and run once, cached beside the records)."""
  import hashlib  # pylint: disable=g-import-not-at-top

  from avself.data import synthetic_records  # pylint: disable=g-import-not-at-top

  d = config.data
  t = config.teacher
  key = hashlib.sha1(
      json.dumps(
          dict(t.to_dict(), image_size=d.image_size, shorter=d.resize_shorter),
          sort_keys=True,
      ).encode()
  ).hexdigest()[:8]
  root = os.path.join(d.path, f"teacher-demo-{key}")
  table = os.path.join(root, f"{d.train_split}.teacher.npz")
  with synthetic_records.building(root):
    if not os.path.exists(table):
      train_demo(
          d,
          root,
          steps=t.steps,
          batch_size=t.batch_size,
          width=t.width,
          learning_rate=t.learning_rate,
          seed=t.seed,
          **train_kwargs,
      )
      probabilities, info = load_flax(root)
      classify_records(
          d.path,
          d.train_split,
          probabilities,
          table,
          image_size=d.image_size,
          resize_shorter=d.resize_shorter,
          meta=dict(classifier=f"flax:{root}", class_names=info["class_names"]),
      )
  return table


################################################################################
# Command line.
################################################################################

FLAGS = flags.FLAGS


def _define_flags():
  """Command-line flags (defined only when run as a command: the library
  modules are imported together)."""
  flags.DEFINE_string("records", None, "Records folder (avself.data.prepare).")
  flags.DEFINE_string("split", "train", "Split whose frames are classified.")
  flags.DEFINE_string("classifier", None, "keras:PATH or flax:DIR.")
  flags.DEFINE_string(
      "keras_preprocess",
      "caffe",
      "keras:PATH input preparation (caffe|tf|torch).",
  )
  flags.DEFINE_integer("image_size", 224, "Centre crop fed to the classifier.")
  flags.DEFINE_integer("resize_shorter", 256, "Shorter side before cropping.")
  flags.DEFINE_string(
      "output", None, "Table path (default RECORDS/SPLIT.teacher-NAME.npz)."
  )
  flags.DEFINE_multi_string("tables", [], "concatenate: the tables to join.")


def main(argv):
  if len(argv) != 2 or argv[1] not in ("classify", "concatenate"):
    raise app.UsageError("usage: teacher.py classify|concatenate --flags")
  if argv[1] == "concatenate":
    print(concatenate_tables(FLAGS.tables, FLAGS.output))
    return
  if not FLAGS.records or not FLAGS.classifier:
    raise app.UsageError("--records and --classifier are required")
  probabilities, info = load_classifier(
      FLAGS.classifier, FLAGS.keras_preprocess
  )
  size = info.get("image_size") or FLAGS.image_size
  name = os.path.splitext(os.path.basename(FLAGS.classifier.rstrip("/")))[0]
  output = FLAGS.output or os.path.join(
      FLAGS.records, f"{FLAGS.split}.teacher-{name}.npz"
  )
  print(
      classify_records(
          FLAGS.records,
          FLAGS.split,
          probabilities,
          output,
          image_size=size,
          resize_shorter=info.get("resize_shorter") or FLAGS.resize_shorter,
          meta=dict(classifier=FLAGS.classifier, info=info),
      )
  )


if __name__ == "__main__":
  _define_flags()
  app.run(main)
