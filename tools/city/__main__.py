"""Run the reference city client: `python -m tools.city …`."""

import sys

from .cli import main

sys.exit(main())
