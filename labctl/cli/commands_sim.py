"""`labctl sim …`: the ONTAP simulator and the simulated lab (filled in by the simulator and lab issues)."""

from __future__ import annotations

import click


@click.group("sim")
def sim() -> None:
    """Run labctl's ONTAP simulator and simulated GPU hosts."""


COMMANDS = [sim]
