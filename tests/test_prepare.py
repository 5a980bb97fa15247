"""Tests for avself.data.prepare and avself.data.media on tiny real videos."""

import io
import math
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from avself.data import media
from avself.data import prepare
from avself.data import prepare_plan
from avself.data import prepare_workers
from avself.data import records
import media_fixtures as mf

# Small outputs keep JPEG and resampling cheap.
FAST = dict(fps=8, shorter_side=32, sample_rate=16000, num_shards=2)
GOOD = {  # name: (seconds, label, split)
    "a_cat.mp4": (2.0, "cat", "train"),
    "b_dog.mp4": (1.6, "dog", "train"),
    "c_cat.mkv": (1.2, "cat", "test"),
    "d_dog.webm": (1.5, "dog", "train"),
}
BAD = {  # name: skip reason
    "noaudio.mp4": "no_audio",
    "truncated.mp4": "undecodable",  # moov atom cut off: nothing to read
    "empty.mp4": "empty",
    "garbage.avi": "undecodable",
    "short.mp4": "too_short",
}


def read_split(directory: str, split: str) -> list[dict]:
  """Every record of a split, parsed to numpy."""
  files = records.list_shards(directory, split)
  return [
      {k: v.numpy() for k, v in records.parse(s).items()}
      for s in tf.data.TFRecordDataset(files)
  ]


def frame_levels(jpegs) -> tuple[list[int], tuple]:
  """Mean grey level of each JPEG frame, and the frames' (height, width)."""
  images = [np.asarray(Image.open(io.BytesIO(j))) for j in jpegs]
  return [int(round(i.mean())) for i in images], images[0].shape[:2]


def nearest_source(level: int) -> int:
  """Index (mod LEVEL_PERIOD) of the fixture frame with this grey level."""
  return int(
      np.argmin(
          [abs(level - mf.frame_level(i)) for i in range(mf.LEVEL_PERIOD)]
      )
  )


def expected_sources(k: int, fps: float, source_fps: float = 25) -> set:
  """Source frames nearest to target time k / fps (both on an exact tie)."""
  x = k * source_fps / fps
  if abs(x - math.floor(x) - 0.5) < 1e-9:
    return {math.floor(x) % mf.LEVEL_PERIOD, math.ceil(x) % mf.LEVEL_PERIOD}
  return {round(x) % mf.LEVEL_PERIOD}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  """A folder laid out like the synthetic world: DIR/videos + DIR/labels.csv."""
  root = tmp_path_factory.mktemp("world")
  videos = root / "videos"
  videos.mkdir()
  for name, (seconds, _, _) in GOOD.items():
    mf.write_video(str(videos / name), seconds, size=(64, 48))
  mf.write_video(str(videos / "noaudio.mp4"), 1.5, size=(64, 48), audio=False)
  mf.truncate(
      mf.write_video(str(videos / "truncated.mp4"), 2.0, size=(64, 48)), 0.5
  )
  mf.truncate(
      mf.write_video(str(videos / "partial.mkv"), 3.0, size=(64, 48)), 0.6
  )
  mf.write_empty(str(videos / "empty.mp4"))
  mf.write_garbage(str(videos / "garbage.avi"))
  mf.write_video(str(videos / "short.mp4"), 0.4, size=(64, 48))
  rows = [
      f"videos/{n},{label},{split}" for n, (_, label, split) in GOOD.items()
  ]
  rows += [f"videos/{n},cat,train" for n in BAD] + ["partial.mkv,dog,"]
  (root / "labels.csv").write_text(
      "file,label,split\n" + "\n".join(rows) + "\n"
  )
  return root


@pytest.fixture(scope="module")
def prepared(dataset, tmp_path_factory):
  """The dataset prepared once with two spawned workers."""
  out = str(tmp_path_factory.mktemp("records"))
  manifest = prepare.prepare(
      str(dataset / "videos"),
      out,
      str(dataset / "labels.csv"),
      workers=2,
      progress=False,
      **FAST,
  )
  return out, manifest


def test_manifest_counts_skips_and_summary(prepared):
  out, manifest = prepared
  partial_split = prepare_plan.hash_split("partial.mkv", 0.1)
  train_names = {n for n, v in GOOD.items() if v[2] == "train"}
  expected_train = len(train_names) + (partial_split == "train")
  assert manifest["splits"]["train"]["num_videos"] == expected_train
  assert manifest["splits"]["test"]["num_videos"] == 1 + (
      partial_split == "test"
  )
  assert manifest["splits"]["train"]["shards"] == 2
  assert manifest["splits"]["test"]["shards"] == 1
  assert {s["file"]: s["reason"] for s in manifest["skipped"]} == BAD
  assert all(s["detail"] for s in manifest["skipped"])
  assert (
      "skipped 5: empty=1, no_audio=1, too_short=1, undecodable=2"
      in manifest["summary"]
  )
  assert manifest["summary"].startswith(f"prepared {len(GOOD) + 1} videos (")
  assert [w["file"] for w in manifest["warnings"]] == ["partial.mkv"]
  assert manifest["label_names"] == ["cat", "dog"]
  for key, value in FAST.items():
    assert manifest["options"][key] == value
  assert (manifest["fps"], manifest["sample_rate"], manifest["channels"]) == (
      8,
      16000,
      1,
  )
  assert manifest["schema_version"] == records.SCHEMA_VERSION
  assert records.load_manifest(out) == manifest


def test_records_parse_back(prepared):
  out, manifest = prepared
  labels = {n: manifest["label_names"].index(v[1]) for n, v in GOOD.items()}
  seen = {}
  for split in ("train", "test"):
    for rec in read_split(out, split):
      name = rec["filename"].decode()
      seen[name] = split
      seconds = (rec["end_us"] - rec["start_us"]) / 1e6
      levels, (height, width) = frame_levels(rec["frames"])
      assert min(height, width) == 32 and width == round(32 * 64 / 48)
      assert len(levels) == math.ceil(
          seconds * 8 - 1e-3
      )  # timestamps are in µs
      assert (
          abs(len(rec["waveform"]) - seconds * 16000) <= 1
          and rec["waveform"].shape[1] == 1
      )
      assert (rec["sample_rate"], rec["channels"], rec["fps"]) == (16000, 1, 8)
      if name in GOOD:
        assert rec["label"] == labels[name]
        assert abs(seconds - GOOD[name][0]) < 0.06  # codec padding only
        rms = np.sqrt(np.mean(rec["waveform"][1000:-1000] ** 2))
        assert abs(rms - mf.LEFT_AMPLITUDE / np.sqrt(2)) < 0.05
        for k, level in enumerate(
            levels
        ):  # each frame is the nearest source frame
          assert nearest_source(level) in expected_sources(k, 8), (name, k)
      else:  # the partially decoded mkv: kept, shorter than the 3 s it claims
        assert name == "partial.mkv" and 1.0 < seconds < 2.5
        assert rec["label"] == manifest["label_names"].index("dog")
  assert {n: s for n, s in seen.items() if n in GOOD} == {
      n: v[2] for n, v in GOOD.items()
  }
  assert seen["partial.mkv"] == prepare_plan.hash_split("partial.mkv", 0.1)


def test_resume_skips_complete_shards_and_rebuilds_deleted(
    dataset, tmp_path, monkeypatch
):
  out = str(tmp_path / "out")
  videos = [
      str(dataset / "videos" / n)
      for n in ("a_cat.mp4", "b_dog.mp4", "c_cat.mkv")
  ]
  options = dict(FAST, num_shards=3, test_fraction=0.0)
  first = prepare.prepare(videos, out, workers=1, progress=False, **options)
  shards = records.list_shards(out, "train")
  assert len(shards) == 3
  mtimes = {p: os.stat(p).st_mtime_ns for p in shards}

  decoded = []
  real = prepare_workers.prepare_video
  monkeypatch.setattr(
      prepare_workers,
      "prepare_video",
      lambda path, *a: decoded.append(path) or real(path, *a),
  )
  open(shards[0] + ".tmp", "wb").close()  # debris of a killed run
  second = prepare.prepare(videos, out, workers=1, progress=False, **options)
  assert decoded == []
  assert {p: os.stat(p).st_mtime_ns for p in shards} == mtimes
  assert not os.path.exists(shards[0] + ".tmp")
  assert "(3 reused from an earlier run)" in second["summary"]
  assert second["splits"] == first["splits"]

  os.remove(shards[1])
  third = prepare.prepare(videos, out, workers=1, progress=False, **options)
  assert decoded == [videos[1]]
  assert os.path.exists(shards[1])
  assert os.stat(shards[0]).st_mtime_ns == mtimes[shards[0]]
  assert third["splits"] == first["splits"]
  assert len(read_split(out, "train")) == 3

  with pytest.raises(
      prepare_plan.PrepareError, match=r"fps=8\.0 \(now 10\.0\)"
  ):
    prepare.prepare(
        videos, out, workers=1, progress=False, **dict(options, fps=10)
    )


def test_stereo_other_rate_and_float_audio(dataset, tmp_path):
  src = mf.write_video(
      str(tmp_path / "stereo.mp4"), 1.5, size=(48, 64), channels=2
  )
  out = str(tmp_path / "out")
  manifest = prepare.prepare(
      src,
      out,
      workers=1,
      progress=False,
      fps=5,
      shorter_side=24,
      sample_rate=22050,
      channels=2,
      audio_format="floats",
  )
  assert (manifest["channels"], manifest["audio_format"]) == (2, "floats")
  [raw] = list(tf.data.TFRecordDataset(records.list_shards(out, "train")))
  example = tf.train.SequenceExample.FromString(raw.numpy())
  assert records.WAVEFORM_FLOATS_KEY in example.feature_lists.feature_list
  assert records.WAVEFORM_PCM_KEY not in example.feature_lists.feature_list
  [rec] = read_split(out, "train")
  seconds = (rec["end_us"] - rec["start_us"]) / 1e6
  assert (
      abs(len(rec["waveform"]) - seconds * 22050) <= 1
      and rec["waveform"].shape[1] == 2
  )
  assert rec["sample_rate"] == 22050 and rec["channels"] == 2
  left, right = np.sqrt(np.mean(rec["waveform"][2000:-2000] ** 2, axis=0))
  assert abs(left / right - mf.LEFT_AMPLITUDE / mf.RIGHT_AMPLITUDE) < 0.2
  _, (height, width) = frame_levels(rec["frames"])
  assert (height, width) == (32, 24)  # portrait: the width is the shorter side


def test_clip_seconds_splits_with_timestamps(tmp_path):
  src = mf.write_video(str(tmp_path / "long.mkv"), 3.5, size=(64, 48))
  out = str(tmp_path / "out")
  prepare.prepare(
      src,
      out,
      workers=1,
      progress=False,
      fps=10,
      shorter_side=24,
      sample_rate=8000,
      clip_seconds=1.0,
      min_seconds=0.4,
  )
  recs = read_split(out, "train")
  spans = [(r["start_us"], r["end_us"]) for r in recs]
  assert spans[:3] == [
      (0, 1_000_000),
      (1_000_000, 2_000_000),
      (2_000_000, 3_000_000),
  ]
  assert spans[3][0] == 3_000_000 and abs(spans[3][1] - 3_500_000) < 30_000
  for r in recs[:3]:
    assert len(r["frames"]) == 10 and r["waveform"].shape == (8000, 1)
  # Clip 2's frames continue the video's timeline (source frame 50 + 2.5 k).
  levels, _ = frame_levels(recs[2]["frames"])
  assert all(
      nearest_source(l) in expected_sources(20 + k, 10)
      for k, l in enumerate(levels)
  )

  capped = str(tmp_path / "capped")
  manifest = prepare.prepare(
      src,
      capped,
      workers=1,
      progress=False,
      fps=10,
      shorter_side=24,
      sample_rate=8000,
      clip_seconds=1.0,
      max_seconds=2.5,
  )  # min_seconds 1.0 drops the 0.5 s tail
  assert [
      (r["start_us"], r["end_us"]) for r in read_split(capped, "train")
  ] == spans[:2]
  assert manifest["splits"]["train"]["num_records"] == 2


def test_hash_split_is_deterministic_and_stable():
  names = [f"clip_{i:05d}.mp4" for i in range(2000)]
  splits = [prepare_plan.hash_split(n, 0.1) for n in names]
  assert 0.08 < splits.count("test") / len(names) < 0.12
  assert (
      splits == [prepare_plan.hash_split(n, 0.1) for n in reversed(names)][::-1]
  )
  assert prepare_plan.hash_split("some/dir/clip_00007.mp4", 0.1) == splits[7]
  assert set(prepare_plan.hash_split(n, 0.0) for n in names) == {"train"}


def test_label_matching_and_splits(tmp_path):
  root = tmp_path / "world"
  files = [
      str(root / "videos" / n)
      for n in (
          "clip_00012.mp4",
          "clip_00013.mp4",
          "sub/clip_00014.mp4",
          "clip_00015.mp4",
          "clip_00016.mp4",
      )
  ]
  csv_path = root / "labels.csv"
  root.mkdir()
  csv_path.write_text(
      "file,label\nvideos/clip_00012.mp4,b\nclip_00013.mp4,a\nsub/clip_00014.mp4,c\n"
      f"{files[3]},a\nvideos/gone.mp4,a\n"
  )
  videos, skipped, names = prepare_plan.plan_videos(
      files, str(root / "videos"), str(csv_path), 0.1
  )
  assert names == ["a", "b", "c"]
  got = {v.name: (v.label_index, v.label_text, v.split) for v in videos}
  assert got == {
      n: (i, t, prepare_plan.hash_split(n, 0.1))
      for n, i, t in [
          ("clip_00012.mp4", 1, "b"),
          ("clip_00013.mp4", 0, "a"),
          (os.path.join("sub", "clip_00014.mp4"), 2, "c"),
          ("clip_00015.mp4", 0, "a"),
      ]
  }
  assert sorted((s["file"], s["reason"]) for s in skipped) == [
      ("clip_00016.mp4", "unlabelled"),
      ("videos/gone.mp4", "not_found"),
  ]

  csv_path.write_text(
      "File,Label,Split\nclip_00012.mp4,x,val\nclip_00013.mp4,y,\n"
  )
  videos, _, _ = prepare_plan.plan_videos(
      files[:2], str(root / "videos"), str(csv_path), 0.5
  )
  assert [v.split for v in videos] == [
      "val",
      prepare_plan.hash_split("clip_00013.mp4", 0.5),
  ]

  videos, skipped, names = prepare_plan.plan_videos(
      files, str(root / "videos"), None, 0.0
  )
  assert (
      {v.split for v in videos} == {"train"} and names == [] and skipped == []
  )
  assert {v.label_index for v in videos} == {-1}


def test_shard_counts_are_proportional():
  videos = (
      [
          prepare_plan.Video(f"/v/t{i:03d}", f"t{i:03d}", "train")
          for i in range(100)
      ]
      + [prepare_plan.Video(f"/v/e{i}", f"e{i}", "test") for i in range(30)]
      + [prepare_plan.Video("/v/x", "x", "val")]
  )
  shards = prepare_plan.plan_shards(videos, 8)
  counts = {}
  for s in shards:
    counts[s.split] = s.count
  assert counts == {"train": 8, "test": 2, "val": 1}
  train = [v.name for s in shards if s.split == "train" for v in s.videos]
  assert train == sorted(v.name for v in videos if v.split == "train")
  assert {len(s.videos) for s in shards if s.split == "train"} <= {12, 13}


def test_nothing_usable_fails_with_reasons(tmp_path):
  mf.write_garbage(str(tmp_path / "bad.mp4"))
  mf.write_empty(str(tmp_path / "empty.mkv"))
  out = str(tmp_path / "out")
  with pytest.raises(
      prepare_plan.PrepareError, match="no usable videos.*skipped 2"
  ):
    prepare.prepare(str(tmp_path), out, workers=1, progress=False)
  reasons = {
      s["file"]: s["reason"] for s in records.load_manifest(out)["skipped"]
  }
  assert reasons == {"bad.mp4": "undecodable", "empty.mkv": "empty"}


def run_cli(*flags: str) -> subprocess.CompletedProcess:
  """`python -m avself.data.prepare FLAGS` from the repository root."""
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return subprocess.run(
      [sys.executable, "-m", "avself.data.prepare", *flags],
      cwd=repo,
      capture_output=True,
      text=True,
      timeout=120,
      env=dict(os.environ, PYTHONPATH=repo, TF_CPP_MIN_LOG_LEVEL="2"),
  )


def test_cli_exits_nonzero_when_glob_matches_nothing(tmp_path):
  proc = run_cli(f"--videos={tmp_path}/*.mp4", f"--output={tmp_path}/out")
  assert proc.returncode == 1
  assert "prepare: error: no video files found" in proc.stderr


def test_cli_prepares_with_spawned_workers(dataset, tmp_path):
  proc = run_cli(
      f"--videos={dataset}/videos/[ab]_*.mp4",
      f"--output={tmp_path}/out",
      "--workers=2",
      "--quiet",
      "--fps=4",
      "--shorter_side=16",
      "--sample_rate=8000",
      "--num_shards=1",
  )
  assert proc.returncode == 0, proc.stderr
  assert "prepared 2 videos (3.6 s) into 1 shards; skipped 0" in proc.stdout
  assert [r["filename"] for r in read_split(f"{tmp_path}/out", "train")] == [
      b"a_cat.mp4",
      b"b_dog.mp4",
  ]


def test_worker_crash_is_isolated_and_reported():
  results = list(
      prepare_workers.ordered_map(
          mf.double_or_die,
          [1, 2, -1, 3],
          workers=2,
          on_crash=lambda task: ("crashed", task),
      )
  )
  assert results == [2, 4, ("crashed", -1), 6]


def _run_python(code: str, timeout: float) -> subprocess.CompletedProcess:
  """`python -c code` in a fresh interpreter, with the repository importable."""
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return subprocess.run(
      [sys.executable, "-c", code],
      cwd=repo,
      capture_output=True,
      text=True,
      timeout=timeout,
      env=dict(os.environ, PYTHONPATH=repo),
  )


def test_stopped_workers_cannot_leave_the_pool_waiting_on_half_a_result():
  """A worker stopped while it sent a result left exit waiting forever."""
  code = """
import concurrent.futures, multiprocessing, os, struct, time
from avself.data import prepare_workers
pool = concurrent.futures.ProcessPoolExecutor(
    1, mp_context=multiprocessing.get_context("spawn"))
pool.submit(time.sleep, 0).result()
# Half a message in the result pipe, as from a worker stopped mid-send: the
# pool's manager thread reads its header and waits for the rest.
writer = pool._result_queue._writer
os.write(writer.fileno(), struct.pack("!i", 1 << 16) + b"half")
time.sleep(1.0)
manager = pool._executor_manager_thread  # what interpreter exit joins
prepare_workers._stop_workers(pool)
manager.join(30)
print("hung" if manager.is_alive() else "joined", flush=True)
os._exit(0)  # not exit's join, which would hang
"""
  proc = _run_python(code, timeout=180)
  assert proc.stdout.strip() == "joined", proc.stderr[-2000:]


def test_media_load_video_and_audio(dataset):
  videos = dataset / "videos"
  silent = media.load_video(
      str(videos / "noaudio.mp4"),
      fps=5,
      shorter_side=24,
      sample_rate=8000,
      channels=2,
  )
  assert (
      silent.frames.shape == (8, 24, 32, 3) and silent.frames.dtype == np.uint8
  )
  assert silent.audio.shape == (0, 2) and not silent.has_audio
  full = media.load_video(
      str(videos / "a_cat.mp4"), 5, 24, 8000, max_seconds=1.0
  )
  assert (
      full.frames.shape[0] == 5
      and full.audio.shape == (8000, 1)
      and full.has_audio
  )
  audio = media.load_audio(str(videos / "c_cat.mkv"), 8000, 1)
  assert audio.dtype == np.float32 and abs(len(audio) - 1.2 * 8000) < 100
  for name, reason in [
      ("empty.mp4", "empty"),
      ("garbage.avi", "undecodable"),
      ("noaudio.mp4", "no_audio"),
  ]:
    with pytest.raises(media.MediaError) as info:
      list(
          media.iter_clips(
              str(videos / name), fps=5, shorter_side=24, sample_rate=8000
          )
      )
    assert info.value.reason == reason
  assert media.output_size(720, 576, 256, sample_aspect=16 / 11) == (465, 256)
  assert media.output_size(48, 64, 24) == (24, 32)


def test_runs_sharing_a_synthetic_cache_build_it_one_at_a_time(
    tiny_records, tmp_path
):
  """Two runs started together on one cache (fine-tune and scratch): no clash."""
  import threading
  import tiny
  from avself.data import synthetic_records

  order = []

  def second():
    with synthetic_records.building(str(tmp_path)):
      order.append("second")

  waiting = threading.Thread(target=second)
  with synthetic_records.building(str(tmp_path)):
    waiting.start()
    waiting.join(timeout=0.5)  # it cannot get in while the lock is held
    order.append("first")
  waiting.join()
  assert order == ["first", "second"]

  # Both find the records complete and reuse them, at the same time.
  config = tiny.tiny_config()
  config.data.synthetic = tiny.tiny_world()
  config.data.synthetic.cache_dir = os.path.dirname(
      os.path.dirname(tiny_records)
  )
  results, errors = [], []

  def run():
    try:
      results.append(synthetic_records.ensure_synthetic_records(config.data))
    except Exception as e:  # pylint: disable=broad-except
      errors.append(e)

  threads = [threading.Thread(target=run) for _ in range(2)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert not errors and results == [tiny_records] * 2
  assert not [n for n in os.listdir(tiny_records) if n.endswith(".tmp")]


def test_worker_side_modules_do_not_import_tensorflow():
  """Spawned workers import these; TensorFlow would cost each one seconds."""
  code = (
      "import sys\n"
      "from avself.data import prepare, prepare_plan, prepare_workers\n"
      "print(sorted(m for m in sys.modules if m.startswith('tensorflow')"
      " or m == 'avself.data.records'))\n"
  )
  proc = _run_python(code, timeout=120)
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.strip() == "[]"
