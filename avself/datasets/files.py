"""Reading the downloads: WAV files as int16 PCM, folders or zips in manual_dir.

The probe datasets store audio as the int16 samples the downloads hold, so a
built dataset is bit-exact with the files and half the size of float32. WAVs
are read with scipy.io.wavfile (no tensorflow-io, no ffmpeg).
"""

import os
from typing import Optional

import numpy as np
from scipy.io import wavfile

INT16_SCALE = 32768.0  # int16 / INT16_SCALE lies in [-1, 1)


def to_int16(samples: np.ndarray) -> np.ndarray:
  """Any WAV sample type (uint8, int16, int32, float) as int16."""
  if samples.dtype == np.int16:
    return samples
  if samples.dtype == np.uint8:  # 8-bit WAV is unsigned, centred on 128
    return ((samples.astype(np.int16) - 128) << 8).astype(np.int16)
  if samples.dtype == np.int32:  # 24/32-bit PCM: scipy left-justifies in int32
    return (samples >> 16).astype(np.int16)
  floats = np.clip(np.asarray(samples, np.float64), -1.0, 1.0)
  return np.round(floats * (INT16_SCALE - 1)).astype(np.int16)


def read_int16(path: str) -> tuple[int, np.ndarray]:
  """(sample_rate, int16 [N] or [N, C]) of a WAV file."""
  rate, samples = wavfile.read(path)
  return int(rate), to_int16(samples)


def write_int16(path: str, sample_rate: int, samples: np.ndarray) -> str:
  """Writes float samples in [-1, 1] ([N] or [N, C]) as 16-bit PCM; returns path."""
  wavfile.write(path, sample_rate, to_int16(np.asarray(samples, np.float32)))
  return path


def read_wav(
    path: str, sample_rate: int, channels: Optional[int] = None
) -> np.ndarray:
  """int16 [N] (mono) or [N, C] samples; raises on another sample rate.

  `channels=None` keeps the file's layout; 1 or 2 check it (a mono file is
  repeated to 2 channels, a common mix-up that loses nothing).
  """
  rate, samples = read_int16(path)
  if rate != sample_rate:
    raise ValueError(
        f"{path}: {rate} Hz, expected {sample_rate} Hz (the builder "
        "keeps the native rate and does not resample)"
    )
  have = 1 if samples.ndim == 1 else samples.shape[1]
  if channels is None or have == channels:
    return samples
  if have == 1 and channels == 2:
    return np.repeat(samples[:, None], 2, axis=1)
  raise ValueError(f"{path}: {have} channels, expected {channels}")


def find_folder(manual_dir: str, name: str, dl_manager=None) -> Optional[str]:
  """`manual_dir/name`, or the same folder inside an extracted `manual_dir/name.zip`.

  None when neither exists.
  """
  folder = os.path.join(manual_dir, name)
  if os.path.isdir(folder):
    return folder
  archive = folder + ".zip"
  if dl_manager is None or not os.path.isfile(archive):
    return None
  extracted = os.fspath(dl_manager.extract(archive))
  inner = os.path.join(extracted, name)
  return inner if os.path.isdir(inner) else extracted


def require_folder(manual_dir: str, name: str, dl_manager) -> str:
  """find_folder, or a FileNotFoundError that says what was expected where."""
  folder = find_folder(manual_dir, name, dl_manager)
  if folder is None:
    raise FileNotFoundError(
        f"Neither {os.path.join(manual_dir, name)}/ nor {name}.zip found in "
        f"{manual_dir}; see the manual download instructions in docs/datasets.md."
    )
  return folder
