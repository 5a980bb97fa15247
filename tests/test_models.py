"""Tests for L3-Net, AVE-Net and AVOL-Net: tiny widths; full size only through eval_shape."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from avself.models import avenet, l3, layers, vgg

B = 2
WIDTH = 0.125  # 8/16/32/64 filters
IMAGE_SHAPE = (B, 64, 64, 3)  # conv4 map 8x8
SPEC_SHAPE = (
    B,
    65,
    50,
    1,
)  # conv4 map 8x6 (65 -> 32 -> 16 -> 8, 50 -> 25 -> 12 -> 6)


def _inputs(seed=0, batch=B):
  ki, ks = jax.random.split(jax.random.key(seed))
  image = jax.random.uniform(
      ki, (batch,) + IMAGE_SHAPE[1:], minval=-1.0, maxval=1.0
  )
  spec = jax.random.normal(ks, (batch,) + SPEC_SHAPE[1:])
  return image, spec


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))


def _numpy_adaptive_max_pool(x, out_hw):
  """One bin at a time, edges floor(i*H/n) .. ceil((i+1)*H/n) as torch.nn.AdaptiveMaxPool2d."""
  (oh, ow), (b, h, w, c) = out_hw, x.shape
  out = np.empty((b, oh, ow, c), x.dtype)
  for i in range(oh):
    r0, r1 = int(np.floor(i * h / oh)), int(np.ceil((i + 1) * h / oh))
    for j in range(ow):
      c0, c1 = int(np.floor(j * w / ow)), int(np.ceil((j + 1) * w / ow))
      out[:, i, j] = x[:, r0:r1, c0:c1].max(axis=(1, 2))
  return out


@functools.cache
def _init(cls):
  """Tiny model and its variables, shared by the tests."""
  model = cls(width=WIDTH)
  # An 'rbg' key compiles init ~3x faster on CPU than threefry (~7 s); the
  # values do not matter here, only that they are a real init.
  init = jax.jit(functools.partial(model.init, train=False))
  return model, init(jax.random.key(1, impl="rbg"), *_inputs())


@functools.cache
def _jit_apply(model, train, method=None):
  """model.apply compiled once per (model, mode): one XLA compile beats ~100 eager ones."""
  mutable = ["batch_stats"] if train else False
  return jax.jit(
      functools.partial(
          model.apply, train=train, mutable=mutable, method=method
      )
  )


# ---------------------------------------------------------------- shapes & names


def test_l3_output_shapes():
  model, variables = _init(l3.L3Net)
  out = _jit_apply(model, False)(variables, *_inputs())
  assert out["logits"].shape == (B, 2) and out["logits"].dtype == jnp.float32
  assert out["vision"]["conv4_2"].shape == (B, 8, 8, 64)
  assert out["vision"]["conv4_2_pre_relu"].shape == (B, 8, 8, 64)
  assert out["vision"]["pooled"].shape == (B, 64)
  assert out["audio"]["conv4_2"].shape == (B, 8, 6, 64)
  assert out["audio"]["pooled"].shape == (B, 64)
  # pooled is the global max of conv4_2, which is the ReLU of conv4_2_pre_relu.
  v = out["vision"]
  np.testing.assert_array_equal(
      v["conv4_2"], jnp.maximum(v["conv4_2_pre_relu"], 0)
  )
  np.testing.assert_array_equal(v["pooled"], v["conv4_2"].max(axis=(1, 2)))


def test_avenet_output_shapes():
  model, variables = _init(avenet.AVENet)
  out = _jit_apply(model, False)(variables, *_inputs())
  assert out["logits"].shape == (B, 2)
  assert out["distance"].shape == (B,)
  assert out["vision_embedding"].shape == (B, 128)
  assert out["audio_embedding"].shape == (B, 128)
  assert out["vision"]["conv4_2"].shape == (B, 8, 8, 64)
  assert out["audio"]["pooled"].shape == (B, 64)


def test_avolnet_output_shapes():
  model, variables = _init(avenet.AVOLNet)
  out = _jit_apply(model, False)(variables, *_inputs())
  assert out["logit"].shape == (B,)
  assert out["localization_map"].shape == (B, 8, 8)
  assert out["vision_embedding_map"].shape == (B, 8, 8, 128)
  assert out["audio_embedding"].shape == (B, 128)


def test_trunks_share_one_layout_across_models():
  """L3 checkpoints initialise AVE/AVOL trunks by copying params['vision_trunk'] etc."""
  trees = [_init(cls)[1] for cls in (l3.L3Net, avenet.AVENet, avenet.AVOLNet)]
  for collection in ("params", "batch_stats"):
    for name in ("vision_trunk", "audio_trunk"):
      shapes = [
          jax.tree_util.tree_map(jnp.shape, t[collection][name]) for t in trees
      ]
      assert shapes[0] == shapes[1] == shapes[2]
  assert set(trees[0]["params"]["vision_trunk"]) == {
      f"{kind}{b}_{i}"
      for kind in ("conv", "bn")
      for b in (1, 2, 3, 4)
      for i in (1, 2)
  }


def test_embed_methods_match_call():
  image, spec = _inputs()
  model, variables = _init(l3.L3Net)
  out = _jit_apply(model, False)(variables, image, spec)
  vis = _jit_apply(model, False, l3.L3Net.embed_vision)(variables, image)
  aud = _jit_apply(model, False, l3.L3Net.embed_audio)(variables, spec)
  np.testing.assert_allclose(
      vis["pooled"], out["vision"]["pooled"], rtol=1e-5, atol=1e-6
  )
  np.testing.assert_allclose(
      aud["conv4_2"], out["audio"]["conv4_2"], rtol=1e-5, atol=1e-6
  )

  model, variables = _init(avenet.AVENet)
  out = _jit_apply(model, False)(variables, image, spec)
  vis = _jit_apply(model, False, avenet.AVENet.embed_vision)(variables, image)
  aud = _jit_apply(model, False, avenet.AVENet.embed_audio)(variables, spec)
  np.testing.assert_allclose(
      vis["embedding"], out["vision_embedding"], rtol=1e-5, atol=1e-6
  )
  np.testing.assert_allclose(
      aud["embedding"], out["audio_embedding"], rtol=1e-5, atol=1e-6
  )
  assert aud["pooled"].shape == (B, 64)


# ---------------------------------------------------------------- parameter counts


def test_full_size_parameter_counts():
  model = l3.L3Net()  # width 1
  shapes = jax.eval_shape(
      functools.partial(model.init, train=False),
      jax.random.key(0),
      jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32),
      jax.ShapeDtypeStruct((1, 257, 199, 1), jnp.float32),
  )
  params = shapes["params"]
  assert _count(params["vision_trunk"]) == 4_687_296
  assert _count(params["audio_trunk"]) == 4_686_144
  assert _count(params["fusion"]) == 131_458
  assert _count(params) == 4_687_296 + 4_686_144 + 131_458
  assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(params))


def test_full_size_transfer_features_and_map_sizes():
  model = l3.L3Net()
  image = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
  spec = jax.ShapeDtypeStruct((1, 257, 199, 1), jnp.float32)
  variables = jax.eval_shape(
      functools.partial(model.init, train=False), jax.random.key(0), image, spec
  )

  def features(v, x, y):
    out = model.apply(v, x, y, train=False)
    return (
        out["vision"],
        out["audio"],
        l3.vision_transfer_features(out["vision"]),
        l3.audio_transfer_features(out["audio"]),
    )

  vision, audio, vf, af = jax.eval_shape(features, variables, image, spec)
  assert vision["conv4_2"].shape == (
      1,
      28,
      28,
      512,
  )  # the paper's pool4 is 28x28
  assert audio["conv4_2_pre_relu"].shape == (1, 32, 24, 512)  # and 32x24
  assert vision["pooled"].shape == audio["pooled"].shape == (1, 512)
  assert vf.shape == (1, 8192) and af.shape == (1, 6144)


# ---------------------------------------------------------------- transfer features


@pytest.mark.parametrize(
    "hw,out_hw",
    [
        ((8, 8), (4, 4)),
        ((32, 24), (4, 3)),
        ((28, 28), (4, 4)),
        ((7, 5), (4, 3)),
        ((8, 6), (4, 3)),
        ((3, 2), (4, 3)),
        ((10, 13), (3, 5)),
    ],
)
def test_adaptive_max_pool_matches_numpy(hw, out_hw):
  x = np.random.default_rng(0).normal(size=(2,) + hw + (3,)).astype(np.float32)
  want = _numpy_adaptive_max_pool(x, out_hw)
  got = jax.jit(layers.adaptive_max_pool, static_argnums=1)(
      jnp.asarray(x), out_hw
  )
  np.testing.assert_array_equal(np.asarray(got), want)


def test_transfer_features_pool_the_right_layer():
  model, variables = _init(l3.L3Net)
  out = _jit_apply(model, False)(variables, *_inputs())
  af = l3.audio_transfer_features(out["audio"])
  vf = l3.vision_transfer_features(out["vision"])
  assert af.shape == (B, 4 * 3 * 64) and vf.shape == (B, 4 * 4 * 64)
  # Flatten order: grid row, grid column, channel (channel fastest).
  want_a = _numpy_adaptive_max_pool(
      np.asarray(out["audio"]["conv4_2_pre_relu"]), (4, 3)
  )
  want_v = _numpy_adaptive_max_pool(
      np.asarray(out["vision"]["conv4_2"]), (4, 4)
  )
  np.testing.assert_array_equal(np.asarray(af), want_a.reshape(B, -1))
  np.testing.assert_array_equal(np.asarray(vf), want_v.reshape(B, -1))
  assert (np.asarray(af) < 0).any()  # audio features are taken before the ReLU
  assert (np.asarray(vf) >= 0).all()


# ---------------------------------------------------------------- dtype


def test_bfloat16_compute_float32_params():
  image, spec = _inputs()
  model32, variables = _init(l3.L3Net)
  model16 = l3.L3Net(width=WIDTH, dtype=jnp.bfloat16)
  shapes16 = jax.eval_shape(
      functools.partial(model16.init, train=False),
      jax.random.key(1),
      image,
      spec,
  )
  assert all(
      x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(shapes16)
  )
  # Same float32 params, different compute dtype. train=True normalises with
  # batch statistics, so activations stay O(1) and the comparison is fair.
  out16, _ = _jit_apply(model16, True)(variables, image, spec)
  out32, _ = _jit_apply(model32, True)(variables, image, spec)
  for key in ("conv4_2", "conv4_2_pre_relu", "pooled"):
    assert out16["vision"][key].dtype == jnp.bfloat16
    assert out16["audio"][key].dtype == jnp.bfloat16
  assert out16["logits"].dtype == jnp.float32
  for a, b in [
      (out16["vision"]["pooled"], out32["vision"]["pooled"]),
      (out16["audio"]["pooled"], out32["audio"]["pooled"]),
      (out16["logits"], out32["logits"]),
  ]:
    a, b = np.asarray(a, np.float32), np.asarray(b)
    assert np.linalg.norm(a - b) <= 0.1 * np.linalg.norm(b) + 1e-3

  model16 = avenet.AVENet(width=WIDTH, dtype=jnp.bfloat16)
  _, variables = _init(avenet.AVENet)
  out = _jit_apply(model16, False)(variables, image, spec)
  assert out["vision"]["pooled"].dtype == jnp.bfloat16
  assert out["vision_embedding"].dtype == jnp.float32
  np.testing.assert_allclose(
      np.linalg.norm(out["vision_embedding"], axis=-1), 1.0, rtol=1e-5
  )


# ---------------------------------------------------------------- BatchNorm


def test_batchnorm_running_stats_update_in_train_and_are_used_in_eval():
  model, variables = _init(l3.L3Net)
  image, spec = _inputs()
  _, updates = _jit_apply(model, True)(variables, image, spec)
  old = variables["batch_stats"]["vision_trunk"]["bn1_1"]
  new = updates["batch_stats"]["vision_trunk"]["bn1_1"]
  # mean <- 0.9 * mean + 0.1 * batch mean, starting from 0 / 1.
  np.testing.assert_array_equal(old["mean"], 0.0)
  assert np.abs(np.asarray(new["mean"])).max() > 1e-4
  assert not np.allclose(new["var"], old["var"])

  # Eval uses the running stats: new stats change the output ...
  updated = {
      "params": variables["params"],
      "batch_stats": updates["batch_stats"],
  }
  eval_old = _jit_apply(model, False)(variables, image, spec)["logits"]
  eval_new = _jit_apply(model, False)(updated, image, spec)["logits"]
  assert not np.allclose(eval_old, eval_new)
  # ... and an example's output no longer depends on the rest of its batch,
  # while in train mode (batch statistics) it does.
  other_image, other_spec = _inputs(seed=7)
  mixed_image = image.at[1].set(other_image[1])
  mixed_spec = spec.at[1].set(other_spec[1])
  eval_mixed = _jit_apply(model, False)(updated, mixed_image, mixed_spec)[
      "logits"
  ]
  np.testing.assert_allclose(eval_mixed[0], eval_new[0], rtol=1e-5, atol=1e-6)
  train_a, _ = _jit_apply(model, True)(updated, image, spec)
  train_b, _ = _jit_apply(model, True)(updated, mixed_image, mixed_spec)
  assert not np.allclose(train_a["logits"][0], train_b["logits"][0])


# ---------------------------------------------------------------- AVE-Net / AVOL-Net


def test_avenet_embeddings_unit_norm_and_distance():
  model, variables = _init(avenet.AVENet)
  out = _jit_apply(model, False)(variables, *_inputs())
  v, a = np.asarray(out["vision_embedding"]), np.asarray(out["audio_embedding"])
  np.testing.assert_allclose(np.linalg.norm(v, axis=-1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(a, axis=-1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(
      out["distance"], np.linalg.norm(v - a, axis=-1), rtol=1e-5
  )
  # fc3 sees only the distance: logits = d * w + b.
  fc3 = variables["params"]["fc3"]
  assert fc3["kernel"].shape == (1, 2)
  d = np.asarray(out["distance"])[:, None]
  want = d * np.asarray(fc3["kernel"]) + np.asarray(fc3["bias"])
  np.testing.assert_allclose(out["logits"], want, rtol=1e-5, atol=1e-6)


def test_avolnet_logit_is_max_of_calibrated_map():
  model, variables = _init(avenet.AVOLNet)
  params = variables["params"]
  assert float(params["calibration_scale"]) == 10.0
  assert float(params["calibration_bias"]) == -1.5
  out = _jit_apply(model, False)(variables, *_inputs())
  v_map = np.asarray(out["vision_embedding_map"])
  a = np.asarray(out["audio_embedding"])
  np.testing.assert_allclose(np.linalg.norm(v_map, axis=-1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(a, axis=-1), 1.0, rtol=1e-5)
  sim = np.einsum("bhwd,bd->bhw", v_map, a)
  np.testing.assert_allclose(
      out["localization_map"], 10.0 * sim - 1.5, rtol=1e-4, atol=1e-5
  )
  want = np.asarray(out["localization_map"]).max(axis=(1, 2))
  np.testing.assert_array_equal(out["logit"], want)


def test_width_rounding():
  assert [layers.scaled(f, 0.125) for f in vgg.BLOCK_FILTERS] == [8, 16, 32, 64]
  assert layers.scaled(64, 0.001) == 1


def test_avenet_starts_with_matched_meaning_close():
  # From a free init fc3 learned "matched = far" on the synthetic world,
  # which turned cosine retrieval upside down; it starts the right way round.
  _, variables = _init(avenet.AVENet)
  fc3 = variables["params"]["fc3"]
  margin = lambda d: float(
      d * (fc3["kernel"][0, 1] - fc3["kernel"][0, 0])
      + fc3["bias"][1]
      - fc3["bias"][0]
  )
  assert margin(0.5) > 0 > margin(1.9)
  assert abs(margin(np.sqrt(2.0))) < 1e-5


# ---------------------------------------------------------------- column pairs


@pytest.mark.parametrize(
    "shape", [(3, 16, 20, 3), (3, 17, 19, 1)], ids=["even", "odd"]
)
def test_column_pairs_compute_the_same_trunk(shape):
  """Block 1 on column pairs: same variables, outputs, gradients and statistics."""
  x = jax.random.normal(jax.random.key(3), shape)
  plain = vgg.VGGTrunk(width=WIDTH)
  packed = vgg.VGGTrunk(width=WIDTH, pack_columns=True)
  variables = plain.init(jax.random.key(0), x, train=False)
  packed_init = packed.init(jax.random.key(0), x, train=False)
  # Same names, shapes and initial values: checkpoints are interchangeable.
  jax.tree.map(np.testing.assert_array_equal, packed_init, variables)

  def loss_and_grad(model):
    def loss(params):
      out, updates = model.apply(
          {"params": params, "batch_stats": variables["batch_stats"]},
          x,
          train=True,
          mutable=["batch_stats"],
      )
      # Weights that tell positions apart, so a misplaced column shows.
      weights = jnp.arange(out["conv4_2"].size).reshape(out["conv4_2"].shape)
      return jnp.sum(out["conv4_2"] * weights), (out, updates)

    return jax.jit(jax.value_and_grad(loss, has_aux=True))(variables["params"])

  (_, (out_a, stats_a)), grads_a = loss_and_grad(plain)
  (_, (out_b, stats_b)), grads_b = loss_and_grad(packed)
  close = functools.partial(np.testing.assert_allclose, rtol=1e-4, atol=1e-5)
  jax.tree.map(close, out_b, out_a)
  jax.tree.map(close, stats_b, stats_a)
  for a, b in zip(jax.tree.leaves(grads_a), jax.tree.leaves(grads_b)):
    np.testing.assert_allclose(b, a, atol=1e-4 * np.abs(a).max())
  trained = {"params": variables["params"], **stats_a}
  eval_a = plain.apply(trained, x, train=False)
  eval_b = packed.apply(trained, x, train=False)
  jax.tree.map(close, eval_b, eval_a)


def test_packed_kernel_is_the_conv_on_column_pairs():
  x = jax.random.normal(jax.random.key(0), (2, 5, 8, 3))
  kernel = jax.random.normal(jax.random.key(1), (3, 3, 3, 4))
  conv = functools.partial(
      jax.lax.conv_general_dilated,
      window_strides=(1, 1),
      padding="SAME",
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
  )
  expected = conv(x, kernel)  # [2, 5, 8, 4]
  got = conv(x.reshape(2, 5, 4, 6), vgg.pack_kernel(kernel))  # [2, 5, 4, 8]
  np.testing.assert_allclose(
      got.reshape(expected.shape), expected, rtol=1e-5, atol=1e-5
  )
