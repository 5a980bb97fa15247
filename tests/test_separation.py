"""On/off-screen separation: losses, spectrogram round trip, bss_eval, warm start, a tiny run and the CLI.

Tiny: the tiny world's records (3 s at 16 kHz, 10 fps) as mixtures of 8
frames (0.8 s) of 32x32; the training run is the audio-only PIT u-net (no 3D
convs to compile), the AV net is checked on one batch.
"""

import functools
import os
import warnings

import jax
import fast_bss_eval
import jax.numpy as jnp
import ml_collections
import mir_eval
import numpy as np
import pytest
import scipy.io.wavfile

import test_sync
from avself import separate
from avself import train
from avself.data import media
from avself.data import media_encode
from avself.evaluators import separation as separation_eval
from avself.models import unet
from avself.tasks import separation

B = 8


def tiny_separation_config(
    records_dir: str = "", use_video: bool = True
) -> ml_collections.ConfigDict:
  """Tiny records as mixtures of 8 frames; the tiny sync net's model fields."""
  c = test_sync.tiny_sync_config(records_dir)
  c.task = "separation"
  c.model.name = "separation"
  c.model.encoder_features = (64, 128, 256, 512)
  c.model.merge_levels = (1, 2, 3)
  c.model.unet_width = 0.25
  c.model.frame_length = 256
  c.model.frame_step = 128
  c.model.log_offset = 1e-3
  c.model.use_video = use_video
  c.model.freeze_video = False
  c.model.phase_input = True
  c.init_from = ""
  c.data.mixture = dict(num_frames=8, clip_seconds=0.8)
  c.optimizer.learning_rate = 3e-3
  c.evals = ml_collections.ConfigDict()
  c.evals.separation = dict(type="separation", num_examples=32, num_images=2)
  return c


def _random_batch(config, seed=0):
  rng = np.random.default_rng(seed)
  batch = separation.dummy_batch(config, B)
  batch["video"] = rng.uniform(-1, 1, batch["video"].shape).astype(np.float32)
  for k in ("on_screen_waveform", "off_screen_waveform"):
    batch[k] = 0.1 * rng.standard_normal(batch[k].shape).astype(np.float32)
  batch["mixture_waveform"] = (
      batch["on_screen_waveform"] + batch["off_screen_waveform"]
  )
  return batch


# ### Loss math ################################################################


def test_l1_and_pit_losses_match_numpy():
  rng = np.random.default_rng(0)
  p_on, p_off, t_on, t_off = (
      rng.standard_normal((4, 9, 7, 1)).astype(np.float32) for _ in range(4)
  )

  def l1(a, b):
    return np.abs(a - b).reshape(4, -1).mean(1)

  kept = l1(p_on, t_on) + l1(p_off, t_off)
  swapped = l1(p_on, t_off) + l1(p_off, t_on)
  np.testing.assert_allclose(
      unet.l1_loss(p_on, p_off, t_on, t_off), kept.mean(), rtol=1e-6
  )
  np.testing.assert_allclose(
      unet.pit_l1_loss(p_on, p_off, t_on, t_off),
      np.minimum(kept, swapped).mean(),
      rtol=1e-6,
  )


def test_pit_loss_ignores_the_order_of_the_outputs_and_l1_does_not():
  rng = np.random.default_rng(1)
  t_on, t_off = (rng.standard_normal((3, 5, 6, 1)) for _ in range(2))
  # Perfect predictions in the swapped order: PIT 0, fixed L1 large.
  assert float(unet.pit_l1_loss(t_off, t_on, t_on, t_off)) == 0.0
  assert float(unet.l1_loss(t_off, t_on, t_on, t_off)) > 1.0
  # Per example: example 0 swapped, the others kept -> still 0.
  p_on, p_off = t_on.copy(), t_off.copy()
  p_on[0], p_off[0] = t_off[0], t_on[0]
  assert float(unet.pit_l1_loss(p_on, p_off, t_on, t_off)) == 0.0


# ### Spectrograms and waveforms ##############################################


@pytest.mark.parametrize("channels", [1, 2])
def test_resynthesis_with_the_true_magnitude_and_mixture_phase(channels):
  """The mixture's own log-magnitude gives the mixture back; mono or stereo."""
  config = tiny_separation_config()
  config.data.channels = channels
  model = separation.build_model(config)
  rng = np.random.default_rng(2)
  mixture = 0.2 * rng.standard_normal((2, 12800, channels)).astype(np.float32)
  log_mag = separation.log_magnitude(mixture, model)
  assert log_mag.shape == (2, 129, 101, 1)
  back = separation.resynthesize(log_mag, mixture, model)
  assert back.shape == mixture.shape
  if channels == 1:
    np.testing.assert_allclose(back, mixture, atol=1e-5)
  # A source alone in the mixture comes back from its own magnitude.
  t = np.arange(12800) / 16000
  tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
  mono = np.stack([tone, tone])[..., None]
  back = separation.resynthesize(
      separation.log_magnitude(mono, model), mono, model
  )
  np.testing.assert_allclose(back, mono, atol=1e-5)


# ### SDR ######################################################################


def test_bss_eval_equals_mir_eval_on_known_signals():
  rng = np.random.default_rng(3)
  n = 8000
  t = np.arange(n) / 8000
  refs = np.stack(
      [np.sin(2 * np.pi * 220 * t), np.sign(np.sin(2 * np.pi * 3 * t))]
  ) * rng.uniform(0.2, 0.5, (2, 1))
  refs[1] *= rng.standard_normal(n)
  # Each estimate: its source, some of the other, and noise.
  est = np.stack(
      [
          refs[0] + 0.2 * refs[1] + 0.05 * rng.standard_normal(n),
          refs[1] + 0.1 * refs[0] + 0.02 * rng.standard_normal(n),
      ]
  )
  ours = separation_eval.bss_eval(refs[None], est[None])
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    sdr, sir, sar, _ = mir_eval.separation.bss_eval_sources(
        refs, est, compute_permutation=False
    )
  # The library's own numbers, in the source order given.
  direct = fast_bss_eval.bss_eval_sources(
      refs, est, compute_permutation=False, use_cg_iter=100
  )
  for name, value in zip(("sdr", "sir", "sar"), direct):
    np.testing.assert_array_equal(ours[name][0], value)
  # mir_eval's reference implementation (the direct solver): within 0.1 dB.
  np.testing.assert_allclose(ours["sdr"][0], sdr, atol=0.1)
  np.testing.assert_allclose(ours["sir"][0], sir, atol=0.1)
  np.testing.assert_allclose(ours["sar"][0], sar, atol=0.1)
  assert sdr[0] < sdr[1]  # estimate 0 has more leakage and noise
  # Two independent noises mixed at -3 dB: the mixture as the on-screen
  # estimate scores the power ratio (white sources; the 512-tap filter
  # takes ~512 / 80000 of the other source as distortion, ~0.05 dB).
  on, off = rng.standard_normal((2, 1, 80000))
  on *= np.sqrt(np.sum(off**2) / np.sum(on**2)) * 10 ** (-3 / 20)
  scores = separation_eval.separation_scores(on, off, on + off, on + off)
  assert abs(scores["on_sdr"][0] + 3.0) < 0.2
  np.testing.assert_allclose(scores["swapped_on_sdr"], scores["on_sdr"])


def test_spectrogram_panels_one_row_per_mixture():
  rng = np.random.default_rng(4)
  rows = [[rng.standard_normal((9, 7)) for _ in range(5)] for _ in range(3)]
  picture = separation_eval.spectrogram_panels(rows, size=16)
  assert picture.dtype == np.uint8
  assert picture.shape == (48, 5 * 16 + 4 * 2, 3)


# ### The AV net ###############################################################


@functools.cache
def _av_net(freeze: bool, **model_fields):
  config = tiny_separation_config()
  config.model.update(model_fields)
  if freeze:
    config.total_steps = 4
    separation.freeze_config(config)
  model = separation.build_model(config)
  batch = _random_batch(config)
  variables = jax.jit(functools.partial(separation.init, model))(
      jax.random.key(0), batch
  )
  return config, model, jax.device_get(variables), batch


@pytest.mark.parametrize("freeze", [False, True])
def test_av_net_outputs_and_gradients_reach_the_video_pathway(freeze):
  _, model, variables, batch = _av_net(freeze)
  params = variables["params"]
  state = {"batch_stats": variables["batch_stats"]}

  @jax.jit
  def grads(params):
    return jax.grad(
        lambda p: separation.loss_fn(model, p, state, batch, None, True)[0]
    )(params)

  g = grads(params)
  sync_norm = float(optax_norm(g["sync_net"]))
  assert float(optax_norm(g["unet"])) > 0
  if freeze:
    assert sync_norm == 0.0
  else:
    assert sync_norm > 0
  out, _ = separation.forward(model, variables, batch, train=False)
  assert (
      out["on_screen"].shape
      == out["true_on_screen"].shape
      == (
          B,
          129,
          101,
          1,
      )
  )


def test_av_loss_adds_the_pit_term_and_normalised_video_features_train():
  _, model, variables, batch = _av_net(False, pit_weight=0.5, video_norm=True)
  params = variables["params"]
  state = {"batch_stats": variables["batch_stats"]}
  # One BatchNorm per merged feature sequence, named after its level.
  assert {"video2_bn", "video3_bn", "video4_bn"} <= set(params["unet"])

  @jax.jit
  def loss_and_grads(params):
    return jax.value_and_grad(
        lambda p: separation.loss_fn(model, p, state, batch, None, True),
        has_aux=True,
    )(params)

  (loss, (metrics, _)), g = loss_and_grads(params)
  np.testing.assert_allclose(
      loss, metrics["l1"] + 0.5 * metrics["pit_l1"], rtol=1e-6
  )
  assert float(metrics["pit_l1"]) <= float(metrics["l1"])
  for level in (2, 3, 4):
    assert float(optax_norm(g["unet"][f"video{level}_bn"])) > 0
  assert float(optax_norm(g["sync_net"])) > 0
  # Audio only: the PIT loss alone, and no video BatchNorm.
  config = tiny_separation_config(use_video=False)
  config.model.update(pit_weight=0.5, video_norm=True)
  audio_only = separation.build_model(config)
  v = jax.device_get(
      jax.jit(functools.partial(separation.init, audio_only))(
          jax.random.key(0), batch
      )
  )
  assert not any(k.startswith("video") for k in v["params"]["unet"])
  loss, (metrics, _) = separation.loss_fn(
      audio_only,
      v["params"],
      {"batch_stats": v["batch_stats"]},
      batch,
      None,
      True,
  )
  np.testing.assert_allclose(loss, metrics["pit_l1"], rtol=1e-6)


def optax_norm(tree):
  return jnp.sqrt(sum(jnp.sum(x**2) for x in jax.tree.leaves(tree)))


def test_warm_start_fills_the_sync_net_from_a_sync_run(tmp_path):
  sync_state = test_sync.save_checkpoint(str(tmp_path / "sync"))
  config, _, variables, _ = _av_net(False)
  config = ml_collections.ConfigDict(config.to_dict())
  config.init_from = str(tmp_path / "sync")
  params, model_state = separation.warm_start(
      config,
      variables["params"],
      {"batch_stats": variables["batch_stats"]},
  )
  for a, b in zip(
      jax.tree.leaves(params["sync_net"]), jax.tree.leaves(sync_state.params)
  ):
    np.testing.assert_array_equal(a, b)
  for a, b in zip(
      jax.tree.leaves(model_state["batch_stats"]["sync_net"]),
      jax.tree.leaves(sync_state.model_state["batch_stats"]),
  ):
    np.testing.assert_array_equal(a, b)
  # The u-net keeps its own init.
  for a, b in zip(
      jax.tree.leaves(params["unet"]),
      jax.tree.leaves(variables["params"]["unet"]),
  ):
    np.testing.assert_array_equal(a, b)


# ### A tiny run and the CLI ###################################################


@pytest.fixture(scope="module")
def tiny_run(tiny_records, tmp_path_factory):
  """The audio-only PIT u-net trained 60 steps on the tiny world's mixtures."""
  workdir = str(tmp_path_factory.mktemp("separation"))
  config = tiny_separation_config(tiny_records, use_video=False)
  config.total_steps = 60
  config.log_every_steps = 20
  config.eval_every_steps = config.checkpoint.every_steps = 60
  result = train.train_and_evaluate(config, workdir)
  return workdir, result, config


def test_tiny_run_separates_better_than_the_mixture(tiny_run):
  _, result, _ = tiny_run
  assert result["step"] == 60
  assert result["separation/num_examples"] >= 32
  # Which output is on screen is a coin toss for an audio-only net; the
  # better order must beat the mixture as the estimate.
  assert (
      result["separation/best_perm_on_sdr"]
      > result["separation/mixture/on_sdr"] + 1.0
  ), result


def _videos(tiny_records):
  root = os.path.dirname(os.path.abspath(tiny_records))
  videos = sorted(
      os.path.join(d, f)
      for d, _, files in os.walk(root)
      for f in files
      if f.endswith(".mp4")
  )
  assert len(videos) >= 2
  return videos


def test_separate_cli_writes_decodable_files(tiny_run, tiny_records, tmp_path):
  workdir, _, config = tiny_run
  clip, other = _videos(tiny_records)[:2]
  out = str(tmp_path / "out")
  summary = separate.main(
      [clip, f"--offscreen={other}", f"--workdir={workdir}", f"--output={out}"]
  )
  rate = config.data.sample_rate
  lengths = set()
  for name in ("on_screen", "off_screen", "mixture"):
    got_rate, audio = scipy.io.wavfile.read(os.path.join(out, f"{name}.wav"))
    assert got_rate == rate and audio.dtype == np.int16
    lengths.add(len(audio))
  assert lengths == {int(round(summary["seconds"] * rate))}
  decoded = media.load_video(
      os.path.join(out, "on_screen.mp4"),
      fps=10.0,
      shorter_side=32,
      sample_rate=rate,
  )
  assert decoded.has_audio and len(decoded.frames) == 30
  assert os.path.getsize(os.path.join(out, "spectrograms.png")) > 0
  assert np.isfinite(summary["on_sdr"]) and np.isfinite(
      summary["mixture_on_sdr"]
  )


def test_separate_cli_refuses_a_silent_or_short_video(tiny_run, tmp_path):
  workdir, _, _ = tiny_run
  frames = np.zeros((30, 32, 32, 3), np.uint8)
  silent = str(tmp_path / "silent.mp4")
  media_encode.write_mp4(silent, frames, None, 10.0)
  with pytest.raises(SystemExit, match="no audio track"):
    separate.main([silent, f"--workdir={workdir}", f"--output={tmp_path}/a"])
  short = str(tmp_path / "short.mp4")
  media_encode.write_mp4(
      short, frames[:4], np.zeros((6400, 1), np.float32), 10.0, 16000
  )
  with pytest.raises(SystemExit, match="shorter than the model's window"):
    separate.main([short, f"--workdir={workdir}", f"--output={tmp_path}/b"])


def test_window_starts_cover_every_frame():
  np.testing.assert_array_equal(separate.window_starts(16, 8), [0, 8])
  np.testing.assert_array_equal(separate.window_starts(19, 8), [0, 8, 11])
  windows = np.arange(3 * 4 * 1, dtype=np.float32).reshape(3, 4, 1)
  out = separate.stitch(windows, np.array([0, 4, 6]), 10)
  np.testing.assert_array_equal(out[:, 0], [0, 1, 2, 3, 4, 5, 6, 7, 10, 11])
