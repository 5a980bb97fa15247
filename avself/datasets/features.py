"""A TFDS feature the builders need that TFDS lacks."""

import numpy as np
import tensorflow_datasets as tfds


class PcmAudio(tfds.features.Audio):
  """`tfds.features.Audio` that honours `encoding` for arrays.

  TFDS 4.9's Audio stores a numpy array unencoded, whatever `encoding` says, and
  serialisation then fails; int16 samples as raw bytes (`Encoding.BYTES`) take
  2 bytes each, where the default int64 varints take up to 10.
  """

  def encode_example(self, audio_or_path_or_fobj):
    if isinstance(audio_or_path_or_fobj, np.ndarray):
      return tfds.features.Tensor.encode_example(self, audio_or_path_or_fobj)
    return super().encode_example(audio_or_path_or_fobj)


def pcm_audio(sample_rate: int, channels: int = 1) -> PcmAudio:
  """int16 PCM audio, [N] (mono) or [N, channels], stored as raw bytes."""
  shape = (None,) if channels == 1 else (None, channels)
  return PcmAudio(
      shape=shape,
      dtype=np.int16,
      sample_rate=sample_rate,
      encoding=tfds.features.Encoding.BYTES,
  )
