"""The playbooks: syntax-valid for ansible-playbook and ansible-lint clean (production profile)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from labctl.paths import repo_data

PLAYBOOKS = ["prechecks.yml", "mount.yml", "llmstudio.yml", "provision.yml", "teardown_hosts.yml",
             "status.yml"]


def test_playbooks_pass_syntax_check(tmp_path):
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  children:\n    gpu_hosts:\n      hosts:\n"
                   "        gpu1: {ansible_host: 127.0.0.1}\n")
    # one ansible-playbook for them all (each start costs Ansible ~2 CPU-seconds); its error names the file
    books = [str(repo_data("playbooks", name)) for name in PLAYBOOKS]
    argv = ["ansible-playbook", "--syntax-check", "-i", str(inv), *books]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-1500:]


def test_playbooks_are_ansible_lint_clean():
    if not shutil.which("ansible-lint"):
        pytest.skip("ansible-lint not installed")
    out = subprocess.run(["ansible-lint", "--offline", "--nocolor", "-q", "."], cwd=repo_data("playbooks"),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
