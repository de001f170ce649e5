"""The CLI's single error catch: clear messages, exit codes, no tracebacks."""

from __future__ import annotations

import subprocess
import sys

from labctl.cli import main
from labctl.errors import ConfigError, LabctlError


def test_version_runs_as_console_script():
    out = subprocess.run([sys.executable, "-m", "labctl", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "labctl" in out.stdout


def test_the_console_script_exits_with_mains_status():
    """`python -m labctl` (like the `labctl` script) goes through `run`: main's status is the process's."""
    out = subprocess.run([sys.executable, "-m", "labctl", "no-such-command"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["no-such-command"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_error_message_names_where_and_fix():
    err = ConfigError("must be a list", where="inventory/group_vars/all.yml: labctl_export_clients",
                      fix="write it as a YAML list")
    text = str(err)
    assert text.startswith("inventory/group_vars/all.yml: labctl_export_clients: must be a list")
    assert "fix: write it as a YAML list" in text
    assert err.exit_code == 2 and LabctlError("x").exit_code == 1
