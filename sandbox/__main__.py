"""``python -m sandbox serve ...``: run the sandbox as its own process (benchmarks do, off the client's GIL)."""
from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], stdout=sys.stdout, stderr=sys.stderr, prog="python -m sandbox"))
