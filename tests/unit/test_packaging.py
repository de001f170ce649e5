"""An installed labctl (a wheel, not this checkout) finds its playbooks, templates and BPF program."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHIPPED = [("playbooks", "mount.yml"), ("playbooks", "library", "labctl_nfs_verify.py"),
           ("playbooks", "roles", "labctl", "defaults", "main.yml"),
           ("templates", "llmstudio", "cfg.yaml.j2"), ("templates", "experiment.sim.yaml"),
           ("bpf", "io_by_second.bt")]


def test_package_data_links_point_at_the_top_level_folders() -> None:
    for name in ("playbooks", "templates"):
        link = REPO / "labctl" / "data" / name
        assert link.is_symlink() and link.resolve() == (REPO / name).resolve()


def test_an_installed_copy_resolves_shipped_files_inside_the_package(tmp_path: Path) -> None:
    # a wheel stores the links' targets as files: copy the package the same way, away from the checkout
    shutil.copytree(REPO / "labctl", tmp_path / "site" / "labctl", symlinks=False,
                    ignore=shutil.ignore_patterns("__pycache__"))
    code = ("import sys, labctl.paths as p; "
            "print('\\n'.join(str(p.repo_data(*a.split('/'))) for a in sys.argv[1:]))")
    args = ["/".join(parts) for parts in SHIPPED]
    out = subprocess.run([sys.executable, "-S", "-c", code, *args], capture_output=True, text=True,
                         check=True, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site")})
    found = [Path(line) for line in out.stdout.splitlines()]
    package = tmp_path / "site" / "labctl"
    assert len(found) == len(SHIPPED)
    for path in found:
        assert path.is_file(), path
        assert package in path.parents, f"{path} is not inside the installed package"
