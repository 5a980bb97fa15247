"""Every shipped config loads, passes validation and names a valid synthetic world."""

import dataclasses
import glob
import os

import pytest

from avself import config_lib
from avself.data.synthetic import options as synthetic_options
from avself.data import synthetic_records
import tiny

REPO = tiny.ROOT
CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "*.py")))


# Each config, each of its variants, and the combinations the docs use.
COMBINED = {
    "multisensory_motion_synthetic.py": ["noflash,runlocal"],
    "action_synthetic.py": [
        "noflash,scratch",
        "noflash,runlocal",
        "look,scratch",
    ],
}
CASES = (
    [(p, None) for p in CONFIGS]
    + [(p, v) for p in CONFIGS for v in config_lib.load_file(p).VARIANTS]
    + [(p, v) for p in CONFIGS for v in COMBINED.get(os.path.basename(p), [])]
)


@pytest.mark.parametrize(
    "path,arg",
    CASES,
    ids=[f"{os.path.basename(p)}:{a or ''}" for p, a in CASES],
)
def test_config_loads_and_validates(path, arg):
  config = config_lib.load_file(path).get_config(arg)
  if not config.data.get("synthetic") and not config.data.get("path"):
    config.data.path = (
        "/data/records"  # paper-scale configs take it on the command line
    )
  config.batch_size *= 8  # the test's 8 devices (validate wants a multiple)
  config_lib.validate(config)
  s = config.data.get("synthetic")
  if s is not None and not config.data.get("path"):
    fields = {
        f.name for f in dataclasses.fields(synthetic_options.WorldOptions)
    }
    options = {k: v for k, v in s.items() if k in fields}
    synthetic_options.as_options(**options)  # raises on a bad world


EVAL_CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "eval", "*.py")))


@pytest.mark.parametrize("path", CONFIGS + EVAL_CONFIGS, ids=os.path.basename)
def test_an_unknown_variant_is_refused_with_the_known_ones(path):
  module = config_lib.load_file(path)
  with pytest.raises(ValueError, match="unknown config variant.*'typo'"):
    module.get_config("typo")
  if module.VARIANTS:  # also beside a good one
    with pytest.raises(ValueError, match="typo"):
      module.get_config(f"{module.VARIANTS[0]},typo")


def test_action_synthetic_fine_tunes_the_motion_sync_run():
  """The pre-training run it starts from has its net and its world's kind of clips."""
  action = config_lib.load_file(
      os.path.join(REPO, "configs", "action_synthetic.py")
  )
  motion = config_lib.load_file(
      os.path.join(REPO, "configs", "multisensory_motion_synthetic.py")
  )
  cam = config_lib.load_file(
      os.path.join(REPO, "configs", "multisensory_cam_synthetic.py")
  )
  fine, pre = action.get_config(), motion.get_config()
  assert fine.init_from == "/tmp/multisensory_synthetic_motion"
  assert action.get_config("scratch").init_from == ""
  for key in ("width", "conv4_strides", "stage_kernel", "conv5_stride"):
    assert fine.model[key] == pre.model[key], key
  assert fine.data.image_size == pre.data.image_size == 56
  assert (
      fine.data.synthetic.class_cue == pre.data.synthetic.class_cue == "motion"
  )
  # Unlabelled pre-training videos are another world than the labelled ones.
  assert synthetic_records._key(fine.data) != synthetic_records._key(pre.data)
  assert fine.data.synthetic.seed != pre.data.synthetic.seed
  look = action.get_config("look")
  assert look.data.synthetic.class_cue == "look"  # the sync world, same cache
  assert synthetic_records._key(look.data) == synthetic_records._key(
      _with_shorter_side(cam.get_config().data, 64)
  )


def test_action_synthetic_noflash_fine_tunes_the_noflash_sync_run():
  action = config_lib.load_file(
      os.path.join(REPO, "configs", "action_synthetic.py")
  )
  motion = config_lib.load_file(
      os.path.join(REPO, "configs", "multisensory_motion_synthetic.py")
  )
  fine, pre = action.get_config("noflash"), motion.get_config("noflash")
  assert fine.init_from == "/tmp/multisensory_synthetic_motion_noflash"
  assert action.get_config("noflash,scratch").init_from == ""
  assert fine.data.synthetic.flash == pre.data.synthetic.flash == 0.0
  assert pre.init_from == "" and pre.data.synthetic.class_cue == "motion"
  for key in ("width", "conv4_strides", "stage_kernel", "conv5_stride"):
    assert fine.model[key] == pre.model[key], key
  assert synthetic_records._key(fine.data) != synthetic_records._key(pre.data)


def test_multisensory_voice_chain_and_cache_keys():
  voice, cam, plain = (
      config_lib.load_file(os.path.join(REPO, "configs", name)).get_config()
      for name in (
          "multisensory_voice_synthetic.py",
          "multisensory_cam_synthetic.py",
          "multisensory_synthetic.py",
      )
  )
  assert voice.data.synthetic.voice == 0.5 and cam.data.synthetic.voice == 0.0
  # The CAM net, from the plain sync run, on the speaking world.
  assert voice.init_from == cam.init_from == "/tmp/multisensory_synthetic"
  assert voice.model.stage_kernel == (1, 1, 1) and cam.model.stage_kernel == (
      3,
      1,
      1,
  )
  assert {**voice.model.to_dict(), "stage_kernel": None} == {
      **cam.model.to_dict(),
      "stage_kernel": None,
  }
  assert voice.data.image_size == 112 and voice.evals.localization.flip
  assert voice.total_steps == 1000 and cam.total_steps == 600
  assert synthetic_records._key(voice.data) != synthetic_records._key(cam.data)
  # voice=0 is keyed as if the field did not exist: caches made before it stay.
  older = plain.data.copy_and_resolve_references()
  del older.synthetic["voice"]
  assert synthetic_records._key(plain.data) == synthetic_records._key(older)


def _with_shorter_side(data, size):
  data = data.copy_and_resolve_references()
  data.synthetic.shorter_side = size
  return data


def test_the_world_has_one_default_sample_rate():
  assert (
      config_lib.synthetic_world_config().sample_rate
      == synthetic_options.WorldOptions().sample_rate
  )


def test_the_demo_world_keeps_its_cache():
  """The README's first command finds the records an earlier run built."""
  demo = config_lib.load_file(os.path.join(REPO, "configs", "l3_synthetic.py"))
  assert synthetic_records._key(demo.get_config().data) == "488b09c64a"
