"""python -m avself.data.synthetic: see `avself.data.synthetic.cli`."""

from avself.data.synthetic import cli

if __name__ == "__main__":
  cli.main()
