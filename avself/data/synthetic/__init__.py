r"""A synthetic audio-visual world with ground truth, written as real mp4 files.

K object classes, each with its own look (colour + shape) and its own sound
(fundamental + timbre). One to three objects move and bounce off the walls of
each clip; every bounce is a visible flash AND a percussive burst of the
object's sound, and each sounding object also hums its class sound quietly all
the time, so any 1 s of audio names the visible classes (L3/AVE-Net
correspondence) while the loudness peaks mark the bounces (Multisensory sync).
Some clips add an off-screen source, heard but never seen (separation). Every
task in avself can be tested on it with ground truth and no downloads.

Options make it harder where a task needs it (all off by default, and the
default world is unchanged by them): `pitch_spread` moves each source's pitch
by up to +-pitch_spread / 2 octaves, so that a class is told by its timbre and
pitch region rather than one pitch; `background_noise` adds off-screen noise
whose level and colour wander within the clip; `hum_level` sets the hum under the bursts;
`silent_prob` mutes visible objects other than the main one; `class_cue='motion'`
gives every class one look and its own speed instead (classes told apart by how
fast they move and bounce, as actions are: the action-recognition world);
`flash=0` hides the bounce flash, so a bounce is seen only as a turn;
`voice` makes the sounding objects speak: their loudness follows a
syllable-like envelope and their look follows it too, as lips follow a voice,
so that every frame (not only a bounce) ties the sound to its object.

Run:
  python -m avself.data.synthetic --output=/tmp/synth --num_videos=200 --seed=0

Modules: `options` (WorldOptions, the classes, splits), `scene` (who is in a
clip and how it moves), `pictures` and `sounds` (rendering), `clip` (one
clip and its ground truth), `cache` (a world written to a folder), `cli`.

Layout of the output folder (NAME = clip_00012, zero-padded to 5 digits):
  videos/NAME.mp4      H.264 (yuv420p) + AAC, size x size, fps, sample_rate
  stems/NAME.npz       float32 [S] (mono) or [S, C]: on_screen, off_screen,
                       object_0, object_1, ...; on_screen + off_screen == the
                       audio given to the AAC encoder (exact, before coding);
                       off_screen holds the off-screen source and any noise
  labels.csv           file,label,split (file relative to the folder)
  ground_truth.jsonl   one JSON object per clip, in clip order:
      file, stems, index, label, label_index, split, seed, fps, sample_rate,
      channels, num_frames, num_samples, duration, size, gain (the mix's
      normalisation, already applied to every stem), box_format,
      objects: [{class_index, class_name, shape, color, timbre,
                 fundamental_hz, sounding, stem (key in the npz),
                 event_times (bounces, s), boxes ([T][4], one per frame)}],
      offscreen: {class_index, class_name, timbre, fundamental_hz,
                  event_times} or null
  summary.json         written last; marks the folder complete for its options

Boxes are [x0, y0, x1, y1] in pixels of the frame, continuous coordinates:
pixel column j covers x in [j, j + 1]. Times are seconds from the clip start.
"""
