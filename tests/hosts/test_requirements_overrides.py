"""labctl_llmstudio_requirement_overrides: provision installs from an adjusted copy of the release's
requirements.txt (the module `labctl_requirements`, run here by real Ansible), never editing the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labctl.paths import repo_data

# the lines of LLM Studio v1.2.0's requirements.txt that a PyPI-only install must change
RELEASE = """-i https://pypi.org/simple
--extra-index-url https://download.pytorch.org/whl/cu118
accelerate==0.23.0
cmake==3.28.0
torch==2.0.1+cu118
torchvision==0.15.2+cu118
Jinja2==3.1.2
"""
PYPI_ONLY = {
    "cmake": "cmake==3.28.1",
    "torch": "torch==2.0.1",
    "torchvision": "torchvision==0.15.2",
    "-i": None,
    "--extra-index-url": None,
    "jinja2": "jinja2==3.1.3",
    "hf_transfer": "hf-transfer==0.1.3",
}


def _module(src: Path, dest: Path, overrides: dict) -> dict:
    if not shutil.which("ansible"):
        pytest.skip("ansible not installed")
    args = json.dumps({"src": str(src), "dest": str(dest), "overrides": overrides})
    env = {
        **os.environ,
        "ANSIBLE_LIBRARY": str(repo_data("playbooks", "library")),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "json",
    }
    proc = subprocess.run(
        [
            "ansible",
            "-i",
            "localhost,",
            "-c",
            "local",
            "localhost",
            "-m",
            "labctl_requirements",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            "-a",
            args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_overrides_replace_drop_and_add_lines_in_a_copy(tmp_path):
    src, dest = tmp_path / "requirements.txt", tmp_path / "venv-requirements.txt"
    src.write_text(RELEASE, encoding="utf-8")
    result = _module(src, dest, PYPI_ONLY)
    assert result["changed"] is True
    assert dest.read_text(encoding="utf-8").splitlines() == [
        "accelerate==0.23.0",
        "cmake==3.28.1",
        "torch==2.0.1",
        "torchvision==0.15.2",
        "jinja2==3.1.3",
        "hf-transfer==0.1.3",
    ]
    assert src.read_text(encoding="utf-8") == RELEASE  # the checkout's file is never edited
    again = _module(src, dest, PYPI_ONLY)
    assert again["changed"] is False


def test_no_overrides_is_the_release_file_as_is(tmp_path):
    src, dest = tmp_path / "requirements.txt", tmp_path / "copy.txt"
    src.write_text(RELEASE, encoding="utf-8")
    _module(src, dest, {})
    assert dest.read_text(encoding="utf-8") == RELEASE
