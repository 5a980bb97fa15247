"""Small tf ops for the input pipeline: decoding, augmentation, batching.

Each op works on tensors (or a dict of them), eagerly and inside tf.data.
Random ops take uniform [0, 1) draws instead of seeds: the draws are made once
per example, from the example's own random state (see `random_field`), so the
same state decides the frame, the audio window, the crop and the jitter.
"""

import tensorflow as tf

from avself.data import audio

# Columns of an example's `rand` vector: one uniform draw per random decision.
RANDOM_FIELDS = (
    "window",
    "frame",
    "crop_y",
    "crop_x",
    "flip",
    "brightness",
    "saturation",
    "gain",
    "pair",
    "shift",
    "shift_sign",
)
_GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601, as tf.image.rgb_to_grayscale


def random_field(rand: tf.Tensor, name: str) -> tf.Tensor:
  """The uniform draw for `name` from an example's random state `rand` [..., P]."""
  return rand[..., RANDOM_FIELDS.index(name)]


def draw_random_state(seed: tf.Tensor, num_examples: int) -> tf.Tensor:
  """Uniform draws [num_examples, len(RANDOM_FIELDS)], one row per example."""
  return tf.random.stateless_uniform(
      [num_examples, len(RANDOM_FIELDS)], seed=seed
  )


def uniform_int(u: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
  """Maps u in [0, 1) to an int64 in [0, count)."""
  count = tf.cast(count, tf.int64)
  index = tf.cast(
      tf.floor(tf.cast(u, tf.float64) * tf.cast(count, tf.float64)), tf.int64
  )
  return tf.clip_by_value(index, 0, tf.maximum(count - 1, 0))


# ### Images ##################################################################


def resized_shape(height, width, shorter: int):
  """(h, w) with the shorter side scaled to `shorter`, aspect kept."""
  scale = shorter / tf.cast(tf.minimum(height, width), tf.float32)
  new_h = tf.cast(tf.round(tf.cast(height, tf.float32) * scale), tf.int32)
  new_w = tf.cast(tf.round(tf.cast(width, tf.float32) * scale), tf.int32)
  return tf.maximum(new_h, shorter), tf.maximum(new_w, shorter)


def _crop_offset(length, size: int, u=None):
  """Crop start: uniform over [0, length - size] from u, or centred when u is None."""
  room = tf.maximum(length - size, 0)
  if u is None:
    return room // 2
  return tf.cast(uniform_int(u, room + 1), tf.int32)


def decode_crop(
    jpegs: tf.Tensor, *, size: int, resize_shorter: int, u_y=None, u_x=None
) -> tf.Tensor:
  """Decodes JPEGs (scalar or [N], one video) to size x size crops -> uint8 [(N,) S, S, 3].

  All frames share one crop window, random from (u_y, u_x) or centred, so a
  clip's frames stay registered. When the stored shorter side already equals
  `resize_shorter` (or it is 0) only the crop is decoded (`decode_and_crop_jpeg`,
  the fast path); otherwise each frame is decoded, resized (bilinear,
  antialiased) and cropped.
  """
  first = tf.reshape(jpegs, [-1])[0]
  shape = tf.io.extract_jpeg_shape(first)
  height, width = shape[0], shape[1]
  needs_resize = tf.constant(False)
  if resize_shorter:
    needs_resize = tf.minimum(height, width) != resize_shorter
    height, width = tf.cond(
        needs_resize,
        lambda: resized_shape(height, width, resize_shorter),
        lambda: (height, width),
    )
  y, x = _crop_offset(height, size, u_y), _crop_offset(width, size, u_x)

  def resize_then_crop(jpeg):
    image = tf.image.resize(
        tf.io.decode_jpeg(jpeg, channels=3), [height, width], antialias=True
    )
    image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    return image[y : y + size, x : x + size]

  def decode(jpeg):
    image = tf.cond(
        needs_resize,
        lambda: resize_then_crop(jpeg),
        lambda: tf.io.decode_and_crop_jpeg(
            jpeg, tf.stack([y, x, size, size]), channels=3
        ),
    )
    return tf.ensure_shape(image, [size, size, 3])

  if jpegs.shape.rank == 0:
    return decode(jpegs)
  return tf.map_fn(
      decode,
      jpegs,
      fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8),
  )


def maybe_flip(images: tf.Tensor, u) -> tf.Tensor:
  """Mirrors [..., H, W, 3] left-right when u < 0.5."""
  return tf.cond(u < 0.5, lambda: tf.reverse(images, axis=[-2]), lambda: images)


def _per_example(values: tf.Tensor, rank: int) -> tf.Tensor:
  """Reshapes [B] to [B, 1, ..., 1] to broadcast over a rank-`rank` batch."""
  return tf.reshape(values, [-1] + [1] * (rank - 1))


# XLA fuses the cast, the jitter and the rescale into one pass over the batch
# (a quarter of the CPU time of the op-by-op graph).
@tf.function(jit_compile=True)
def finish_images(
    images: tf.Tensor, brightness=None, saturation=None
) -> tf.Tensor:
  """uint8 [B, ..., 3] -> float32 in [-1, 1], with optional per-example jitter.

  `brightness` [B] is added on the [0, 1] scale; `saturation` [B] scales the
  distance from the grey image (PIL's ImageEnhance.Color: a blend, cheaper than
  tf.image's HSV round trip and the same for factors near 1).
  """
  x = tf.cast(images, tf.float32) * (1.0 / 255.0)
  rank = images.shape.rank
  if brightness is not None:
    x = x + _per_example(brightness, rank)
  if saturation is not None:
    r, g, b = tf.unstack(x, axis=-1)
    gray = (_GRAY_WEIGHTS[0] * r + _GRAY_WEIGHTS[1] * g + _GRAY_WEIGHTS[2] * b)[
        ..., None
    ]
    x = gray + _per_example(saturation, rank) * (x - gray)
  if brightness is not None or saturation is not None:
    x = tf.clip_by_value(x, 0.0, 1.0)
  return x * 2.0 - 1.0


def jitter_factors(rand: tf.Tensor, augment) -> dict:
  """Per-example brightness deltas, saturation and gain factors from draws [B, P]."""

  def symmetric(name, amount):  # uniform in [-amount, amount]
    return (2.0 * random_field(rand, name) - 1.0) * amount

  return dict(
      brightness=symmetric("brightness", augment.brightness),
      saturation=1.0 + symmetric("saturation", augment.saturation),
      gain=1.0 + symmetric("gain", augment.audio_gain),
  )


# ### Audio ###################################################################


def slice_windows(
    waveform: tf.Tensor, starts: tf.Tensor, length: int
) -> tf.Tensor:
  """Windows [K, length, C] of waveform [N, C] at starts [K] (K static).

  Slices the flat samples: contiguous 1-D slices are ~3x cheaper than 2-D ones
  and ~5x cheaper than a per-sample gather.
  """
  channels = tf.shape(waveform, out_type=tf.int64)[1]
  flat = tf.reshape(waveform, [-1])
  size = tf.reshape(length * channels, [1])
  return tf.stack(
      [
          tf.reshape(
              tf.slice(flat, tf.reshape(starts[i] * channels, [1]), size),
              [length, -1],
          )
          for i in range(starts.shape[0])
      ]
  )


def mono(waveform: tf.Tensor) -> tf.Tensor:
  """Averages channels [..., n, C] -> [..., n, 1]; no pass over the samples when C = 1."""
  waveform = tf.convert_to_tensor(waveform)
  mixed = tf.cond(
      tf.shape(waveform)[-1] == 1,
      lambda: waveform,
      lambda: tf.reduce_mean(waveform, axis=-1, keepdims=True),
  )
  return tf.ensure_shape(mixed, waveform.shape[:-1].concatenate([1]))


def circular(waveform: tf.Tensor, period, length: int) -> tf.Tensor:
  """waveform[:period] followed by its first `length` samples: slices wrap around."""
  return tf.concat([waveform[:period], waveform[:length]], axis=0)


def spectrogram_batch(
    waveform: tf.Tensor, spec_config, sample_rate: int, gain=None
) -> tf.Tensor:
  """Batched spectrogram: waveform [B, N, C] -> [B, F, T, 1] (mono) or [B, F, T, C].

  `gain` [B] scales each example's amplitude (applied to the STFT magnitude,
  which is the same as scaling the waveform).
  """
  if spec_config.kind == "waveform":  # raw audio: [B, N, 1] (mono) or [B, N, C]
    mixed = mono(waveform) if spec_config.mono else waveform
    return mixed if gain is None else mixed * gain[:, None, None]
  if spec_config.mono:
    return audio.spectrogram(
        audio.to_mono(waveform), spec_config, sample_rate=sample_rate, gain=gain
    )[..., None]
  channels_first = tf.transpose(waveform, [0, 2, 1])  # [B, C, N]
  gain = None if gain is None else gain[:, None]
  spec = audio.spectrogram(
      channels_first, spec_config, sample_rate=sample_rate, gain=gain
  )
  return tf.transpose(spec, [0, 2, 3, 1])  # [B, C, F, T] -> [B, F, T, C]


# ### Batches #################################################################


def pad_batch(batch: dict, batch_size: int) -> dict:
  """Pads a short final batch to `batch_size` with zeros and adds `mask`."""
  real = tf.shape(next(iter(batch.values())))[0]
  out = {}
  for key, value in batch.items():
    paddings = [[0, batch_size - real]] + [[0, 0]] * (value.shape.rank - 1)
    padded = tf.pad(value, paddings)
    out[key] = tf.ensure_shape(padded, [batch_size] + value.shape[1:].as_list())
  out["mask"] = tf.cast(tf.range(batch_size) < real, tf.int32)
  return out
