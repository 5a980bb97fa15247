"""avself.cli_flags, and the tools that parse their flags with it (absl, one FlagValues each)."""

import os
import tempfile

from absl import flags
import pytest

from avself import cli_flags
from avself import config_lib
from avself.data.synthetic import cli as synthetic_cli
from avself.data.synthetic import options as synthetic_options
from avself.datasets import build
import tiny


def _tool_flags():
  values = flags.FlagValues()
  flags.DEFINE_string("output", None, "out", flag_values=values)
  flags.DEFINE_integer("num", 3, "a count", flag_values=values)
  flags.DEFINE_bool("no_stems", False, "a switch", flag_values=values)
  flags.mark_flag_as_required("output", flag_values=values)
  return values


def test_parse_takes_both_forms_and_the_last_repeat_wins():
  values = _tool_flags()
  args = cli_flags.parse(
      values, ["--output", "a", "--num=5", "--no_stems", "--num", "7"], prog="t"
  )
  assert (args.output, args.num, args.no_stems) == ("a", 7, True)


def test_each_call_starts_from_the_defaults():
  values = _tool_flags()
  cli_flags.parse(values, ["--output=a", "--num=5", "--no_stems"], prog="t")
  args = cli_flags.parse(values, ["--output=b"], prog="t")
  assert (args.output, args.num, args.no_stems) == ("b", 3, False)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--output=a", "--num=x"], "t: flag --num=x: invalid literal"),
        ([], "t: flag --output=None: Flag --output must have a value"),
        (["--output=a", "stray"], "t: unexpected arguments: stray"),
        (["--output=a", "--typo=1"], "t: Unknown command line flag 'typo'"),
    ],
)
def test_a_bad_command_line_exits_with_one_line(argv, message):
  with pytest.raises(SystemExit) as exit_info:
    cli_flags.parse(_tool_flags(), argv, prog="t")
  assert str(exit_info.value.code).startswith(message)
  assert "\n" not in str(exit_info.value.code)


def test_file_arguments_interleave_with_flags():
  args, files = cli_flags.parse_with_arguments(
      _tool_flags(), ["a.mp4", "--output=o", "b.mp4", "--", "--c.mp4"]
  )
  assert args.output == "o"
  assert files == ["a.mp4", "b.mp4", "--c.mp4"]


def test_help_prints_the_doc_and_the_flags(capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli_flags.parse(_tool_flags(), ["--help"], "My tool.", prog="t")
  assert exit_info.value.code == 0
  out = capsys.readouterr().out
  assert out.startswith("My tool.") and "--num: a count" in out


# The flags and defaults the tools had under argparse (documented commands).
DEFAULTS = {
    "benchmarks/synthetic_world.py": dict(
        num_videos=40,
        workers=os.cpu_count(),
        size=128,
        duration=6.0,
        fps=15,
        sample_rate=48000,
        no_stems=False,
    ),
    "benchmarks/train_throughput.py": dict(
        batch_sizes="16,64", steps=5, dtype="float32", width=1.0, one=0
    ),
    "benchmarks/input_pipeline.py": dict(
        workdir=os.path.join(tempfile.gettempdir(), "avself_bench"),
        num_videos=200,
        fps=10.0,
        batch_size=64,
        batches=60,
        warmup=20,
        samples_per_video="8",
        cache=False,
        skip_prepare=False,
    ),
    "benchmarks/cam_misses.py": dict(
        workdir=None,
        step=None,
        split="test",
        num_videos=24,
        flip=False,
        output="",
    ),
    "benchmarks/contrastive_vs_binary.py": dict(
        workdir=None,
        methods="binary,infonce",
        size="tiny",
        steps=600,
        eval_every=100,
        batch_size=32,
        seed=0,
        cache_dir="",
        linear_probe=False,
        report_only=False,
    ),
    "avself/data/prepare.py": dict(
        videos=None,
        output=None,
        labels=None,
        fps=10.0,
        shorter_side=256,
        jpeg_quality=90,
        sample_rate=48000,
        channels=1,
        audio_format="pcm_s16le",
        clip_seconds=0.0,
        max_seconds=0.0,
        min_seconds=1.0,
        num_shards=8,
        test_fraction=None,
        workers=None,
        quiet=False,
    ),
    "avself/embed.py": dict(
        workdir=None,
        output=None,
        step=None,
        hop=0.1,
        fps=1.0,
        feature="transfer",
        batch_size=32,
    ),
    "avself/localize.py": dict(
        workdir=None,
        output=None,
        step=None,
        scale=0,
        max_seconds=None,
        hop=1,
        flip=False,
    ),
    "avself/separate.py": dict(
        workdir=None,
        output=None,
        offscreen=None,
        step=None,
        max_seconds=None,
    ),
}


@pytest.mark.parametrize("path", sorted(DEFAULTS))
def test_tools_keep_their_flag_names_and_defaults(path):
  module = config_lib.load_file(os.path.join(tiny.ROOT, path))
  values = {k: module.FLAGS[k].default for k in DEFAULTS[path]}
  assert values == DEFAULTS[path]
  assert set(module.FLAGS) - {"flagfile", "undefok"} == set(DEFAULTS[path])


def test_required_benchmark_flags_are_named_when_missing():
  cam = config_lib.load_file(
      os.path.join(tiny.ROOT, "benchmarks/cam_misses.py")
  )
  with pytest.raises(SystemExit, match="--workdir"):
    cam.main([])
  versus = config_lib.load_file(
      os.path.join(tiny.ROOT, "benchmarks/contrastive_vs_binary.py")
  )
  with pytest.raises(SystemExit, match="--size=huge"):
    versus.main(["--workdir=/tmp/x", "--size=huge"])


def test_the_synthetic_cli_has_a_flag_per_world_option():
  defaults = synthetic_options.WorldOptions()
  for name, value in vars(defaults).items():
    assert synthetic_cli.FLAGS[name].default == value, name
  with pytest.raises(SystemExit, match="--num_videos"):
    synthetic_cli.main(["--output=/tmp/x"])


def test_the_build_cli_names_its_required_flags():
  with pytest.raises(SystemExit, match="--manual_dir"):
    build.main(["--name=esc50", "--data_dir=/tmp/x"])


@pytest.mark.parametrize(
    "tool,argv,message",
    [
        ("embed", ["--workdir=W"], "avself.embed: no media files given"),
        ("localize", ["a.mp4"], "avself.localize: flag --workdir=None"),
        (
            "localize",
            ["--workdir=W", "--output=o"],
            "avself.localize: no videos given",
        ),
        (
            "separate",
            ["a.mp4", "--workdir=W", "b.mp4", "--output=o"],
            "avself.separate: expected one video, got 2: a.mp4 b.mp4",
        ),
        (
            "prepare",
            ["--videos=v", "--output=o", "--channels=3"],
            "avself.data.prepare: flag --channels=3: invalid choice",
        ),
        (
            "prepare",
            ["--videos=v", "--output=o", "--audio_format=wav"],
            "avself.data.prepare: flag --audio_format=wav: value should be one",
        ),
    ],
)
def test_the_file_tools_refuse_a_bad_command_line_in_one_line(
    tool, argv, message
):
  path = {
      "embed": "avself/embed.py",
      "localize": "avself/localize.py",
      "separate": "avself/separate.py",
      "prepare": "avself/data/prepare.py",
  }[tool]
  module = config_lib.load_file(os.path.join(tiny.ROOT, path))
  with pytest.raises(SystemExit) as exit_info:
    module.main(argv)
  assert str(exit_info.value.code).startswith(message)
  assert "\n" not in str(exit_info.value.code)


def test_file_tools_take_files_between_flags(tmp_path):
  module = config_lib.load_file(os.path.join(tiny.ROOT, "avself/embed.py"))
  missing = str(tmp_path / "b.mp4")
  (tmp_path / "a.mp4").write_bytes(b"")
  with pytest.raises(SystemExit, match="no such file: " + missing):
    module.main(
        ["--workdir=W", str(tmp_path / "a.mp4"), "--hop", "0.5", missing]
    )
  assert (module.FLAGS.workdir, module.FLAGS.hop) == ("W", 0.5)
  module = config_lib.load_file(os.path.join(tiny.ROOT, "avself/localize.py"))
  with pytest.raises(SystemExit, match="no such file: " + missing):
    module.main(["--workdir=W", missing, "--output=o", "--flip"])
  assert module.FLAGS.flip
  with pytest.raises(SystemExit, match="no such file"):
    module.main(["--workdir=W", missing, "--output=o"])
  assert not module.FLAGS.flip  # each call starts from the defaults
