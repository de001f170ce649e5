"""Names with shell metacharacters never reach a shell unquoted: the playbooks run commands as argv lists (no
`shell:`/`raw:`, no templated free-form `command:`), and every command labctl sends over SSH quotes each word
(checked by running it through a real /bin/sh)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from labctl.experiment.follow import agent_cmd
from labctl.experiment.remote import Remote
from labctl.experiment.run import HostRun

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
SHELL_MODULES = {"shell", "ansible.builtin.shell", "raw", "ansible.builtin.raw", "script",
                 "ansible.builtin.script", "expect", "ansible.builtin.expect"}
COMMAND_MODULES = {"command", "ansible.builtin.command"}
HOSTILE = ["/mnt/x;$(touch PWNED)", "a b", "`touch PWNED`", "x' || touch PWNED '", '"$HOME"',
           "x\ntouch PWNED", "-rf", "*", "&& touch PWNED", "$(<PWNED)"]


# what an argv can carry: no NUL, and no lone surrogate (os.fsencode refuses it)
ARGV_CHARS = st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")


def _tasks(node: Any):
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        if any(k in node for k in ("name", "block")) and not {"hosts", "roles"} & set(node):
            yield node
        for key in ("tasks", "pre_tasks", "post_tasks", "handlers", "block", "rescue", "always"):
            yield from _tasks(node.get(key))


def test_playbooks_never_use_a_shell_and_template_only_argv():
    files = sorted(PLAYBOOKS.rglob("*.yml"))
    assert files
    checked = 0
    for path in files:
        for task in _tasks(yaml.safe_load(path.read_text(encoding="utf-8"))):
            where = f"{path.name}: {task.get('name')}"
            assert not SHELL_MODULES & set(task), f"{where} uses a shell module"
            for module in COMMAND_MODULES & set(task):
                args = task[module]
                checked += 1
                if isinstance(args, str):
                    assert "{{" not in args, f"{where}: free-form command with a variable: {args}"
                else:
                    templated = "{{" in str(args.get("cmd"))
                    assert isinstance(args, dict) and ("argv" in args or not templated), where
    assert checked >= 5


def _through_sh(command: str, tmp_path: Path) -> list[str]:
    """The argv a POSIX shell makes of `command` (its first word replaced by a printer)."""
    words = shlex.split(command)
    rest = command[len(shlex.quote(words[0])):]
    out = subprocess.run(["/bin/sh", "-c", "printf '%s\\0'" + rest], cwd=tmp_path, capture_output=True,
                         check=True, timeout=10)
    assert not (tmp_path / "PWNED").exists(), command
    return [words[0], *out.stdout.decode().split("\0")[:-1]]


@settings(max_examples=40, deadline=None)
@given(rundir=st.sampled_from(HOSTILE) | st.text(ARGV_CHARS, min_size=1, max_size=20),
       python=st.sampled_from(["python3", "/opt/py thon/bin/python3"]))
@example(rundir="/var/tmp/labctl/run;$(touch PWNED)/gpu1", python="python3")
@example(rundir="\ud7ff\ue000x", python="python3")  # either side of the surrogate block
def test_agent_commands_quote_every_word(tmp_path_factory, rundir, python):
    tmp = tmp_path_factory.mktemp("sh")
    run = SimpleNamespace(target=SimpleNamespace(python=python), rundir=rundir)
    for command, want in [
        (HostRun._agent(run, "start", f"{rundir}/spec.json"),  # type: ignore[arg-type]
         [python, f"{rundir}/agent/agent.pyz", "start", f"{rundir}/spec.json"]),
        (agent_cmd({"python": python, "rundir": rundir}, "status"),
         [python, f"{rundir}/agent/agent.pyz", "status", rundir]),
    ]:
        assert _through_sh(command, tmp) == want


def test_remote_mkdir_quotes_the_path(tmp_path, monkeypatch):
    sent: list[str] = []
    remote = Remote.__new__(Remote)
    monkeypatch.setattr(Remote, "check", lambda self, command, timeout=60.0: sent.append(command) or "")
    for name in HOSTILE:
        remote.mkdir(f"{tmp_path}/{name}")
    for command in sent:
        subprocess.run(["/bin/sh", "-c", command], cwd=tmp_path, check=True, timeout=10)
    assert not (tmp_path / "PWNED").exists()
    made = {p.name for p in tmp_path.iterdir()} | {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")}
    for name in HOSTILE:
        assert name.strip("/").split("/")[0] in made or name in made, name
