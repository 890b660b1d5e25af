"""python -m bench --households N --scale 1,10 --warehouse sqlite,postgres [--stages ...]"""

from __future__ import annotations

import sys

from bench.harness import main

if __name__ == "__main__":
    sys.exit(main())
