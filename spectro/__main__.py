"""``python -m spectro``: the same entry point as the ``spectro`` command."""

import sys

from spectro.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
