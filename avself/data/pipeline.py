"""The tf.data input pipeline: record shards -> per-host batches of tensors.

Reading shards (and counting corrupt records) is `reading.py`; sampling
examples from a video and pairing them is `sampling.py`; this file decodes
and finishes batches and assembles the whole:

    shards[process_index::process_count] -> interleave (records, checked to fill
      each shard) -> records.parse (a corrupt record: skipped and counted, or fatal)
      -> skip videos too short for the mode -> [cache] -> [repeat]
      -> enumerate: video seed = fold_in((seed, process_index), video counter)
      -> sample `samples_per_video` examples per video, each from one row of
         uniform draws (its random state: window, frame, crop, flip, jitter,
         gain, pairing, shift), so a clip's frames and its sound stay aligned
      -> shuffle -> [mixture: pair neighbours] -> batch
      -> per batch: [avc: pair neighbours] -> decode one crop per frame
         -> colour jitter, audio gain, STFT -> prefetch

Output keys per mode (B = batch_size, S = image_size, N = num_frames,
n = samples of the clip, C = stored channels, (F, T) = spectrogram_shape):
  'avc'     image f32 [B,S,S,3] in [-1,1], audio f32 [B,F,T,1], label i32 [B]
            (1 iff frame and audio come from the same video), class_label i32 [B]
  'pairs'   as 'avc' (label always 1) plus audio_class_label i32 [B]
  'sync'    video f32 [B,N,S,S,3], waveform f32 [B,n,C], shift_seconds f32 [B],
            class_label; paired: shifted_waveform f32 [B,n,C];
            unpaired: label i32 [B] (1 aligned, shift_seconds 0 / 0 shifted)
  'mixture' video, mixture_waveform = on_screen_waveform + off_screen_waveform
            (each f32 [B,n,C]), class_label
  'clips'   audio, image (centre crop), label (class), video_index i32,
            window_start f32 seconds, mask i32 (0 on the last batch's padding)
  'frame_targets'  image (the frame at the window's centre), audio, and
            target f32 [B,steps,K]: the rows of `frame_targets.path` (a
            `avself.data.targets` table) for the frames at the centres of
            `steps` equal parts of the audio window (no labels)
  'clip'    video f32 [B,N,S,S,3] of N consecutive frames, waveform f32
            [B,n,C] starting at the first frame's start, class_label
            (sonorization: `clip.num_frames`, `clip.clip_seconds`)

Time: frame i shows [i/fps, (i+1)/fps); audio sample j is at j/sample_rate,
both from the record's start. Only the span both streams cover is used, and a
video shorter than one audio window (avc, pairs, clips) or one clip (sync,
mixture) is skipped by a `filter`: nothing is padded. Sampling modes always
drop the remainder batch; 'clips' pads it and marks it in `mask`.

Sync shifts at clip edges: see `sampling._shift` (random sign when both shifted windows
fit, the sign that fits otherwise, circular wrap-around when neither does).
"""

import ctypes
import functools
from typing import Optional

import jax
import ml_collections
import tensorflow as tf

from avself.data import audio, ops, reading, records, sampling

MODES = (
    "avc",
    "pairs",
    "sync",
    "mixture",
    "clips",
    "frame_targets",
    "clip",
)


def default_data_config() -> ml_collections.ConfigDict:
  """The data config at paper scale (L3-Net; sync/mixture as Owens & Efros)."""
  return ml_collections.ConfigDict(
      dict(
          path="",  # records folder: {split}.tfrecord-*-of-* (+ manifest.json)
          train_split="train",
          eval_split="test",
          # Used when a record lacks the context key (DMVR/Scenic records).
          default_fps=25.0,
          default_sample_rate=48000,
          default_channels=1,
          sample_rate=48000,  # expected; a record with another rate is an error
          audio_seconds=1.0,  # avc/pairs/clips window
          resize_shorter=256,  # frames whose shorter side differs are resized; 0: never
          image_size=224,  # square crop: random when training, centred otherwise
          spectrogram=audio.spectrogram_config(
              "log"
          ),  # 257 x 199 for 1 s at 48 kHz
          augment=dict(
              flip=True, brightness=0.2, saturation=0.2, audio_gain=0.1
          ),
          # Reading and parsing a 10 s record (3-7 MB) costs as much as 6-15
          # decoded crops, so each parse feeds several examples; the shuffle
          # buffer spreads them apart.
          samples_per_video=8,
          # avc/pairs training windows: the first of `tries` draws whose mean
          # power is at least `min_energy` x the clip's (else the loudest);
          # tries 1: every window as drawn, silent or not.
          audible_window=dict(tries=1, min_energy=0.1),
          # Examples held for shuffling: ~0.2 MB each for avc at paper scale, ~3 MB
          # for a 4.2 s sync clip (63 JPEGs + 2 windows at 48 kHz): lower it there.
          shuffle_buffer=2048,
          sync=dict(
              num_frames=63,
              clip_seconds=4.2,
              min_shift=2.0,
              max_shift=5.8,
              paired=True,
          ),
          mixture=dict(num_frames=63, clip_seconds=4.2),
          # 'clip': consecutive frames at the records' fps and their audio.
          clip=dict(num_frames=30, clip_seconds=1.2),
          clips_per_video=0,  # 'clips': at most this many windows per video; 0 = all
          # 'frame_targets': a per-frame table (teacher posteriors, audio
          # clusters; relative paths are under `path`) and the targets per window.
          frame_targets=dict(path="", steps=1),
          cycle_length=16,  # shards read at once
          num_parallel_calls=-1,  # tf.data.AUTOTUNE
          prefetch=2,  # batches
          cache=False,  # keep parsed training videos in memory (tiny datasets, CPU demo)
          # Records that fail to read or parse: 'skip' (counted in reading.skip_counts(),
          # warned on stderr) or 'fail' (raises naming the shard).
          on_corrupt="skip",
          keep_freed_memory=True,  # see `keep_freed_memory`: ~30% less CPU per example
      )
  )


@functools.cache
def keep_freed_memory() -> bool:
  """Tells glibc malloc to keep freed batch buffers instead of unmapping them.

  By default glibc hands large freed blocks back to the OS, so every batch
  faults its ~50 MB of fresh pages in again: ~150 page faults and a third of
  the pipeline's CPU time per AVC example at paper scale. Process-wide, like
  MALLOC_MMAP_THRESHOLD_=32M MALLOC_TRIM_THRESHOLD_=1G MALLOC_TOP_PAD_=64M;
  the cost is that freed memory stays with the process. False off glibc.
  """
  try:
    mallopt = ctypes.CDLL("libc.so.6").mallopt
  except (OSError, AttributeError):
    return False
  m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3  # <malloc.h>
  return all(
      [
          mallopt(m_mmap_threshold, 32 << 20),
          mallopt(m_trim_threshold, 1 << 30),
          mallopt(m_top_pad, 64 << 20),
      ]
  )


# ### Batched decoding and finishing ##########################################


def _decode(jpegs: tf.Tensor, rand, cfg, train: bool) -> tf.Tensor:
  """Decodes a batch of frames [B] or clips [B, N] to uint8 [B, (N,) S, S, 3]."""
  size = cfg.image_size

  def one(args):
    jpeg, r = args
    crop = {}
    if train:
      crop = dict(
          u_y=ops.random_field(r, "crop_y"), u_x=ops.random_field(r, "crop_x")
      )
    image = ops.decode_crop(
        jpeg, size=size, resize_shorter=cfg.resize_shorter, **crop
    )
    if train and cfg.augment.flip:
      image = ops.maybe_flip(image, ops.random_field(r, "flip"))
    return image

  if rand is None:
    rand = tf.zeros([tf.shape(jpegs)[0], len(ops.RANDOM_FIELDS)])
  signature = tf.TensorSpec(
      jpegs.shape[1:].as_list() + [size, size, 3], tf.uint8
  )
  return tf.map_fn(one, (jpegs, rand), fn_output_signature=signature)


def _jitter(batch: dict, cfg, train: bool) -> dict:
  """Per-example brightness, saturation and gain, or None where switched off."""
  if not train:
    return dict(brightness=None, saturation=None, gain=None)
  factors = ops.jitter_factors(batch["rand"], cfg.augment)
  amounts = dict(
      brightness=cfg.augment.brightness,
      saturation=cfg.augment.saturation,
      gain=cfg.augment.audio_gain,
  )
  return {name: factors[name] if amounts[name] else None for name in factors}


def _finish(
    batch: dict, cfg, *, train: bool, mode: str, batch_size: int
) -> dict:
  """Pairs, decodes, augments and computes spectrograms for one batch; keeps the mode's keys."""
  if mode == "avc":
    batch = sampling.pair_in_batch(batch)
  batch = dict(batch)
  batch["image"] = _decode(batch.pop("jpeg"), batch.get("rand"), cfg, train)
  if mode == "clips":
    batch = ops.pad_batch(batch, batch_size)
  jitter = _jitter(batch, cfg, train)
  image = ops.finish_images(
      batch["image"], jitter["brightness"], jitter["saturation"]
  )
  if mode in ("avc", "pairs", "clips", "frame_targets"):
    out = dict(
        image=image,
        audio=ops.spectrogram_batch(
            batch["waveform"],
            cfg.spectrogram,
            cfg.sample_rate,
            gain=jitter["gain"],
        ),
    )
    if mode == "avc":
      return dict(out, label=batch["label"], class_label=batch["class_label"])
    if mode == "frame_targets":
      return dict(out, target=batch["target"])
    if mode == "pairs":
      return dict(
          out,
          label=tf.ones_like(batch["class_label"]),
          class_label=batch["class_label"],
          audio_class_label=batch["class_label"],
      )
    return dict(
        out,
        **{
            k: batch[k]
            for k in ("label", "video_index", "window_start", "mask")
        },
    )

  def gained(waveform):  # one gain per example for all of its audio
    return (
        waveform
        if jitter["gain"] is None
        else waveform * jitter["gain"][:, None, None]
    )

  out = dict(video=image, class_label=batch["class_label"])
  if mode == "clip":
    return dict(out, waveform=gained(batch["waveform"]))
  if mode == "mixture":
    on_screen, off_screen = gained(batch["waveform"]), gained(
        batch["off_screen_waveform"]
    )
    return dict(
        out,
        mixture_waveform=on_screen + off_screen,
        on_screen_waveform=on_screen,
        off_screen_waveform=off_screen,
    )
  out.update(
      waveform=gained(batch["waveform"]), shift_seconds=batch["shift_seconds"]
  )
  if cfg.sync.paired:
    return dict(out, shifted_waveform=gained(batch["shifted_waveform"]))
  return dict(out, label=batch["label"])


# ### Assembly #################################################################


def _min_samples(cfg, mode: str) -> int:
  """Usable audio a video needs for one example of `mode`."""
  if mode == "sync":
    return sampling.seconds_to_samples(cfg.sync.clip_seconds, cfg)
  if mode == "mixture":
    return sampling.seconds_to_samples(cfg.mixture.clip_seconds, cfg)
  if mode == "clip":
    return sampling.seconds_to_samples(cfg.clip.clip_seconds, cfg)
  return sampling.seconds_to_samples(cfg.audio_seconds, cfg)


def _examples(videos, cfg, *, mode: str, seed: int, train: bool = False):
  """Videos -> shuffled undecoded examples (mixture: paired; avc pairs in `_finish`)."""
  k = cfg.samples_per_video
  # Training windows may skip silence (`audible_window`); evaluation windows
  # are drawn as they come, so held-out scores keep one meaning.
  tries = max(1, int(cfg.audible_window.tries)) if train else 1
  frame_and_audio = functools.partial(
      sampling.sample_frame_and_audio, tries=tries
  )
  sample = dict(
      avc=frame_and_audio,
      pairs=frame_and_audio,
      sync=sampling.sample_sync,
      mixture=lambda v, c, k: sampling.sample_clip(v, c, k, c.mixture)[0],
      clip=sampling.sample_frame_aligned_clip,
  ).get(mode)
  if mode == "frame_targets":
    from avself.data import targets  # pylint: disable=g-import-not-at-top

    rows_of, _ = targets.lookup_fn(sampling.frame_targets_path(cfg))
    sample = functools.partial(sampling.sample_frame_targets, rows_of=rows_of)
  ds = videos.map(
      lambda v: sample(v, cfg, k), num_parallel_calls=cfg.num_parallel_calls
  )
  ds = ds.unbatch().shuffle(cfg.shuffle_buffer, seed=seed + 1)
  if mode == "mixture":
    # A video mixed with itself has no off-screen source: drop such (rare) pairs.
    ds = ds.batch(2, drop_remainder=True).filter(
        lambda p: p["video_id"][0] != p["video_id"][1]
    )
    ds = ds.map(sampling.add_off_screen).unbatch()
  return ds


def make_dataset(
    data_config,
    *,
    mode: str,
    split: str,
    batch_size: int,
    train: bool,
    seed: int,
    process_index: Optional[int] = None,
    process_count: Optional[int] = None,
) -> tf.data.Dataset:
  """This host's batches of `mode` (see the module docstring for the keys).

  Training data repeat forever; otherwise the dataset is finite. Same
  arguments -> same batches. Numpy batches feed
  `jax.make_array_from_process_local_data`.
  """
  cfg = data_config
  if mode not in MODES:
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
  if cfg.keep_freed_memory:
    keep_freed_memory()
  process_index = (
      jax.process_index() if process_index is None else process_index
  )
  process_count = (
      jax.process_count() if process_count is None else process_count
  )
  shards = records.list_shards(cfg.path, split)
  files = reading.host_shards(shards, process_index, process_count)
  record_shard = (
      (process_count, process_index) if len(shards) < process_count else None
  )
  if mode == "clips":
    train = False  # evaluation clips: one pass, centre crops, no jitter
  videos = reading.read_videos(
      files,
      cfg,
      train=train,
      seed=seed,
      process_index=process_index,
      min_samples=_min_samples(cfg, mode),
      record_shard=record_shard,
  )
  if mode == "clips":
    ds = videos.map(
        lambda v: sampling.sample_clip_windows(v, cfg),
        num_parallel_calls=cfg.num_parallel_calls,
    ).unbatch()
    ds = ds.batch(batch_size)  # the short last batch is padded in _finish
  else:
    ds = _examples(videos, cfg, mode=mode, seed=seed, train=train).batch(
        batch_size, drop_remainder=True
    )
  finish = functools.partial(
      _finish, cfg=cfg, train=train, mode=mode, batch_size=batch_size
  )
  ds = ds.map(finish, num_parallel_calls=cfg.num_parallel_calls)
  options = tf.data.Options()
  options.deterministic = True
  return ds.with_options(options).prefetch(cfg.prefetch)
