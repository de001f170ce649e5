"""The host agent's entry point (`python agent.pyz …` on a host, `python -m labctl.experiment.agent …`):
`hostmon …` and `emulate SPEC` start those programs, anything else is an agent command (`cli.py`)."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if argv[:1] == ["hostmon"]:
        from labctl.experiment.agent import hostmon

        return hostmon.main(argv[1:])
    if argv[:1] == ["emulate"]:
        from labctl.experiment.agent import emulator

        return emulator.main(argv[1:])
    from labctl.experiment.agent import cli

    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
