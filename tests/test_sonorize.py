"""Sonorization: the spatio-temporal input, the loss, example-based synthesis, the CLI."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from avself import config_lib
from avself import sonorize
from avself import synthesis
from avself import train
from avself.data import media
from avself.data import media_encode
from avself.models import sonorize as sonorize_model
from avself.tasks import sonorize as sonorize_task

SPEC = synthesis.FeatureSpec(
    sample_rate=8000, fps=10.0, steps_per_frame=4, num_bands=16
)


def test_spacetime_images_stack_gray_previous_current_next():
  t = 5
  levels = np.linspace(-0.8, 0.8, t, dtype=np.float32)
  video = np.broadcast_to(levels[None, :, None, None, None], (2, t, 4, 4, 3))
  stack = np.asarray(sonorize_model.spacetime_images(jnp.asarray(video)))
  assert stack.shape == (2, t, 4, 4, 3)
  for i in range(t):
    want = [levels[max(i - 1, 0)], levels[i], levels[min(i + 1, t - 1)]]
    np.testing.assert_allclose(stack[0, i, 0, 0], want, atol=1e-6)
  # Gray is the luma of the colour: a pure green frame is 0.587 of white.
  green = np.zeros((1, 1, 2, 2, 3), np.float32)
  green[..., 1] = 1.0
  gray = np.asarray(sonorize_model.spacetime_images(jnp.asarray(green)))
  np.testing.assert_allclose(gray[0, 0, 0, 0], [0.587] * 3, atol=1e-6)


def test_log_mel_puts_a_tone_in_its_band_on_device_and_host():
  n = 8000
  tone = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(n) / 8000).astype(np.float32)
  host = synthesis.log_mel(tone, SPEC)
  device = np.asarray(synthesis.log_mel(jnp.asarray(tone), SPEC, xp=jnp))
  assert host.shape == (n // SPEC.hop, SPEC.num_bands)
  np.testing.assert_allclose(device, host, atol=1e-3)
  centres = synthesis.mel_matrix(SPEC).argmax(0) * 8000 / SPEC.fft_length
  loudest = host[5:-5].mean(0).argmax()
  assert abs(centres[loudest] - 1000) < 250
  silent = synthesis.log_mel(np.zeros(n, np.float32), SPEC)
  np.testing.assert_allclose(silent, np.log(synthesis.LOG_FLOOR), atol=1e-6)


def test_regression_loss_is_mean_squared_or_absolute_error():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(2, 3, 7, 5)).astype(np.float32)
  np.testing.assert_allclose(
      sonorize_task.regression_loss(a, b, "l2"), np.mean((a - b) ** 2), 1e-6
  )
  np.testing.assert_allclose(
      sonorize_task.regression_loss(a, b, "l1"), np.mean(np.abs(a - b)), 1e-6
  )
  assert float(sonorize_task.regression_loss(a, a)) == 0.0
  with pytest.raises(ValueError, match="l2"):
    sonorize_task.regression_loss(a, b, "huber")


def test_loss_fn_regresses_the_clips_own_log_mel():
  net = sonorize_model.SonorizeNet(
      num_bands=SPEC.num_bands,
      steps_per_frame=SPEC.steps_per_frame,
      sample_rate=SPEC.sample_rate,
      fps=SPEC.fps,
      width=1 / 16,
      hidden=8,
  )
  rng = np.random.default_rng(1)
  batch = {
      "video": rng.uniform(-1, 1, (2, 3, 16, 16, 3)).astype(np.float32),
      "waveform": rng.uniform(-0.5, 0.5, (2, 2400, 1)).astype(np.float32),
  }
  variables = sonorize_task.init(net, jax.random.key(0), batch)
  params = variables.pop("params")

  @jax.jit
  def loss_and_grads(p):
    def loss(p):
      return sonorize_task.loss_fn(net, p, variables, batch, None, False)

    return jax.value_and_grad(loss, has_aux=True)(p)

  (loss, (metrics, _)), grads = loss_and_grads(params)
  predicted = jax.jit(
      lambda p: net.apply({"params": p, **variables}, batch["video"], False)
  )(params)
  target = synthesis.log_mel(batch["waveform"][..., 0], SPEC)
  assert predicted["features"].shape == target.shape == (2, 12, 16)
  want = np.mean((np.asarray(predicted["features"]) - target) ** 2)
  np.testing.assert_allclose(loss, want, rtol=1e-4)
  assert 0.0 <= float(metrics["accuracy"]) <= 1.0
  for stream in ("vision_trunk", "motion_trunk"):
    g = grads[stream]["conv1_1"]["kernel"]
    assert float(jnp.abs(g).sum()) > 0, stream


def _index(rng, videos=3, steps=40):
  features = rng.normal(size=(videos * steps, SPEC.num_bands)).astype(
      np.float32
  )
  waveform = rng.uniform(-0.5, 0.5, videos * steps * SPEC.hop).astype(
      np.float32
  )
  starts = np.arange(videos + 1) * steps
  return synthesis.ExampleIndex(
      features, waveform, starts, np.arange(videos), SPEC
  )


def test_example_synthesis_takes_the_nearest_training_segment(tmp_path):
  rng = np.random.default_rng(2)
  index = _index(rng)
  truth = 57  # inside the second video
  query = index.features[truth : truth + 8] + 0.01 * rng.normal(
      size=(8, SPEC.num_bands)
  )
  assert index.nearest(query.astype(np.float32)) == truth
  # Brute force over every candidate agrees.
  firsts = index.candidates(8)
  distances = [np.sum((index.features[f : f + 8] - query) ** 2) for f in firsts]
  assert firsts[int(np.argmin(distances))] == truth
  # A segment never spans two videos: 36..39 + 40.. is not a candidate.
  assert not set(range(33, 40)) & set(firsts.tolist())
  wave, chosen = index.synthesize(query, segment_steps=8, fade_steps=0)
  assert chosen.tolist() == [truth]
  hop = SPEC.hop
  np.testing.assert_allclose(
      wave, index.waveform[truth * hop : (truth + 8) * hop]
  )
  loaded = synthesis.ExampleIndex.load(index.save(str(tmp_path / "i.npz")))
  assert loaded.spec == SPEC and loaded.nearest(query) == truth
  np.testing.assert_allclose(loaded.waveform, index.waveform, atol=1e-4)


def test_onsets_and_their_f1_within_a_tolerance():
  features = np.full((80, SPEC.num_bands), -9.0, np.float32)
  for step in (10, 30, 60):  # 0.25 s, 0.75 s, 1.5 s
    features[step : step + 3] = 0.0
  found = synthesis.onsets(features, SPEC, threshold=0.5)
  np.testing.assert_allclose(found, [0.25, 0.75, 1.5])
  assert synthesis.match_onsets(found, np.array([0.3, 0.8, 1.0]), 0.1) == 2
  assert synthesis.f1(2, 3, 3) == pytest.approx(2 / 3)
  assert synthesis.f1(0, 0, 0) == 1.0


def tiny_sonorize_config(records_dir: str):
  """The synthetic config shrunk to the tiny world (16 kHz, 10 fps, 3 s clips)."""
  c = config_lib.load_file(
      os.path.join(
          os.path.dirname(__file__), "..", "configs", "sonorize_synthetic.py"
      )
  ).get_config()
  c.batch_size = 8
  c.total_steps = 2
  c.log_every_steps = 1
  c.eval_every_steps = c.checkpoint.every_steps = 2
  c.checkpoint.async_save = False
  c.model.width = 1 / 16
  c.model.hidden = 8
  d = c.data
  d.synthetic = None
  d.path = records_dir
  d.sample_rate = 16000
  d.image_size = 32
  d.resize_shorter = 40
  d.clip = dict(num_frames=10, clip_seconds=1.0)
  d.samples_per_video = 2
  d.shuffle_buffer = 16
  c.sonorize.num_bands = 16
  c.sonorize.segment_steps = 8
  c.evals.sonorization.num_clips = 8
  c.evals.sonorization.griffin_lim_iterations = 2
  return c


@pytest.fixture(scope="module")
def tiny_run(tiny_records, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("sonorize"))
  config = tiny_sonorize_config(tiny_records)
  return workdir, train.train_and_evaluate(config, workdir), config


def test_tiny_run_indexes_and_evaluates_every_source(tiny_run):
  workdir, result, _ = tiny_run
  assert os.path.exists(sonorize_task.index_path(workdir))
  for source in ("predicted", "example", "parametric", "mean_sound"):
    for metric in ("onset_f1", "spectral_distance", "envelope_correlation"):
      assert np.isfinite(result[f"sonorization/{source}/{metric}"])
  assert 0.0 <= result["sonorization/example/class_accuracy"] <= 1.0
  assert result["sonorization/num_clips"] == 8


@pytest.mark.parametrize(
    "with_audio, how", [(False, "example"), (True, "parametric")]
)
def test_sonorize_cli_writes_a_decodable_mp4_with_sound(
    tiny_run, tmp_path, with_audio, how
):
  workdir, _, _ = tiny_run
  rng = np.random.default_rng(3)
  frames = rng.integers(0, 255, (25, 48, 48, 3), dtype=np.uint8)
  video = str(tmp_path / "in.mp4")
  sound = (
      rng.uniform(-0.3, 0.3, (40000, 1)).astype(np.float32)
      if with_audio
      else None
  )
  media_encode.write_mp4(video, frames, sound, 10.0, 16000)
  assert media.load_video(video, 10.0, 32, 16000).has_audio == with_audio
  out = str(tmp_path / "out" / "sound.mp4")
  summary = sonorize.main(
      [f"--workdir={workdir}", video, f"--output={out}", f"--synthesis={how}"]
  )
  decoded = media.load_video(out, fps=10.0, shorter_side=32, sample_rate=16000)
  assert decoded.has_audio and len(decoded.frames) == 25
  assert abs(len(decoded.audio) - 40000) < 2048
  assert float(np.abs(decoded.audio).max()) > 0
  assert os.path.getsize(os.path.join(tmp_path, "out", "sound.png")) > 0
  assert summary["has_audio"] == with_audio
  assert ("onset_f1" in summary) == with_audio
