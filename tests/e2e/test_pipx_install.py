"""An operator's install: `pipx install` of this checkout gives a `labctl` that works from anywhere.

pipx puts only `labctl` on PATH, not its venv's `ansible-playbook`: labctl must find its own Ansible, and the
playbooks, templates, BPF program and host agent inside the installed package, never in this checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.installs]

LOOKUP = """
import json, labctl, labctl.paths as p
from labctl.hosts.runner import ansible_bin_dir
print(json.dumps({"package": labctl.__file__, "ansible": ansible_bin_dir(),
                  "playbook": str(p.repo_data("playbooks", "mount.yml")),
                  "template": str(p.repo_data("templates", "llmstudio", "cfg.yaml.j2")),
                  "bpf": str(p.repo_data("bpf", "io_by_second.bt"))}))
"""


def _copy_of_checkout(dest: Path) -> Path:
    """The checkout without its venv, git data or build outputs (pip builds in the source tree)."""
    shutil.copytree(REPO, dest, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", "__pycache__", "*.egg-info", "build", "dist", "*.so", ".labctl", "runs", ".*_cache"))
    return dest


@pytest.fixture(scope="module")
def pipx_labctl(tmp_path_factory) -> dict[str, Path]:
    if shutil.which("pipx", path=os.path.dirname(sys.executable)) is None:
        pytest.skip("pipx is not installed (scripts/setup.sh installs it with the test extras)")
    base = tmp_path_factory.mktemp("pipx")
    src = _copy_of_checkout(base / "src")
    env = {**os.environ, "PIPX_HOME": str(base / "home"), "PIPX_BIN_DIR": str(base / "bin"),
           "PIPX_MAN_DIR": str(base / "man")}
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "pipx"), "install", str(src)],
                         capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    return {"bin": base / "bin" / "labctl", "venv": base / "home" / "venvs" / "labctl", "base": base}


def _bare_env(tmp: Path) -> dict[str, str]:
    """What an operator's shell has: no venv on PATH, no PYTHONPATH."""
    return {"HOME": str(tmp), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def test_the_entry_point_runs_outside_the_checkout(pipx_labctl, tmp_path):
    out = subprocess.run([str(pipx_labctl["bin"]), "--help"], capture_output=True, text=True, cwd=tmp_path,
                         env=_bare_env(tmp_path), timeout=120)
    assert out.returncode == 0, out.stderr
    assert "provision" in out.stdout and "teardown" in out.stdout


def test_shipped_files_and_ansible_come_from_the_installed_package(pipx_labctl, tmp_path):
    python = pipx_labctl["venv"] / "bin" / "python"
    out = subprocess.run([str(python), "-c", LOOKUP], capture_output=True, text=True, cwd=tmp_path,
                         env=_bare_env(tmp_path), timeout=120, check=True)
    found = json.loads(out.stdout)
    venv = pipx_labctl["venv"].resolve()
    for key in ("package", "playbook", "template", "bpf"):
        path = Path(found[key]).resolve()
        assert venv in path.parents, f"{key}: {path} is not in the pipx venv"
        assert path.is_file(), path
    assert Path(found["ansible"]).resolve() == (venv / "bin").resolve()
    agent = Path(found["package"]).parent / "experiment" / "agent"
    assert (agent / "cli.py").is_file() and (agent / "hostmon.py").is_file() and (agent / "ship.py").is_file()


def test_a_playbook_runs_with_only_labctl_on_path(pipx_labctl, tmp_path):
    """prechecks against a host where nothing listens: Ansible ran (it reports the host unreachable)."""
    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text(
        "gpu_hosts:\n  hosts:\n    gpu9:\n      ansible_host: 127.0.0.19\n      ansible_port: 9\n")
    (inv / "group_vars" / "all.yml").write_text(
        "labctl_ontap_host: 127.0.0.1\nlabctl_ontap_password_env: NO_SUCH_VAR\n"
        "labctl_ontap_insecure_skip_verify: true\n")
    env = {**_bare_env(tmp_path), "LABCTL_STATE_DIR": str(tmp_path / "state")}
    out = subprocess.run([str(pipx_labctl["bin"]), "-i", str(inv), "prechecks", "--output", "json"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "not found" not in text and "Traceback" not in text, text
    assert "unreachable" in text.lower(), text
