"""One clip: its scene, frames, audio, stems and ground truth."""

import numpy as np

from avself.data.synthetic import options as options_lib
from avself.data.synthetic import pictures as pictures_lib
from avself.data.synthetic import scene as scene_lib
from avself.data.synthetic import sounds as sounds_lib


def render_clip(index, seed, options=None):
  """Renders clip `index` of world `seed`; writes nothing.

  Returns (frames uint8 [T, H, W, 3], audio float32 [S] or [S, C],
  ground_truth dict = the clip's ground_truth.jsonl line less `split`,
  stems dict of float32 arrays like audio, with audio == on_screen +
  off_screen). Depends only on (index, seed, options).
  """
  options = options_lib.as_options(options)
  # A 4th stream for options added later, so that the first three (and so
  # the world at default options) stay as they were.
  scene_seq, video_seq, audio_seq, extra_seq = np.random.SeedSequence(
      [seed, index]
  ).spawn(4)
  objects, offscreen = scene_lib.sample_scene(
      np.random.default_rng(scene_seq), options, index
  )
  extra_rng = np.random.default_rng(extra_seq)
  scene_lib.transpose(extra_rng, options, objects, offscreen)
  noise = sounds_lib.background_noise(extra_rng, options)
  scene_lib.draw_voices(extra_rng, options, objects)
  frames, boxes = pictures_lib.render_frames(
      np.random.default_rng(video_seq), options, objects
  )
  stems, gain = sounds_lib.render_audio(
      np.random.default_rng(audio_seq), options, objects, offscreen, noise
  )
  audio = stems["on_screen"] + stems["off_screen"]
  name = options_lib.clip_name(index)
  main = objects[0]["cls"]
  truth = dict(
      file=f"videos/{name}.mp4",
      stems=f"stems/{name}.npz",
      index=index,
      label=main.name,
      label_index=main.index,
      seed=seed,
      fps=options.fps,
      sample_rate=options.sample_rate,
      channels=options.channels,
      num_frames=options.num_frames,
      num_samples=options.num_samples,
      duration=options.duration,
      size=options.size,
      gain=round(gain, 6),
      box_format="xyxy_pixels",
      objects=[
          dict(
              class_index=o["cls"].index,
              class_name=o["cls"].name,
              shape=o["cls"].shape,
              color=list(o["cls"].color),
              timbre=o["cls"].timbre,
              fundamental_hz=round(scene_lib.fundamental(o), 3),
              sounding=o["sounding"],
              stem=f"object_{i}",
              event_times=[round(t, 5) for t in o["events"]],
              boxes=np.round(b, 2).tolist(),
          )
          for i, (o, b) in enumerate(zip(objects, boxes))
      ],
      offscreen=None
      if offscreen is None
      else dict(
          class_index=offscreen["cls"].index,
          class_name=offscreen["cls"].name,
          timbre=offscreen["cls"].timbre,
          fundamental_hz=round(scene_lib.fundamental(offscreen), 3),
          event_times=[round(t, 5) for t in offscreen["events"]],
      ),
  )
  return frames, audio, truth, stems
