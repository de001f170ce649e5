"""The `labctl` command line: a thin layer over the library. The only place that prints and exits.

Each command group lives in its own module and is registered here; every `LabctlError` is caught once,
in `main`, and printed as a clear message with its exit code. Unexpected exceptions are logged with their
traceback to a log file and reported in one line.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import traceback
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from labctl import __version__
from labctl.errors import LabctlError, UsageError
from labctl.leave import leave
from labctl.paths import open_append_own, private_dir
from labctl.redact import RedactingFilter, redact

err_console = Console(stderr=True, highlight=False)
INTERRUPTED = (
    "interrupted: what was done so far is recorded in the state dir; rerun the same command to pick up "
    "where it stopped (or `labctl teardown --yes` to undo it)"
)
log = logging.getLogger("labctl")


class Context:
    """Options shared by every command."""

    def __init__(self, inventory: str | None, verbose: int) -> None:
        self.inventory_option = inventory
        self.verbose = verbose


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("-i", "--inventory", metavar="DIR", envvar="LABCTL_INVENTORY",
              help="Ansible inventory directory describing the lab [default: ./inventories/lab].")
@click.option("-v", "--verbose", count=True, help="More output (repeatable).")
@click.version_option(__version__, prog_name="labctl")
@click.pass_context
def cli(ctx: click.Context, inventory: str | None, verbose: int) -> None:
    """Reproduce the ONTAP FlexGroup + GPU host LLM fine-tuning lab, instrumented end to end."""
    ctx.obj = Context(inventory, verbose)


def _register() -> None:
    from labctl.cli import (
        commands_demo,
        commands_hosts,
        commands_lab,
        commands_report,
        commands_run,
        commands_sim,
    )

    for module in (commands_sim, commands_lab, commands_run, commands_report, commands_demo, commands_hosts):
        for command in module.COMMANDS:
            cli.add_command(command)


_log_dir: Path | None = None


def set_log_dir(path: Path) -> None:
    """Send this run's log (DEBUG, secrets masked) and any traceback to `path`/labctl.log (the state dir)."""
    global _log_dir
    try:
        private_dir(path)
        os.close(open_append_own(path / "labctl.log"))
        handler = logging.FileHandler(path / "labctl.log", encoding="utf-8")
    except OSError:
        return
    _log_dir = path
    handler.addFilter(RedactingFilter())
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("labctl")
    for old in [h for h in root.handlers if getattr(h, "_labctl_file", False)]:
        root.removeHandler(old)
        old.close()
    handler._labctl_file = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    for console_handler in root.handlers:
        if console_handler.level == logging.NOTSET:
            console_handler.setLevel(root.level)
    root.setLevel(logging.DEBUG)


def _log_file() -> Path:
    if _log_dir is not None:
        return _log_dir / "labctl.log"
    return Path(tempfile.gettempdir()) / "labctl-errors.log"


def _setup_logging(verbose: int) -> None:
    global _log_dir
    _log_dir = None
    root = logging.getLogger("labctl")
    for old in list(root.handlers):  # main() may run several times in one process (tests)
        root.removeHandler(old)
        old.close()
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    handler.setLevel(level)
    root.addHandler(handler)
    root.setLevel(level)


def _write_log(text: str) -> Path | None:
    """Append `text` (masked) to the log; None when it could not be written (e.g. a planted symlink)."""
    path = _log_file()
    try:
        with open(open_append_own(path), "a", encoding="utf-8") as fh:
            fh.write(redact(text) + "\n")
    except OSError:
        return None
    return path


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `labctl` console script."""
    _register()
    args = sys.argv[1:] if argv is None else argv
    verbose = sum(a.count("v") for a in args if a.startswith("-v") and set(a[1:]) == {"v"})
    verbose += args.count("--verbose")
    _setup_logging(verbose)
    try:
        cli.main(args=args, prog_name="labctl", standalone_mode=False)
    except click.exceptions.Abort as exc:  # click turns Ctrl-C into Abort
        err_console.print(INTERRUPTED if isinstance(exc.__cause__, KeyboardInterrupt) else "aborted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return UsageError.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except LabctlError as exc:
        _write_log(f"error: {exc}\n{traceback.format_exc()}")
        err_console.print(Text.assemble(("error: ", "bold red"), redact(str(exc))), soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print(INTERRUPTED)
        return 130
    except Exception:  # noqa: BLE001 - the single place where unexpected errors are reported
        path = _write_log(traceback.format_exc())
        where = f"traceback in {path}" if path else f"traceback not written: {_log_file()} is not ours"
        err_console.print(f"[bold red]internal error[/] ({redact(str(sys.exc_info()[1]))}); {where}",
                          soft_wrap=True)
        return 1
    return 0


def run() -> None:
    """The `labctl` console script and `python -m labctl`: `main`, then exit with its status through
    `labctl.leave` (no interpreter teardown). `main` itself leaves the process alone: tests call it
    in-process."""
    leave(main())
