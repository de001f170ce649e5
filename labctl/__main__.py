"""`python -m labctl` runs the CLI."""

from labctl.cli import run

run()
