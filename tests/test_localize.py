"""CAM localisation: the pointing metric, boxes through resize + crop, heatmaps, and the CLI."""

import json
import os

import av
import jax
import ml_collections
import numpy as np
from PIL import Image
import pytest

from avself import clip_input
from avself import config_lib
from avself import localize
from avself import pictures
from avself import sharding
from avself import video_cam
from avself.evaluators import localization
from avself.tasks import sync
import tiny
from test_sync import model_and_state, save_checkpoint, tiny_sync_config


def _world(tiny_records):
  return os.path.join(os.path.dirname(tiny_records), "world")


# ------------------------------------------------------------------ pointing metric


def test_peak_inside_a_sounding_box_is_a_hit_and_outside_a_miss():
  heat = np.zeros((4, 32, 32))
  heat[0, 5, 10] = 1.0  # peak at pixel centre (10.5, 5.5): inside the box
  heat[1, 20, 20] = 1.0  # (20.5, 20.5): outside
  heat[2, 4, 12] = (
      1.0  # (12.5, 4.5): on the box's column edge 12 -> outside by 0.5
  )
  heat[3, 0, 0] = 1.0  # no sounding object in view: not scored
  np.testing.assert_array_equal(
      localization.peak_points(heat),
      [[10.5, 5.5], [20.5, 20.5], [12.5, 4.5], [0.5, 0.5]],
  )
  box = np.array([[8.0, 4.0, 12.0, 8.0]])
  boxes = [box, box, box, np.zeros((0, 4))]
  assert localization.pointing(localization.peak_points(heat), boxes) == (1, 3)
  # Any sounding object counts; empty (cropped-away) boxes never do.
  two = np.array([[0.0, 0.0, 0.0, 5.0], [18.0, 18.0, 24.0, 24.0]])
  assert localization.pointing(localization.peak_points(heat[1:2]), [two]) == (
      1,
      1,
  )
  assert localization.pointing(
      localization.peak_points(heat[1:2]), [two[:1]]
  ) == (0, 0)


def test_centre_baseline_hits_only_boxes_over_the_centre():
  points = localization.centre_points(3, 32, 32)
  np.testing.assert_array_equal(points, [[16.0, 16.0]] * 3)
  boxes = [
      np.array([[10.0, 10.0, 20.0, 20.0]]),
      np.array([[0.0, 0.0, 8.0, 8.0]]),
      np.array([[0.0, 0.0, 8.0, 8.0], [16.0, 2.0, 30.0, 16.0]]),
  ]
  assert localization.pointing(points, boxes) == (2, 3)


def test_resolution_ceiling_is_what_a_perfect_map_of_that_size_can_point_at():
  # 4 frames of 16 px: a box in the top-left quadrant, then one in the bottom-right.
  top_left, bottom_right = np.array([[0, 0, 6, 6]]), np.array(
      [[10, 10, 16, 16]]
  )
  clip = [top_left, top_left, bottom_right, bottom_right]
  # A 1 x 1 map is flat: it points nowhere in particular (the first pixel), 2 of 4 hits.
  assert localization.resolution_ceiling([clip], 4, 16, (1, 1, 1)) == (2, 4)
  # 1 x 2 x 2 in time: one map for all frames, both quadrants equally hot; the first wins.
  assert localization.resolution_ceiling([clip], 4, 16, (1, 2, 2)) == (2, 4)
  # 2 x 2 x 2 follows the box from the first half of the clip to the second.
  assert localization.resolution_ceiling([clip], 4, 16, (2, 2, 2)) == (4, 4)
  masks = localization.box_masks([clip], 4, 16)
  assert (
      masks.shape == (1, 4, 16, 16)
      and masks[0, 0].sum() == 36
      and masks[0, 3, 15, 15] == 1
  )


def test_boxes_follow_the_resize_and_the_centre_crop():
  # World 64 px -> shorter side 36 (x 0.5625) -> centre crop 32 at (2, 2).
  boxes = np.array(
      [[0.0, 0.0, 64.0, 64.0], [32.0, 16.0, 40.0, 24.0], [0.0, 0.0, 3.0, 3.0]]
  )
  out = localization.crop_boxes(boxes, 64, (36, 36), (2, 2), 32)
  np.testing.assert_allclose(out[0], [0, 0, 32, 32])
  np.testing.assert_allclose(out[1], [16.0, 7.0, 20.5, 11.5])
  assert out[2][2] <= out[2][0]  # left of the crop: empty


def test_world_boxes_sit_on_their_objects_in_decoded_frames(tiny_records):
  """The main object's colour is found in its mapped box in the decoded, cropped frames."""
  config = tiny_sync_config(tiny_records)
  folder = _world(tiny_records)
  # Solid shapes: thin rings and crosses lose their colour to chroma subsampling.
  rows = [
      r
      for r in localization.read_ground_truth(folder, "test")
      if r["objects"][0]["shape"] in ("disc", "square")
  ][:3]
  videos = localization.load_world_videos(
      folder, rows, clip_input.clip_spec(config)
  )
  for video, row in zip(videos, rows):
    # 3 s at 10 fps, 32 px crops, and one box list per frame.
    assert (
        video["frames"].shape == (30, 32, 32, 3)
        and video["frames"].dtype == np.uint8
    )
    assert len(video["boxes"]) == 30 and video["audio"].shape[1] == 1
    colour = np.asarray(
        row["objects"][0]["color"], np.float64
    )  # drawn on top of the others
    # Frames away from its bounces: a flash whitens the object.
    events = np.asarray(row["objects"][0]["event_times"] or [1e9])
    calm = [f for f in range(30) if np.abs(f / 10.0 - events).min() > 0.25]
    for f in calm[:3]:
      x0, y0, x1, y1 = video["boxes"][f][0]  # object 0
      distance = np.linalg.norm(
          video["frames"][f].astype(np.float64) - colour, axis=-1
      )
      row_index, col_index = np.unravel_index(
          np.argmin(distance), distance.shape
      )
      # The pixel nearest the object's colour is in its box (give or take the
      # pixel that H.264 and the resize blur it by).
      assert (
          x0 - 1 <= col_index + 0.5 <= x1 + 1
          and y0 - 1 <= row_index + 0.5 <= y1 + 1
      )
      assert (
          distance.min() < 80
      )  # the object is in view, not just the least-bad pixel


# ------------------------------------------------------------------ sliding clips


def test_cut_clips_hop_and_covered_frames():
  spec = clip_input.ClipSpec(
      num_frames=4,
      fps=10.0,
      sample_rate=100,
      channels=1,
      image_size=2,
      resize_shorter=2,
  )
  frames = np.arange(11, dtype=np.uint8)[:, None, None, None] * np.ones(
      (1, 2, 2, 3), np.uint8
  )
  audio = np.arange(100, dtype=np.float32)[:, None]  # 1 s: 10 samples per frame
  video, waveform, starts = clip_input.cut_clips(
      frames, audio, spec
  )  # consecutive
  np.testing.assert_array_equal(starts, [0, 4])
  np.testing.assert_array_equal(video[1, :, 0, 0, 0], [4, 5, 6, 7])
  video, waveform, starts = clip_input.cut_clips(frames, audio, spec, hop=3)
  np.testing.assert_array_equal(starts, [0, 3, 6])
  np.testing.assert_array_equal(video[2, :, 0, 0, 0], [6, 7, 8, 9])
  # Each clip's audio starts at its first frame's time; missing audio is zeros.
  assert (
      waveform.shape == (3, 40, 1)
      and waveform[1, 0, 0] == 30
      and waveform[2, -1, 0] == 99
  )
  assert (
      video_cam.covered_frames(11, 4, 3) == 10
      and video_cam.covered_frames(11, 4, 1) == 11
  )
  assert (
      video_cam.covered_frames(11, 4, 4) == 8
      and video_cam.covered_frames(3, 4, 1) == 0
  )
  try:
    clip_input.cut_clips(frames[:3], audio, spec)
    raise AssertionError("a video shorter than a clip must be refused")
  except ValueError as e:
    assert "shorter than one clip" in str(e)


def test_cam_steps_land_on_their_frames_and_views_are_averaged():
  # A 16-frame clip with a 4-step map: step j stands for frame 4j.
  np.testing.assert_array_equal(video_cam.step_frames(16, 4), [0, 4, 8, 12])
  np.testing.assert_array_equal(video_cam.step_frames(8, 1), [0])
  # Two clips of 4 frames with 2-step maps [K=2, t=2, h=1, w=2], starting at 0 and 2.
  cams = np.array([[[[1.0, 0.0]], [[3.0, 0.0]]], [[[5.0, 0.0]], [[7.0, 2.0]]]])
  out = video_cam.assemble_frames(cams, np.array([0, 2]), 6, 4)
  assert out.shape == (6, 1, 2)
  # Views land on frames 0, 2 (clip 0) and 2, 4 (clip 1): frame 2 averages 3 and 5.
  np.testing.assert_allclose(out[:, 0, 0], [1.0, 2.5, 4.0, 5.5, 7.0, 7.0])
  np.testing.assert_allclose(out[:, 0, 1], [0.0, 0.0, 0.0, 1.0, 2.0, 2.0])
  # Hop 1: every frame gets a view of every step (where the clips reach).
  cams = np.random.default_rng(0).normal(size=(3, 2, 1, 1))
  out = video_cam.assemble_frames(cams, np.array([0, 1, 2]), 6, 4)
  np.testing.assert_allclose(out[2, 0, 0], (cams[0, 1] + cams[2, 0])[0, 0] / 2)
  np.testing.assert_allclose(
      out[5, 0, 0], out[4, 0, 0]
  )  # past the last view: held


# ------------------------------------------------------------------ heatmaps


def test_heatmaps_are_per_clip_and_video_heatmaps_per_video_normalised(
    tiny_records,
):
  config = tiny_sync_config(tiny_records)
  _, model, state = model_and_state()
  mesh = sharding.make_mesh()
  state = jax.device_put(state, sharding.replicated(mesh))
  spec = clip_input.clip_spec(config)
  folder = _world(tiny_records)
  video = localization.load_world_videos(
      folder, localization.read_ground_truth(folder, "test")[:1], spec
  )[0]
  clips, waveform, _ = clip_input.cut_clips(
      video["frames"], video["audio"], spec
  )
  heat, logits = video_cam.heatmaps(model, state, clips, waveform, mesh)
  k = len(clips)  # 3 s at 10 fps = 3 clips of 8 frames
  assert k == 3 and heat.shape == (k, 8, 32, 32) and logits.shape == (k,)
  for (
      clip
  ) in (
      heat
  ):  # min-max per clip: 0 and 1 both reached (random nets are not flat)
    assert clip.min() == 0.0 and np.isclose(clip.max(), 1.0)
  # Sliding clips every frame: 23 clips, every one of the 30 frames covered.
  heat, logits = video_cam.video_heatmap(
      model, state, video["frames"], video["audio"], spec, mesh
  )
  assert heat.shape == (30, 32, 32) and logits.shape == (23,)
  assert heat.min() == 0.0 and np.isclose(heat.max(), 1.0)
  # The tiny net's map has one time step (8 frames in, 1 x 2 x 2 out): it stands for
  # the clip's first frame, so frame f's map is clip f's (the last 7 frames hold the last).
  maps, _ = video_cam.cams(
      model,
      state,
      *clip_input.cut_clips(video["frames"], video["audio"], spec, 1)[:2],
      mesh,
  )
  want = video_cam.upsample_frames(
      np.concatenate([maps[:, 0], np.repeat(maps[-1:, 0], 7, 0)]), 32, 32
  )
  np.testing.assert_allclose(heat, want, atol=1e-6)
  # Cut a few clips at a time (long videos): the same heat.
  chunked, chunk_logits = video_cam.video_heatmap(
      model,
      state,
      video["frames"],
      video["audio"],
      spec,
      mesh,
      clips_per_chunk=5,
  )
  np.testing.assert_allclose(chunked, heat, atol=1e-6)
  np.testing.assert_allclose(chunk_logits, logits, atol=1e-6)
  # flip: the mirrored video's maps, mirrored back, averaged in. The result no longer
  # depends on which way the video faces: the heat of the mirrored video is the mirror.
  flipped, flip_logits = video_cam.video_heatmap(
      model, state, video["frames"], video["audio"], spec, mesh, flip=True
  )
  np.testing.assert_allclose(
      flip_logits, logits, atol=1e-6
  )  # the plain clips' logits
  assert not np.allclose(
      flipped, heat, atol=1e-3
  )  # a random net is not symmetric
  mirror, _ = video_cam.video_heatmap(
      model,
      state,
      video["frames"][:, :, ::-1],
      video["audio"],
      spec,
      mesh,
      flip=True,
  )
  np.testing.assert_allclose(mirror[:, :, ::-1], flipped, atol=1e-5)
  mirror_maps, _ = video_cam.cams(
      model,
      state,
      *clip_input.cut_clips(
          video["frames"][:, :, ::-1], video["audio"], spec, 1
      )[:2],
      mesh,
  )
  mirror_maps = np.concatenate(
      [mirror_maps[:, 0], np.repeat(mirror_maps[-1:, 0], 7, 0)]
  )
  want = video_cam.upsample_frames(
      (
          np.concatenate([maps[:, 0], np.repeat(maps[-1:, 0], 7, 0)])
          + mirror_maps[:, :, ::-1]
      )
      / 2,
      32,
      32,
  )
  np.testing.assert_allclose(flipped, want, atol=1e-6)


def test_evaluator_scores_the_video_heatmaps_and_pictures_are_images(
    tiny_records,
):
  config = tiny_sync_config(tiny_records)
  _, model, state = model_and_state()
  mesh = sharding.make_mesh()
  state = jax.device_put(state, sharding.replicated(mesh))
  folder = _world(tiny_records)
  spec = clip_input.clip_spec(config)
  videos = localization.load_world_videos(
      folder, localization.read_ground_truth(folder, "test")[:2], spec
  )
  eval_config = dict(type="localization", num_videos=2, num_images=2, hop=2)
  evaluator = localization.Evaluator(
      config,
      ml_collections.ConfigDict(eval_config),
      task=sync,
      model=model,
      mesh=mesh,
  )
  results = dict(evaluator.run(state))
  assert 0.0 <= results["pointing_accuracy"] <= 1.0
  assert 0.0 <= results["centre_baseline"] <= 1.0
  # The same pointing from video_heatmap; hop 2 covers frames 0..29 of 30 (last clip at 22).
  hits = scored = ceiling = 0
  for video in videos:
    heat, _ = video_cam.video_heatmap(
        model, state, video["frames"], video["audio"], spec, mesh, hop=2
    )
    assert heat.shape == (30, 32, 32)
    h, s = localization.pointing(
        localization.peak_points(heat), video["boxes"][:30]
    )
    hits, scored = hits + h, scored + s
    # A perfect map with the net's 2 x 2 cells, one per frame.
    ceiling += localization.resolution_ceiling(
        [video["boxes"][:30]], 30, 32, (30, 2, 2)
    )[0]
  assert (
      0 < scored == results["num_frames"]
      and results["pointing_accuracy"] == hits / scored
  )
  assert results["resolution_ceiling"] == ceiling / scored
  image = results["cam_overlay"]
  assert image.shape == (2, 64, 8 * 64, 3) and image.dtype == np.uint8
  # flip=True scores the flip-averaged heat.
  evaluator = localization.Evaluator(
      config,
      ml_collections.ConfigDict(dict(eval_config, flip=True, num_images=0)),
      task=sync,
      model=model,
      mesh=mesh,
  )
  flip_results = dict(evaluator.run(state))
  hits = 0
  for video in videos:
    heat, _ = video_cam.video_heatmap(
        model,
        state,
        video["frames"],
        video["audio"],
        spec,
        mesh,
        hop=2,
        flip=True,
    )
    hits += localization.pointing(
        localization.peak_points(heat), video["boxes"][:30]
    )[0]
  assert flip_results["pointing_accuracy"] == hits / scored


def test_overlay_colours_hot_regions_and_keeps_cold_ones():
  frames = np.full((1, 4, 4, 3), 100, np.uint8)
  heat = np.zeros((1, 4, 4))
  heat[0, 1, 2] = 1.0
  out = pictures.hot_overlay(frames, heat)
  np.testing.assert_array_equal(out[0, 0, 0], [100, 100, 100])
  assert out[0, 1, 2, 0] > 200 and out.dtype == np.uint8


# ------------------------------------------------------------------ the command


def test_localize_cli_writes_pngs_and_a_decodable_mp4(tiny_records, tmp_path):
  config = tiny_sync_config(tiny_records)
  workdir = str(tmp_path / "run")
  save_checkpoint(workdir, config)
  video = os.path.join(
      _world(tiny_records), "videos", "clip_00001.mp4"
  )  # 3 s, 10 fps
  output = str(tmp_path / "cam")
  summaries = localize.main(
      [video, f"--workdir={workdir}", f"--output={output}", "--scale=2"]
  )
  # Sliding clips of 8 frames every frame: 23 clips, all 30 frames shown.
  assert summaries[0]["clips"] == 23 and summaries[0]["frames"] == 30
  pngs = sorted(os.listdir(os.path.join(output, "clip_00001")))
  assert pngs == [f"frame_{i:04d}.png" for i in range(30)]
  with Image.open(os.path.join(output, "clip_00001", pngs[0])) as image:
    assert image.size == (64, 64) and image.mode == "RGB"
  with av.open(os.path.join(output, "clip_00001_cam.mp4")) as container:
    assert container.streams.video[0].codec_context.name == "h264"
    assert len(container.streams.audio) == 1
    frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
  assert len(frames) == 30 and frames[0].shape == (64, 64, 3)
  # The movie shows the PNG's picture (up to H.264 loss).
  with Image.open(os.path.join(output, "clip_00001", pngs[0])) as image:
    assert (
        np.abs(frames[0].astype(float) - np.asarray(image, float)).mean() < 12
    )
  assert all(0.0 <= p <= 1.0 for p in summaries[0]["aligned_probability"])
  # json-able summary for scripts.
  json.dumps(summaries)
  # --hop=8: consecutive clips, frames up to the last whole one.
  summaries = localize.main(
      [video, f"--workdir={workdir}", f"--output={output}", "--hop=8"]
  )
  assert summaries[0]["clips"] == 3 and summaries[0]["frames"] == 24
  # --flip: the same frames, written again.
  summaries = localize.main(
      [video, f"--workdir={workdir}", f"--output={output}", "--hop=8", "--flip"]
  )
  assert summaries[0]["clips"] == 3 and summaries[0]["frames"] == 24
  assert os.path.exists(summaries[0]["mp4"])


# ------------------------------------------------------------------ benchmarks/cam_misses.py


def test_cam_misses_breaks_pointing_down_by_burst_time_offset_and_lag():
  cam_misses = config_lib.load_file(
      os.path.join(tiny.ROOT, "benchmarks", "cam_misses.py")
  )
  # One video, 10 frames at 10 fps, a 4 px box moving 4 px right per frame; a burst at 0.35 s.
  boxes = [np.array([[4.0 * f, 8.0, 4.0 * f + 4.0, 12.0]]) for f in range(10)]
  truth = {
      "objects": [
          {"sounding": True, "event_times": [0.35]},
          {"sounding": False, "event_times": [0.0]},
      ]
  }
  heat = np.zeros((10, 16, 48))
  for f in range(
      10
  ):  # the peak inside the box of the frame before (frame 0: its own)
    heat[f, 10, max(4 * f - 4, 0)] = 1.0
  result = cam_misses.analyse([{"boxes": boxes}], [truth], [heat], fps=10.0)
  # Peak at x = 4f - 4 + 0.5 lies in frame f's box [4f, 4f + 4] only for f = 0.
  assert result["frames"] == 10 and result["pointing"] == 0.1
  lags = result["pointing_against_frame_f_plus_k"]
  assert lags[-1] == 1.0 and lags[0] == 0.1 and lags[1] == 0.0
  # dx: -1.5 in frame 0, -5.5 after; dy: +0.5 (row 10 vs the box's centre 10).
  np.testing.assert_allclose(
      result["mean_offset_px"], [(-1.5 - 5.5 * 9) / 10, 0.5], atol=1e-6
  )
  assert result["mean_box_half_size_px"] == [2.0, 2.0]
  # Seconds to the burst: 0.35 0.25 0.15 0.05 0.05 0.15 0.25 0.35 0.45 0.55; the silent
  # object's burst at 0 does not count.
  rows = {
      row["from_s"]: (row["frames"], row["pointing"])
      for row in result["by_time_to_burst"]
  }
  assert rows == {
      0.0: (4, 0.0),
      0.2: (4, 0.25),
      0.4: (2, 0.0),
      0.6: (0, None),
      0.8: (0, None),
      1.0: (0, None),
  }
  np.testing.assert_array_equal(
      cam_misses.nearest_burst({"objects": []}, 3, 10.0), np.inf
  )
  # The box moves 4 px a frame, 40 px/s: every frame in the [40, 60) bin.
  speeds = {
      row["from_px_per_s"]: (row["frames"], row["pointing"])
      for row in result["by_box_speed"]
  }
  assert speeds[40.0] == (10, 0.1) and all(
      n == 0 for s, (n, _) in speeds.items() if s != 40.0
  )
  still = [np.array([[5.0, 5.0, 9.0, 9.0]])] * 3 + [np.zeros((0, 4))]
  np.testing.assert_allclose(cam_misses.box_speeds(still, 10.0)[:2], 0.0)


def test_localize_checks_its_files_before_loading_a_checkpoint(tmp_path):
  missing = str(tmp_path / "nope.mp4")
  args = ["--workdir=/no/checkpoint/here", f"--output={tmp_path / 'o'}"]
  with pytest.raises(SystemExit, match="localize: error: no such file"):
    localize.main([missing, *args])
  for name in ("x.mp4", "x.mkv"):
    (tmp_path / name).write_bytes(b"")
  with pytest.raises(SystemExit, match="would write the same output"):
    localize.main([str(tmp_path / "x.mp4"), str(tmp_path / "x.mkv"), *args])
