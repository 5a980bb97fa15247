"""prepare on a user's own files: stereo downmix, clipping, labels, kills."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from avself.data import media
from avself.data import prepare
from avself.data import prepare_plan
from avself.data import records
import media_fixtures as mf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = dict(fps=4, shorter_side=16, num_shards=1)


def _stereo(path, amplitude, monkeypatch, codecs=None):
  """An 8 kHz stereo video whose two channels carry the same tone."""
  monkeypatch.setattr(mf, "LEFT_AMPLITUDE", amplitude)
  monkeypatch.setattr(mf, "RIGHT_AMPLITUDE", amplitude)
  return mf.write_video(
      str(path), 1.5, size=(32, 24), sample_rate=8000, channels=2, codecs=codecs
  )


def _waveforms(directory):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  out = []
  for f in records.list_shards(directory, "train"):
    for raw in tf.data.TFRecordDataset(f):
      out.append(records.parse(raw)["waveform"].numpy())
  return np.concatenate(out)


def test_loud_stereo_becomes_mono_without_clipping(tmp_path, monkeypatch):
  (tmp_path / "v").mkdir()
  _stereo(tmp_path / "v" / "loud.mp4", 0.93, monkeypatch)
  out = str(tmp_path / "out")
  manifest = prepare.prepare(
      str(tmp_path / "v"),
      out,
      workers=1,
      progress=False,
      sample_rate=8000,
      **FAST,
  )
  wave = _waveforms(out)
  full_scale = np.mean(np.abs(wave) >= 32767 / 32768)
  assert full_scale == 0.0  # libswresample's matrix put 42.5% there
  assert 0.85 < np.abs(wave).max() < 1.0
  assert manifest["warnings"] == []


def test_quiet_stereo_keeps_its_level_in_mono(tmp_path, monkeypatch):
  path = _stereo(tmp_path / "quiet.mp4", 0.2, monkeypatch)
  stereo = media.load_audio(path, 8000, channels=2)
  mono = media.load_audio(path, 8000, channels=1)
  rms = lambda x: float(np.sqrt(np.mean(np.square(x))))  # noqa: E731
  # The mean of two equal channels is that channel (it was +3 dB louder).
  gain_db = 20 * np.log10(rms(mono) / rms(stereo[:, 0]))
  assert abs(gain_db) < 0.2, gain_db


def test_audio_beyond_full_scale_is_reported_as_clipped(tmp_path, monkeypatch):
  (tmp_path / "v").mkdir()
  # Float PCM carries samples past +-1.0 to the decoder untouched.
  _stereo(
      tmp_path / "v" / "hot.mkv", 1.5, monkeypatch, ("libx264", "pcm_f32le")
  )
  manifest = prepare.prepare(
      str(tmp_path / "v"),
      str(tmp_path / "out"),
      workers=1,
      progress=False,
      sample_rate=8000,
      **FAST,
  )
  [warning] = manifest["warnings"]
  assert warning["file"] == "hot.mkv"
  assert "beyond full scale, clipped" in warning["detail"]
  assert "(1 with clipped audio)" in manifest["summary"]


def test_a_file_listed_twice_with_different_labels_is_refused(tmp_path):
  mf.write_video(str(tmp_path / "a.mp4"), 1.2, size=(32, 24))
  csv = tmp_path / "labels.csv"
  csv.write_text("file,label\na.mp4,cat\nb.mp4,dog\na.mp4,dog\n")
  with pytest.raises(prepare_plan.PrepareError, match="a.mp4 is listed twice"):
    prepare.prepare(
        str(tmp_path), str(tmp_path / "out"), str(csv), workers=1, **FAST
    )
  csv.write_text("file,label\na.mp4,cat\na.mp4,cat\n")  # same row twice: fine
  manifest = prepare.prepare(
      str(tmp_path),
      str(tmp_path / "out"),
      str(csv),
      workers=1,
      progress=False,
      test_fraction=0.0,
      **FAST,
  )
  assert manifest["splits"]["train"]["num_videos"] == 1


def test_a_failed_prepare_leaves_no_empty_shards(tmp_path):
  mf.write_garbage(str(tmp_path / "bad.mp4"))
  out = tmp_path / "out"
  with pytest.raises(prepare_plan.PrepareError, match="no usable videos"):
    prepare.prepare(str(tmp_path), str(out), workers=1, progress=False)
  assert not list(out.glob("*.tfrecord-*"))
  assert records.load_manifest(str(out))["skipped"][0]["file"] == "bad.mp4"


@pytest.fixture(scope="module")
def slow_videos(tmp_path_factory):
  """Videos that keep two workers busy for some seconds."""
  folder = tmp_path_factory.mktemp("slow")
  for i in range(24):
    mf.write_video(str(folder / f"v{i}.mp4"), 24.0, size=(320, 240))
  return folder


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killing_prepare_leaves_no_worker_behind(slow_videos, tmp_path, sig):
  proc = subprocess.Popen(
      [
          sys.executable,
          "-m",
          "avself.data.prepare",
          f"--videos={slow_videos}",
          f"--output={tmp_path / 'out'}",
          "--workers=2",
          "--fps=25",
          "--shorter_side=240",
          "--jpeg_quality=100",
          "--quiet",
      ],
      cwd=REPO,
      env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2"),
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
  )
  parent = psutil.Process(proc.pid)
  deadline = time.time() + 120
  while len(parent.children()) < 3 and time.time() < deadline:
    time.sleep(0.2)  # the resource tracker and 2 workers
  children = parent.children(recursive=True)
  assert len(children) >= 3 and proc.poll() is None
  time.sleep(0.5)  # the workers are decoding
  os.kill(proc.pid, sig)
  stdout, stderr = proc.communicate(timeout=60)
  _, alive = psutil.wait_procs(children, timeout=10)
  assert not alive, [p.cmdline() for p in alive]
  assert "prepared" not in stdout  # stopped while videos were left
  if sig == signal.SIGTERM:
    assert proc.returncode == 128 + signal.SIGTERM
    assert "prepare: stopped by signal 15" in stderr
