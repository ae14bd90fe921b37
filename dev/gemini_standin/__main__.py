"""``python -m dev.gemini_standin``: the stand-in as a process (see the package docstring)."""

import sys

from .server import main

sys.exit(main())
