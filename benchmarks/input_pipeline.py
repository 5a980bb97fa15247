"""Input pipeline throughput at paper resolution (AVC: 224 crops, 257 x 199 spectrograms).

    python benchmarks/input_pipeline.py                 # 200 synthetic 10 s videos
    python benchmarks/input_pipeline.py --num_videos 64 --batches 50 --samples_per_video 1,8

Writes synthetic records (256 x 340 JPEG frames at 25 fps: smooth gradients plus
noise, so they compress like video; 10 s of 48 kHz audio) once to --workdir,
then prints AVC batches/s and examples/s after a warm-up, for each
samples_per_video. If avself.data.prepare and avself.data.synthetic import,
also prints the prep tool's rate in video-seconds/s on ~20 synthetic clips.
"""
import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from avself.data import pipeline, records  # noqa: E402

_HEIGHT, _WIDTH, _FPS, _SAMPLE_RATE, _SECONDS = 256, 340, 25.0, 48000, 10.0


def _frame_pool(size: int, rng) -> list[bytes]:
  """Distinct JPEG frames: drifting colour gradients plus mild noise."""
  yy, xx = np.mgrid[0:_HEIGHT, 0:_WIDTH].astype(np.float32)
  pool = []
  for i in range(size):
    phase = rng.uniform(0, 255, 3)
    image = np.stack([xx * 0.7 + phase[0], yy * 0.9 + phase[1], (xx + yy) * 0.4 + phase[2]], -1)
    image = np.mod(image, 255) + rng.normal(0, 6, image.shape)
    pool.append(tf.io.encode_jpeg(np.clip(image, 0, 255).astype(np.uint8), quality=90).numpy())
  return pool


def write_records(directory: str, num_videos: int, num_shards: int = 16, seed: int = 0) -> None:
  """Synthetic paper-resolution records: `num_videos` 10 s videos in `num_shards` shards."""
  rng = np.random.default_rng(seed)
  pool = _frame_pool(64, rng)
  num_frames, num_samples = int(_SECONDS * _FPS), int(_SECONDS * _SAMPLE_RATE)
  t = np.arange(num_samples) / _SAMPLE_RATE

  def video(i):
    frames = [pool[j] for j in rng.integers(0, len(pool), num_frames)]
    tone = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 4000) * t)
    waveform = (tone + 0.02 * rng.normal(size=num_samples)).astype(np.float32)
    return records.make_sequence_example(
        filename=f"synthetic_{i:05d}.mp4", jpeg_frames=frames, waveform=waveform,
        sample_rate=_SAMPLE_RATE, fps=_FPS, label_index=[i % 10])

  for s in range(num_shards):
    records.write_records(records.shard_path(directory, "train", s, num_shards),
                          (video(i) for i in range(s, num_videos, num_shards)))


def measure_avc(directory: str, *, batch_size: int, batches: int, warmup: int,
                samples_per_video: int, cache: bool) -> dict:
  """AVC batches/s and examples/s after `warmup` batches, and the positive fraction."""
  cfg = pipeline.default_data_config()
  cfg.path, cfg.samples_per_video, cfg.cache = directory, samples_per_video, cache
  ds = pipeline.make_dataset(cfg, mode="avc", split="train", batch_size=batch_size,
                             train=True, seed=0, process_index=0, process_count=1)
  it = ds.as_numpy_iterator()
  for _ in range(warmup):
    next(it)
  start, cpu_start, positives = time.perf_counter(), time.process_time(), 0
  for _ in range(batches):
    batch = next(it)
    positives += int(batch["label"].sum())
  seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
  assert batch["image"].shape == (batch_size, 224, 224, 3), batch["image"].shape
  assert batch["audio"].shape == (batch_size, 257, 199, 1), batch["audio"].shape
  examples = batches * batch_size
  # CPU time per example shows the cost apart from what other processes take.
  return dict(batches_per_s=batches / seconds, examples_per_s=examples / seconds,
              cpu_ms_per_example=1e3 * cpu_seconds / examples,
              positive_fraction=positives / examples)


def measure_prepare(num_clips: int = 20):
  """Video-seconds/s of avself.data.prepare on synthetic clips, or None if unavailable."""
  try:
    from avself.data import prepare, synthetic  # noqa: F401  (written by others)
  except ImportError as e:
    print(f"prepare benchmark skipped: {e}")
    return None
  print("prepare benchmark skipped: avself.data.prepare/synthetic import, "
        "but their entry points are not wired into this benchmark yet")
  return None


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "avself_bench_records"))
  parser.add_argument("--num_videos", type=int, default=200)
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--batches", type=int, default=60)
  parser.add_argument("--warmup", type=int, default=15)
  parser.add_argument("--samples_per_video", default="8")
  parser.add_argument("--cache", action="store_true", help="cache parsed records in memory")
  args = parser.parse_args()
  tf.config.set_visible_devices([], "GPU")

  marker = os.path.join(args.workdir, f"complete-{args.num_videos}")
  if not os.path.exists(marker):
    os.makedirs(args.workdir, exist_ok=True)
    start = time.perf_counter()
    write_records(args.workdir, args.num_videos)
    open(marker, "w").close()
    print(f"wrote {args.num_videos} records to {args.workdir} in {time.perf_counter() - start:.0f} s")
  for k in [int(x) for x in args.samples_per_video.split(",")]:
    r = measure_avc(args.workdir, batch_size=args.batch_size, batches=args.batches,
                    warmup=args.warmup, samples_per_video=k, cache=args.cache)
    print(f"avc samples_per_video={k} cache={args.cache} cores={os.cpu_count()}: "
          f"{r['batches_per_s']:.2f} batches/s, {r['examples_per_s']:.0f} examples/s "
          f"(batch {args.batch_size}), {r['cpu_ms_per_example']:.2f} CPU-ms/example, "
          f"positive fraction {r['positive_fraction']:.3f}, load {os.getloadavg()[0]:.1f}")
  measure_prepare()


if __name__ == "__main__":
  main()
