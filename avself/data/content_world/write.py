"""Writing the content world: mp4 clips and labels.csv.

Command line:

  python -m avself.data.content_world --output=DIR --num_videos=600 \
      [--seed=0] [--workers=N] [--seconds=4] [--size=128] [--fps=25] \
      [--sample_rate=48000] [--silence_fraction=0.35] [--offscreen_prob=0.5]

writes DIR/clip_00000.mp4 ... (H.264 + AAC), DIR/labels.csv (file,label,split)
and DIR/ground_truth.jsonl (class, split, whether an off-screen sound plays).
"""

import csv
import dataclasses
import json
import multiprocessing
import os
import time

from absl import flags

from avself import cli_flags
from avself.data import media_encode
from avself.data.content_world import render

FLAGS = flags.FlagValues()
flags.DEFINE_string("output", None, "folder for the clips", flag_values=FLAGS)
flags.DEFINE_integer("num_videos", None, "clips to write", flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "the world's seed", flag_values=FLAGS)
flags.DEFINE_integer(
    "workers", os.cpu_count(), "processes that write clips", flag_values=FLAGS
)
flags.mark_flags_as_required(["output", "num_videos"], flag_values=FLAGS)
_DEFINE = {int: flags.DEFINE_integer, float: flags.DEFINE_float}
for _field in dataclasses.fields(render.Options):
  _DEFINE[type(getattr(render.Options(), _field.name))](
      _field.name,
      getattr(render.Options(), _field.name),
      "Options." + _field.name,
      flag_values=FLAGS,
  )


def _write_clip(job):
  index, seed, options, output = job
  frames, audio, truth = render.render_clip(index, seed, options)
  media_encode.write_mp4(
      os.path.join(output, truth["file"]),
      frames,
      audio,
      options.fps,
      options.sample_rate,
  )
  return truth


def generate(
    output: str, num_videos: int, seed: int = 0, workers: int = 1, **options
) -> dict:
  """Writes `num_videos` clips, labels.csv and ground_truth.jsonl to `output`.

  Returns {num_train, num_test, num_offscreen, seconds}.
  """
  opts = render.Options(**options)
  os.makedirs(output, exist_ok=True)
  jobs = [(i, seed, opts, output) for i in range(num_videos)]
  start = time.time()
  if workers > 1 and num_videos > 1:
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
      truths = pool.map(_write_clip, jobs, chunksize=4)
  else:
    truths = [_write_clip(job) for job in jobs]
  with open(os.path.join(output, "labels.csv"), "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["file", "label", "split"])
    for t in truths:
      writer.writerow([t["file"], t["label"], t["split"]])
  with open(os.path.join(output, "ground_truth.jsonl"), "w") as f:
    for t in truths:
      f.write(json.dumps(t) + "\n")
  return {
      "num_train": sum(t["split"] == "train" for t in truths),
      "num_test": sum(t["split"] == "test" for t in truths),
      "num_offscreen": sum(t["offscreen"] for t in truths),
      "seconds": time.time() - start,
  }


def main(argv=None):
  """Command line: python -m avself.data.content_world --output=DIR ..."""
  args = cli_flags.parse(FLAGS, argv, __doc__, "avself.data.content_world")
  options = {
      f.name: getattr(args, f.name) for f in dataclasses.fields(render.Options)
  }
  summary = generate(
      args.output, args.num_videos, args.seed, args.workers, **options
  )
  print(
      f"content_world: wrote {args.num_videos} clips "
      f"({summary['num_train']} train / {summary['num_test']} test, "
      f"{summary['num_offscreen']} with an off-screen sound) to {args.output} "
      f"in {summary['seconds']:.1f} s"
  )
  return summary
