"""``python -m odibi_core.cli``."""

import sys

from odibi_core.cli import main

sys.exit(main())
