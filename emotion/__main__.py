"""`python -m emotion ...`: the command line, all of which is in emotion/cli.py."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
