"""A second synthetic world, made differently from `avself.data.synthetic`.

In the built-in world a sound comes from a bouncing object and is timed by
its bounces. Here picture and sound match by *content* only: each of 10
classes is a textured, coloured object that drifts and turns in view (its
look) and a kind of sound (its sound: a hum, a hiss, a click train, chirps,
bells, ...), with no timing between the two. The sound is on in stretches
with silences between them (about a third of each clip), and half of the
clips also carry an unrelated off-screen sound (babble, a whistle, rain or a
motor) with its own stretches of silence. Every parameter varies within a
class (pitch, rate, hue, texture scale, size, motion).

Clips are written as real mp4 (H.264 + AAC, `media_encode.write_mp4`) with
`labels.csv` (file,label,split: 80 % train, 20 % test in each class), so they
go through `avself.data.prepare` as a user's own videos do:

  python -m avself.data.content_world --output=/tmp/content/videos \
      --num_videos=600
  python -m avself.data.prepare --videos=/tmp/content/videos \
      --labels=/tmp/content/videos/labels.csv --output=/tmp/content/records \
      --sample_rate=16000 --shorter_side=72 --fps=15

See docs/other_data.md. Nothing here is shared with `avself.data.synthetic`
(whose options key the shared cache) and nothing is cached: the command
writes what it is asked to.
"""

from avself.data.content_world.render import CLASSES
from avself.data.content_world.render import render_clip
from avself.data.content_world.write import generate

__all__ = ["CLASSES", "generate", "render_clip"]
