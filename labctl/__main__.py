"""`python -m labctl` runs the CLI."""

import sys

from labctl.cli import main

sys.exit(main())
