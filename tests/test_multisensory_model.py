"""Tests for the Multisensory net, its CAM, the action classifier and the separation u-net.

Tiny widths run for real; the paper's 125 x 224 x 224 / 88200-sample clip only via eval_shape.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from avself.models import multisensory as ms
from avself.models import unet

B = 2
WIDTH = 0.125  # video 8, audio 16, fusion 16/32/64 channels
FRAMES, SIZE = 8, 64  # fusion map 2 x 8 x 8, last conv map 1 x 2 x 2
SAMPLES = 4267  # 8 frames at 15 fps of 8 kHz audio: round(8 / 15 * 8000)


def _inputs(seed=0, batch=B, channels=1):
  kv, ka = jax.random.split(jax.random.key(seed))
  video = jax.random.uniform(
      kv, (batch, FRAMES, SIZE, SIZE, 3), minval=-1.0, maxval=1.0
  )
  waveform = 0.3 * jax.random.normal(ka, (batch, SAMPLES, channels))
  return video, waveform


@functools.cache
def _init():
  """Tiny sync net and its variables, shared by the tests."""
  model = ms.MultisensoryNet(width=WIDTH)
  # An 'rbg' key compiles init faster on CPU than threefry; the values only
  # need to be a real init.
  init = jax.jit(functools.partial(model.init, train=False))
  return model, init(jax.random.key(1, impl="rbg"), *_inputs())


@functools.cache
def _jit_apply(model, train, method=None):
  """model.apply compiled once per (model, mode)."""
  mutable = ["batch_stats"] if train else False
  return jax.jit(
      functools.partial(
          model.apply, train=train, mutable=mutable, method=method
      )
  )


@functools.cache
def _eval_out():
  model, variables = _init()
  return _jit_apply(model, False)(variables, *_inputs())


def _shape_tree(tree):
  return jax.tree_util.tree_map(jnp.shape, tree)


# ---------------------------------------------------------------- sync net shapes


def test_tiny_forward_shapes_and_names():
  _, variables = _init()
  out = _eval_out()
  c = {"video": 8, "audio": 16, "s1": 16, "s2": 32, "s3": 64}
  assert out["logit"].shape == (B,) and out["logit"].dtype == jnp.float32
  assert out["video_features"].shape == (B, 2, 8, 8, c["video"])
  assert out["audio_features"].shape == (B, 2, c["audio"])
  assert out["scale1"].shape == (B, 2, 8, 8, c["s1"])
  assert out["scale2"].shape == (B, 1, 4, 4, c["s2"])
  assert out["scale3"].shape == (B, 1, 2, 2, c["s3"])
  np.testing.assert_array_equal(out["features"], out["scale3"])
  assert (
      out["pooled"].shape == (B, c["s3"]) and out["pooled"].dtype == jnp.float32
  )
  np.testing.assert_allclose(
      out["pooled"], out["features"].mean(axis=(1, 2, 3)), rtol=1e-6, atol=1e-6
  )
  assert np.isfinite(np.asarray(out["logit"])).all()
  assert set(variables["params"]) == {
      "video_branch",
      "audio_branch",
      "fusion",
      "head",
  }
  assert variables["params"]["head"]["kernel"].shape == (c["s3"], 1)
  # The two examples differ, so must their logits.
  assert abs(float(out["logit"][0] - out["logit"][1])) > 0


def test_paper_scale_shapes_via_eval_shape():
  model = ms.MultisensoryNet()  # width 1
  video = jax.ShapeDtypeStruct(
      (1, 125, 224, 224, 3), jnp.float32
  )  # 4.2 s at 29.97 fps
  waveform = jax.ShapeDtypeStruct(
      (1, 88200, 2), jnp.float32
  )  # 4.2 s at 21 kHz, stereo
  variables = jax.eval_shape(
      functools.partial(model.init, train=False),
      jax.random.key(0),
      video,
      waveform,
  )
  out = jax.eval_shape(
      functools.partial(model.apply, train=False), variables, video, waveform
  )
  assert out["video_features"].shape == (
      1,
      32,
      28,
      28,
      64,
  )  # 125 -> 63 -> 32 frames
  assert out["audio_features"].shape == (1, 32, 128)
  assert out["scale1"].shape == (1, 32, 28, 28, 128)
  assert out["scale2"].shape == (1, 16, 14, 14, 256)
  assert out["features"].shape == (1, 16, 7, 7, 512)
  assert out["pooled"].shape == (1, 512)
  assert out["logit"].shape == (1,)
  # The audio convs end at 87 steps (stride 1024) before the adaptive pool to 32.
  assert ms.audio_conv_length(88200) == 87
  assert ms.fusion_length(125) == 32
  assert all(
      x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(variables)
  )
  # The authors' CAM variant keeps conv5 at 14 x 14.
  fine = ms.MultisensoryNet(conv5_stride=1)
  out = jax.eval_shape(
      functools.partial(fine.apply, train=False), variables, video, waveform
  )
  assert out["features"].shape == (1, 16, 14, 14, 512)


@pytest.mark.parametrize(
    "frames,samples,channels",
    [
        (8, 4267, 1),  # 15 fps, 8 kHz mono
        (16, 8534, 2),  # stereo
        (125, 88200, 2),  # the paper: 29.97 fps, 21 kHz stereo
        (63, 44100, 2),  # half the paper's clip
        (
            32,
            4000,
            1,
        ),  # 500 samples per fused step < the 1024 conv stride: the pool repeats
        (5, 80000, 1),  # many audio steps per video step
    ],
)
def test_audio_length_equals_video_length_at_fusion(frames, samples, channels):
  model = ms.MultisensoryNet(width=WIDTH)
  video = jax.ShapeDtypeStruct((1, frames, 16, 16, 3), jnp.float32)
  waveform = jax.ShapeDtypeStruct((1, samples, channels), jnp.float32)
  variables = jax.eval_shape(
      functools.partial(model.init, train=False),
      jax.random.key(0),
      video,
      waveform,
  )
  out = jax.eval_shape(
      functools.partial(model.apply, train=False), variables, video, waveform
  )
  t = ms.fusion_length(frames)
  assert t == -(-frames // 4)  # a quarter of the frame rate
  assert out["video_features"].shape[1] == t
  assert out["audio_features"].shape == (1, t, 16)
  assert variables["params"]["audio_branch"]["conv1"]["kernel"].shape == (
      65,
      channels,
      8,
  )


def test_audio_adaptive_pool_keeps_time_order():
  """A burst at the end of the clip changes only the late fused steps."""
  model, variables = _init()
  samples, steps = 64000, 8  # 8000 samples per fused step; receptive field ~24k
  waveform = jnp.zeros((1, samples, 1)).at[0, -1000:, 0].set(0.5)
  branch = jax.jit(
      functools.partial(
          model.apply,
          train=False,
          method=lambda m, w, train: m.audio_branch(w, steps, train=train),
      )
  )
  quiet = np.asarray(branch(variables, jnp.zeros_like(waveform)))
  loud = np.asarray(branch(variables, waveform))
  assert loud.shape == (1, steps, 16)
  changed = np.abs(loud - quiet).max(axis=-1)[0]  # [steps]
  assert changed[-1] > 0
  np.testing.assert_array_equal(changed[:3], 0.0)


# ---------------------------------------------------------------- CAM


def test_logit_is_mean_of_cam_plus_bias():
  model, variables = _init()
  params = dict(variables["params"])
  # A non-zero bias, so that the identity's "+ bias" is exercised.
  params["head"] = {**params["head"], "bias": jnp.array([0.37], jnp.float32)}
  out = _jit_apply(model, False)({**variables, "params": params}, *_inputs())
  cam_map = ms.cam(out["features"], params["head"])
  assert cam_map.shape == (B, 1, 2, 2) and cam_map.dtype == jnp.float32
  np.testing.assert_allclose(
      cam_map.mean(axis=(1, 2, 3)) + 0.37, out["logit"], rtol=1e-5, atol=1e-5
  )
  assert float(jnp.std(cam_map)) > 0  # a map, not a constant


def test_cam_to_frames_shape_range_and_location():
  cam_map = jnp.zeros((2, 2, 4, 4)).at[0, 1, 0, 3].set(5.0).at[1].set(-2.0)
  heat = np.asarray(
      ms.cam_to_frames(cam_map, num_frames=8, height=32, width=32)
  )
  assert heat.shape == (2, 8, 32, 32)
  assert not np.isnan(heat).any()
  assert heat.min() >= 0.0 and heat.max() <= 1.0
  assert heat[0].max() == 1.0 and heat[0].min() == 0.0
  # The peak sits in the last frames, top-right corner.
  t, r, c = np.unravel_index(np.argmax(heat[0]), heat[0].shape)
  assert t >= 4 and r < 8 and c >= 24
  assert heat[0, 0].max() < heat[0, -1].max()
  # A constant map (clip 1) has no location: zeros, not NaN.
  np.testing.assert_array_equal(heat[1], 0.0)


def test_cam_to_frames_from_the_model():
  model, variables = _init()
  out = _eval_out()
  heat = ms.cam_to_frames(
      ms.cam(out["features"], variables["params"]["head"]), FRAMES, SIZE, SIZE
  )
  assert heat.shape == (B, FRAMES, SIZE, SIZE)
  np.testing.assert_allclose(heat.max(axis=(1, 2, 3)), 1.0)
  np.testing.assert_allclose(heat.min(axis=(1, 2, 3)), 0.0)


# ---------------------------------------------------------------- action recognition


def test_action_classifier_takes_the_sync_video_branch():
  sync_model, sync_vars = _init()
  video, _ = _inputs()
  clf = ms.ActionClassifier(num_classes=5, width=WIDTH)
  shapes = jax.eval_shape(
      functools.partial(clf.init, train=False), jax.random.key(0), video
  )
  for collection in ("params", "batch_stats"):
    assert _shape_tree(shapes[collection]["video_branch"]) == _shape_tree(
        sync_vars[collection]["video_branch"]
    )
  assert set(shapes["params"]) == {"video_branch", "trunk", "classifier"}
  # Copy the branch into an (all-zeros) classifier and check it computes the same features.
  blank = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
  copied = ms.init_from_sync(blank, sync_vars)
  assert copied["params"]["classifier"] is blank["params"]["classifier"]
  out = _jit_apply(clf, False)(copied, video)
  assert out["logits"].shape == (B, 5) and out["logits"].dtype == jnp.float32
  assert out["pooled"].shape == (B, 64)
  want = _eval_out()["video_features"].mean(axis=(1, 2, 3))
  np.testing.assert_allclose(out["video_embedding"], want, rtol=1e-5, atol=1e-6)
  embed = _jit_apply(sync_model, False, ms.MultisensoryNet.video_embedding)(
      sync_vars, video
  )
  np.testing.assert_allclose(embed, want, rtol=1e-5, atol=1e-6)
  # A width mismatch cannot be copied silently.
  wide = jax.eval_shape(
      functools.partial(ms.ActionClassifier(5, width=0.25).init, train=False),
      jax.random.key(0),
      video,
  )
  with pytest.raises(ValueError):
    ms.init_from_sync(wide, sync_vars)


def test_action_classifier_fusion_trunk_is_the_sync_nets_visual_pathway():
  """trunk='fusion' copies video branch and fusion; fed silence, it computes the sync
  net's own fusion stages on zero audio features."""
  sync_model, sync_vars = _init()
  video, _ = _inputs()
  clf = ms.ActionClassifier(num_classes=5, width=WIDTH, trunk="fusion")
  shapes = jax.eval_shape(
      functools.partial(clf.init, train=False), jax.random.key(0), video
  )
  assert set(shapes["params"]) == {"video_branch", "fusion", "classifier"}
  blank = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
  copied = ms.init_from_sync(blank, sync_vars)
  for collection in ("params", "batch_stats"):
    for name in ("video_branch", "fusion"):
      assert copied[collection][name] is sync_vars[collection][name]
  out = _jit_apply(clf, False)(copied, video)

  def silent_fusion(module, video):
    v = module.video_branch(video, False)
    a = jnp.zeros((*v.shape[:2], ms.scaled(128, WIDTH)), v.dtype)
    return module.fusion(v, a, False)["scale3"].mean(axis=(1, 2, 3))

  want = sync_model.apply(sync_vars, video, method=silent_fusion)
  np.testing.assert_allclose(out["pooled"], want, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="trunk"):
    ms.ActionClassifier(5, width=WIDTH, trunk="frozen").init(
        jax.random.key(0), video, train=False
    )


def test_conv4_strides_sets_the_cam_resolution():
  """No stride in conv4 (and conv5 stride 1) keeps the fusion map's t x h x w for the CAM."""
  video, waveform = _inputs()
  fine = ms.MultisensoryNet(
      width=WIDTH, conv5_stride=1, conv4_strides=(1, 1, 1)
  )
  out = jax.eval_shape(
      functools.partial(fine.init_with_output, train=False),
      jax.random.key(0),
      video,
      waveform,
  )[0]
  assert out["video_features"].shape[1:4] == (2, 8, 8)
  assert out["features"].shape[1:4] == (2, 8, 8)
  assert out["scale2"].shape[1:4] == (2, 8, 8)


# ---------------------------------------------------------------- BatchNorm and dtype


def test_train_mode_updates_running_stats_everywhere():
  model, variables = _init()
  _, updates = _jit_apply(model, True)(variables, *_inputs())
  stats = updates["batch_stats"]
  for path in (
      ("video_branch", "bn1"),
      ("audio_branch", "bn5"),
      ("fusion", "merge_bn"),
      ("fusion", "stages", "conv5_2", "bn_out"),
  ):
    old, new = variables["batch_stats"], stats
    for key in path:
      old, new = old[key], new[key]
    np.testing.assert_array_equal(old["mean"], 0.0)
    assert np.abs(np.asarray(new["mean"])).max() > 1e-5
    assert new["mean"].dtype == jnp.float32


def test_bfloat16_compute_keeps_float32_params():
  _, variables = _init()
  model16 = ms.MultisensoryNet(width=WIDTH, dtype=jnp.bfloat16)
  video, waveform = _inputs()
  shapes = jax.eval_shape(
      functools.partial(model16.init, train=False),
      jax.random.key(0),
      video,
      waveform,
  )
  assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(shapes))
  out16 = _jit_apply(model16, False)(variables, video, waveform)
  out32 = _eval_out()
  for key in (
      "features",
      "scale1",
      "scale2",
      "video_features",
      "audio_features",
  ):
    assert out16[key].dtype == jnp.bfloat16
  assert out16["logit"].dtype == out16["pooled"].dtype == jnp.float32
  a, b = np.asarray(out16["pooled"]), np.asarray(out32["pooled"])
  assert np.linalg.norm(a - b) <= 0.1 * np.linalg.norm(b) + 1e-3

  sep16 = unet.SeparationUNet(
      encoder_features=(8, 16, 32), merge_levels=(0, 1, 2), dtype=jnp.bfloat16
  )
  spec = jax.ShapeDtypeStruct((B, 65, 50, 2), jnp.float32)
  scales = [
      jax.ShapeDtypeStruct(out32[k].shape, jnp.float32)
      for k in ("scale1", "scale2", "scale3")
  ]
  v = jax.eval_shape(
      functools.partial(sep16.init, train=False),
      jax.random.key(0),
      spec,
      scales,
  )
  assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(v))
  o = jax.eval_shape(
      functools.partial(sep16.apply, train=False), v, spec, scales
  )
  assert o["on_screen"].dtype == o["off_screen"].dtype == jnp.float32


# ---------------------------------------------------------------- separation u-net

SEP = dict(encoder_features=(8, 16, 32, 32), merge_levels=(1, 2, 3))


@functools.cache
def _sep_init():
  model = unet.SeparationUNet(**SEP)
  spec, scales = _sep_inputs()
  init = jax.jit(functools.partial(model.init, train=False))
  return model, init(jax.random.key(2, impl="rbg"), spec, scales)


def _sep_inputs(f=65, t=50, seed=3):
  out = _eval_out()
  spec = jax.random.normal(jax.random.key(seed), (B, f, t, 2))
  return spec, tuple(out[k] for k in ("scale1", "scale2", "scale3"))


def test_unet_output_shapes_for_non_power_of_two_sizes():
  model, variables = _sep_init()
  spec, scales = _sep_inputs()
  out = _jit_apply(model, False)(variables, spec, scales)
  for key in ("on_screen", "off_screen"):
    assert out[key].shape == (B, 65, 50, 1) and out[key].dtype == jnp.float32
    assert np.isfinite(np.asarray(out[key])).all()
  assert not np.allclose(
      out["on_screen"], out["off_screen"]
  )  # two separate heads
  # Other sizes (odd, smaller than 2^depth, already a multiple) keep their shape.
  for f, t in ((33, 17), (5, 3), (64, 32)):
    spec = jax.ShapeDtypeStruct((B, f, t, 2), jnp.float32)
    o = jax.eval_shape(
        functools.partial(model.apply, train=False), variables, spec, scales
    )
    assert o["on_screen"].shape == o["off_screen"].shape == (B, f, t, 1)


def test_unet_uses_the_video_features():
  model, variables = _sep_init()
  spec, scales = _sep_inputs()
  apply = _jit_apply(model, False)
  base = apply(variables, spec, scales)["on_screen"]
  other = apply(variables, spec, tuple(s[::-1] for s in scales))[
      "on_screen"
  ]  # swap clips
  assert not np.allclose(base, other)
  with pytest.raises(ValueError):
    model.apply(variables, spec, scales[:2], train=False)


def test_video_context_is_time_aligned():
  # Features rising linearly over t = 4 steps: the context follows the same
  # ramp over the spectrogram's 50 frames, and the padded tail repeats the end.
  ramp = jnp.arange(4.0)[None, :, None, None, None] * jnp.ones((1, 4, 3, 3, 2))
  for level_frames in (64, 16, 4):
    ctx = np.asarray(unet.video_context(ramp, 50, 64, level_frames))
    assert ctx.shape == (1, level_frames, 2)
    assert (np.diff(ctx[0, :, 0]) >= -1e-6).all()
    assert ctx[0, 0, 0] < 1.0 and ctx[0, -1, 0] == pytest.approx(3.0)
  full = np.asarray(unet.video_context(ramp, 50, 64, 64))[0, :, 0]
  np.testing.assert_allclose(full[49:], 3.0)  # frames 50..63 are padding
  assert full[:6].max() <= 0.0 + 1e-6 and full[44:50].min() >= 3.0 - 1e-6


# ---------------------------------------------------------------- losses


def _preds_and_targets(seed=0):
  rng = np.random.default_rng(seed)
  return [
      jnp.asarray(rng.normal(size=(4, 9, 7, 1)), jnp.float32) for _ in range(4)
  ]


def test_pit_loss_is_at_most_l1_and_equal_when_assignment_is_right():
  on, off, t_on, t_off = _preds_and_targets()
  pit, l1 = unet.pit_l1_loss(on, off, t_on, t_off), unet.l1_loss(
      on, off, t_on, t_off
  )
  assert float(pit) <= float(l1)
  # Predictions near their own targets: the kept assignment is optimal everywhere.
  near_on, near_off = t_on + 0.01 * on, t_off + 0.01 * off
  np.testing.assert_allclose(
      unet.pit_l1_loss(near_on, near_off, t_on, t_off),
      unet.l1_loss(near_on, near_off, t_on, t_off),
      rtol=1e-6,
  )
  # Swapped outputs: L1 is large, PIT still sees the near-perfect separation.
  assert float(unet.pit_l1_loss(near_off, near_on, t_on, t_off)) < 0.05
  assert float(unet.l1_loss(near_off, near_on, t_on, t_off)) > 1.0
  # A hand-checked value: |1 - 0| over one element, both terms.
  one, zero = jnp.ones((1, 1, 1, 1)), jnp.zeros((1, 1, 1, 1))
  assert float(unet.l1_loss(one, zero, zero, one)) == 2.0
  assert float(unet.pit_l1_loss(one, zero, zero, one)) == 0.0


def test_pit_loss_is_invariant_to_swapping_predictions():
  on, off, t_on, t_off = _preds_and_targets(seed=1)
  # Mix per example: half the batch swapped, the rest not.
  swap = jnp.array([True, False, True, False])[:, None, None, None]
  on2, off2 = jnp.where(swap, off, on), jnp.where(swap, on, off)
  np.testing.assert_allclose(
      unet.pit_l1_loss(on2, off2, t_on, t_off),
      unet.pit_l1_loss(on, off, t_on, t_off),
      rtol=1e-6,
  )
  np.testing.assert_allclose(
      unet.pit_l1_loss(off, on, t_on, t_off),
      unet.pit_l1_loss(on, off, t_on, t_off),
      rtol=1e-6,
  )
  assert not np.isclose(
      float(unet.l1_loss(off, on, t_on, t_off)),
      float(unet.l1_loss(on, off, t_on, t_off)),
  )


# ---------------------------------------------------------------- 3D conv by time taps


@pytest.mark.parametrize(
    "shape,kernel,strides",
    [
        ((2, 16, 32, 32, 3), (5, 7, 7), (2, 2, 2)),  # conv1
        ((2, 7, 9, 9, 4), (3, 3, 3), (1, 1, 1)),  # odd sizes, stride 1
        ((2, 7, 9, 9, 4), (3, 3, 3), (2, 2, 2)),
        ((2, 5, 6, 6, 4), (1, 1, 1), (2, 2, 2)),  # strided shortcut
        ((2, 4, 4, 4, 4), (3, 3, 3), (1, 2, 2)),  # conv5_1
    ],
)
def test_conv3d_by_time_taps_equals_lax_3d_conv_and_nn_conv_init(
    shape, kernel, strides
):
  """Same parameter (name, shape, init) as nn.Conv, same outputs and kernel gradient."""
  import flax.linen as nn

  x = jax.random.normal(jax.random.key(0), shape)
  ref = nn.Conv(6, kernel, strides=strides, padding="SAME", use_bias=False)
  new = ms.Conv3D(6, kernel, strides)
  v_ref, v_new = ref.init(jax.random.key(3), x), new.init(jax.random.key(3), x)
  np.testing.assert_array_equal(
      v_ref["params"]["kernel"], v_new["params"]["kernel"]
  )
  np.testing.assert_allclose(
      new.apply(v_ref, x), ref.apply(v_ref, x), atol=1e-5
  )
  g_ref = jax.grad(lambda v: jnp.sum(ref.apply(v, x) ** 2))(v_ref)["params"][
      "kernel"
  ]
  g_new = jax.grad(lambda v: jnp.sum(new.apply(v, x) ** 2))(v_ref)["params"][
      "kernel"
  ]
  np.testing.assert_allclose(
      g_new, g_ref, rtol=1e-4, atol=1e-4 * float(jnp.abs(g_ref).max())
  )


def test_remat_keeps_parameters_values_and_gradients():
  """config.model.remat recomputes the residual blocks in the backward pass:
  same variables, outputs, statistics and gradients."""
  model, variables = _init()
  remat = ms.MultisensoryNet(width=WIDTH, remat=True)
  assert _shape_tree(
      jax.eval_shape(
          functools.partial(remat.init, train=False),
          jax.random.key(1, impl="rbg"),
          *_inputs(),
      )
  ) == _shape_tree(variables)

  def loss(m):
    def f(params):
      out, new = m.apply(
          {**variables, "params": params},
          *_inputs(),
          train=True,
          mutable=["batch_stats"],
      )
      return jnp.sum(out["logit"] ** 2), new

    return jax.jit(jax.value_and_grad(f, has_aux=True))(variables["params"])

  (l0, s0), g0 = loss(model)
  (l1, s1), g1 = loss(remat)
  np.testing.assert_allclose(l1, l0, rtol=1e-6)
  for a, b in zip(jax.tree.leaves((s1, g1)), jax.tree.leaves((s0, g0))):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
