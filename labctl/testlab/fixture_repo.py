"""The LLM Studio fixture repository: a small local git repository that behaves like h2o-llmstudio's.

Generated from the files under `llmstudio_fixture/` and tagged with the pinned tag (`FIXTURE_TAG`), so the
install path (git checkout of a tag, venv, `pip install -r requirements.txt`, data set preparation) and the
training path (`train.py -Y cfg.yaml`) run offline on the simulated hosts.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

FIXTURE_TAG = "v1.2.0"
SOURCE = Path(__file__).resolve().parent / "llmstudio_fixture"
_GIT = ["git", "-c", "user.name=labctl", "-c", "user.email=labctl@localhost", "-c", "init.defaultBranch=main",
        "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"]


def make_fixture_repo(dest: Path, tag: str = FIXTURE_TAG) -> Path:
    """Create (or reuse) the fixture repository at `dest` with `tag` on its only commit; returns `dest`."""
    dest = dest.resolve()
    if (dest / ".git").is_dir():
        tags = subprocess.run(["git", "-C", str(dest), "tag", "-l", tag], capture_output=True, text=True)
        if tags.stdout.strip() == tag:
            return dest
        shutil.rmtree(dest)
    shutil.copytree(SOURCE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {"GIT_AUTHOR_DATE": "2023-12-20T12:00:00Z", "GIT_COMMITTER_DATE": "2023-12-20T12:00:00Z"}
    import os

    run_env = {**os.environ, **env}
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", f"LLM Studio fixture {tag}"],
                 ["tag", tag]):
        subprocess.run([*_GIT, "-C", str(dest), *argv], check=True, capture_output=True, env=run_env)
    return dest
