"""python -m avself.data.content_world: see `avself.data.content_world.write`."""

from avself.data.content_world import write

if __name__ == "__main__":
  write.main()
