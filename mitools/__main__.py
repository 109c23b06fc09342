"""``python -m mitools``: the command line of :mod:`mitools.cli` (``python -m mitools --help``)."""

import sys

from mitools.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
