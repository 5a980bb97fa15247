"""Input pipeline throughput at paper resolution (AVC: 224 crops, 257 x 199 spectrograms).

    python benchmarks/input_pipeline.py                      # 200 videos at 10 fps
    python benchmarks/input_pipeline.py --fps 25 --samples_per_video 8,16 --cache

Writes synthetic records once to --workdir (256 x 340 JPEG frames: smooth
colour gradients plus noise, so they compress like video; 10 s of 48 kHz
audio; 10 fps is avself.data.prepare's default), then prints AVC batches/s and
examples/s after a warm-up, with the CPU time per example (the cost apart from
whatever else runs on the machine). If avself.data.prepare and
avself.data.synthetic import, also prints the prep tool's rate in
video-seconds/s on ~20 synthetic clips.
"""

import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

from absl import flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from avself import cli_flags  # noqa: E402
from avself.data import pipeline, records  # noqa: E402

_HEIGHT, _WIDTH, _SAMPLE_RATE, _SECONDS = 256, 340, 48000, 10.0


def _frame_pool(size: int, rng) -> list[bytes]:
  """Distinct JPEG frames: colour gradients plus mild noise (~22 kB each)."""
  yy, xx = np.mgrid[0:_HEIGHT, 0:_WIDTH].astype(np.float32)
  pool = []
  for _ in range(size):
    phase = rng.uniform(0, 255, 3)
    image = np.stack(
        [xx * 0.7 + phase[0], yy * 0.9 + phase[1], (xx + yy) * 0.4 + phase[2]],
        -1,
    )
    image = np.mod(image, 255) + rng.normal(0, 6, image.shape)
    pool.append(
        tf.io.encode_jpeg(
            np.clip(image, 0, 255).astype(np.uint8), quality=90
        ).numpy()
    )
  return pool


def write_records(
    directory: str,
    num_videos: int,
    fps: float,
    num_shards: int = 16,
    seed: int = 0,
) -> None:
  """`num_videos` synthetic 10 s videos at paper resolution in `num_shards` shards."""
  rng = np.random.default_rng(seed)
  pool = _frame_pool(
      64, rng
  )  # drawn in random order: encoding 250 frames a video is slow
  num_frames, num_samples = int(_SECONDS * fps), int(_SECONDS * _SAMPLE_RATE)
  t = np.arange(num_samples) / _SAMPLE_RATE

  def video(i):
    frames = [pool[j] for j in rng.integers(0, len(pool), num_frames)]
    tone = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 4000) * t)
    waveform = (tone + 0.02 * rng.normal(size=num_samples)).astype(np.float32)
    return records.make_sequence_example(
        filename=f"synthetic_{i:05d}.mp4",
        jpeg_frames=frames,
        waveform=waveform,
        sample_rate=_SAMPLE_RATE,
        fps=fps,
        label_index=[i % 10],
    )

  for s in range(num_shards):
    records.write_records(
        records.shard_path(directory, "train", s, num_shards),
        (video(i) for i in range(s, num_videos, num_shards)),
    )


def measure_avc(
    directory: str,
    *,
    batch_size: int,
    batches: int,
    warmup: int,
    samples_per_video: int,
    cache: bool,
) -> dict:
  """AVC batches/s, examples/s and CPU-ms/example after `warmup` batches."""
  cfg = pipeline.default_data_config()
  cfg.path, cfg.samples_per_video, cfg.cache = (
      directory,
      samples_per_video,
      cache,
  )
  ds = pipeline.make_dataset(
      cfg,
      mode="avc",
      split="train",
      batch_size=batch_size,
      train=True,
      seed=0,
      process_index=0,
      process_count=1,
  )
  it = ds.as_numpy_iterator()
  for _ in range(warmup):
    next(it)
  start, cpu_start, positives = time.perf_counter(), time.process_time(), 0
  for _ in range(batches):
    batch = next(it)
    positives += int(batch["label"].sum())
  seconds, cpu_seconds = (
      time.perf_counter() - start,
      time.process_time() - cpu_start,
  )
  assert batch["image"].shape == (batch_size, 224, 224, 3), batch["image"].shape
  assert batch["audio"].shape == (batch_size, 257, 199, 1), batch["audio"].shape
  examples = batches * batch_size
  return dict(
      batches_per_s=batches / seconds,
      examples_per_s=examples / seconds,
      cpu_ms_per_example=1e3 * cpu_seconds / examples,
      positive_fraction=positives / examples,
  )


def measure_prepare(num_clips: int = 20) -> None:
  """Prints avself.data.prepare's video-seconds/s on synthetic clips, if both import."""
  try:
    from avself.data import prepare  # written by others
    from avself.data.synthetic import cache as synthetic_cache
  except ImportError as e:
    print(f"prepare: skipped ({e})")
    return
  with tempfile.TemporaryDirectory() as world:
    synthetic_cache.generate(world, num_clips, seed=0, write_stems=False)
    rate = prepare.measure_rate(os.path.join(world, "videos"))
  print(
      f"prepare: {num_clips} synthetic clips, {rate['video_seconds']:.0f} video-s: "
      f"{rate['video_seconds_per_wall_second']} video-s/s wall, "
      f"{rate['video_seconds_per_cpu_second']} video-s per CPU-s (one worker)"
  )


FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "workdir",
    os.path.join(tempfile.gettempdir(), "avself_bench"),
    "where the records are written (kept for the next run)",
    flag_values=FLAGS,
)
flags.DEFINE_integer("num_videos", 200, "videos to write", flag_values=FLAGS)
flags.DEFINE_float("fps", 10.0, "frame rate of the records", flag_values=FLAGS)
flags.DEFINE_integer("batch_size", 64, "examples per batch", flag_values=FLAGS)
flags.DEFINE_integer("batches", 60, "timed batches", flag_values=FLAGS)
flags.DEFINE_integer("warmup", 20, "untimed batches first", flag_values=FLAGS)
flags.DEFINE_string(
    "samples_per_video",
    "8",
    "comma-separated values to try",
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "cache", False, "cache parsed records in memory", flag_values=FLAGS
)
flags.DEFINE_bool(
    "skip_prepare", False, "skip the prepare benchmark", flag_values=FLAGS
)


def main(argv=None):
  args = cli_flags.parse(FLAGS, argv, __doc__, "input_pipeline.py")
  tf.config.set_visible_devices([], "GPU")

  directory = os.path.join(args.workdir, f"fps{args.fps:g}-n{args.num_videos}")
  marker = os.path.join(directory, "complete")
  if not os.path.exists(marker):
    os.makedirs(directory, exist_ok=True)
    start = time.perf_counter()
    write_records(directory, args.num_videos, args.fps)
    open(marker, "w").close()
    print(
        f"wrote {args.num_videos} records to {directory} in {time.perf_counter() - start:.0f} s"
    )
  for k in [int(x) for x in args.samples_per_video.split(",")]:
    r = measure_avc(
        directory,
        batch_size=args.batch_size,
        batches=args.batches,
        warmup=args.warmup,
        samples_per_video=k,
        cache=args.cache,
    )
    print(
        f"avc fps={args.fps:g} samples_per_video={k} cache={args.cache}: "
        f"{r['batches_per_s']:.2f} batches/s, {r['examples_per_s']:.0f} examples/s "
        f"(batch {args.batch_size}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}), "
        f"{r['cpu_ms_per_example']:.2f} CPU-ms/example, "
        f"positive fraction {r['positive_fraction']:.3f}",
        flush=True,
    )
  if not args.skip_prepare:
    measure_prepare()


if __name__ == "__main__":
  main()
