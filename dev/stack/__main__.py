"""``python -m dev.stack``: the local stack's command line (see the package docstring)."""

import sys

from .commands import main

sys.exit(main())
