"""What a provision with nothing to change skips: `labctl_venv` runs pip only when its stamp differs, and
`labctl_host_record` claims and makes directories in one call. Real Ansible runs the modules (one
ansible-playbook per test, local connection); the second provision of a simulated lab is checked in
tests/hosts/test_provision_hosts.py (one ansible-playbook run, pip not run, no facts gathered)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

import labctl.fileops
from labctl.paths import repo_data


def _play(tmp_path: Path, tasks: list[dict[str, Any]], **extra_env: str) -> list[dict[str, Any]]:
    """Run `tasks` on localhost in one ansible-playbook (`extra_env` added to its environment); each task's
    localhost result, in order."""
    if not shutil.which("ansible-playbook"):
        pytest.skip("ansible not installed")
    book = tmp_path / "play.yml"
    book.write_text(yaml.safe_dump([{"name": "labctl modules", "hosts": "localhost", "gather_facts": False,
                                     "tasks": tasks}]))
    env = {**os.environ, "ANSIBLE_LIBRARY": str(repo_data("playbooks", "library")), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_STDOUT_CALLBACK": "json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", **extra_env}
    argv = ["ansible-playbook", "-i", "localhost,", "-c", "local", "-e",
            f"ansible_python_interpreter={sys.executable}", str(book)]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    plays = json.loads(out.stdout)["plays"]
    return [t["hosts"]["localhost"] for t in plays[0]["tasks"]]


def _wheel(into: Path, name: str) -> None:
    """A minimal pure-Python wheel of `name` 1.0, so pip installs from `into` (--no-index) on any machine."""
    dist = name.replace("-", "_")
    files = {
        f"{dist}/__init__.py": "",
        f"{dist}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{dist}-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: labctl-tests\nRoot-Is-Purelib: true\n"
                                       "Tag: py3-none-any\n",
    }
    record = [f"{path},sha256={_digest(text)},{len(text)}" for path, text in files.items()]
    files[f"{dist}-1.0.dist-info/RECORD"] = "\n".join([*record, f"{dist}-1.0.dist-info/RECORD,,"]) + "\n"
    into.mkdir(exist_ok=True)
    with zipfile.ZipFile(into / f"{dist}-1.0-py3-none-any.whl", "w") as whl:
        for path, text in files.items():
            whl.writestr(path, text)


def _digest(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


def _venv_task(venv: Path, reqs: Path, pip_args: list[str]) -> dict[str, Any]:
    # the interpreter running the tests makes the venv; its requirements are the local wheels of _wheel
    # (--no-index --find-links), so nothing is downloaded and no machine's site packages matter
    return {"labctl_venv": {"path": str(venv), "python": sys.executable, "system_site_packages": True,
                            "requirements": str(reqs), "pip_args": pip_args}, "ignore_errors": True}


def _file(path: Path, **kw: Any) -> dict[str, Any]:
    return {"ansible.builtin.file": {"path": str(path), **kw}}


def test_pip_runs_only_when_the_requirements_args_venv_or_stamp_changed(tmp_path):
    venv, reqs = tmp_path / "venv", tmp_path / "requirements.txt"
    wheels = tmp_path / "wheels"
    for name in ("labctl-probe-a", "labctl-probe-b"):
        _wheel(wheels, name)
    reqs.write_text("labctl-probe-a\n")
    stamp = venv / "labctl-requirements.stamp"
    no_index = ["--no-index", "--find-links", str(wheels)]
    results = _play(tmp_path, [
        _venv_task(venv, reqs, no_index),                                    # 0 fresh
        _venv_task(venv, reqs, no_index),                                    # 1 nothing changed
        {"ansible.builtin.copy": {"dest": str(reqs), "content": "labctl-probe-a\nlabctl-probe-b\n",
                                  "mode": "0644"}},
        _venv_task(venv, reqs, no_index),                                    # 3 requirements changed
        _file(stamp, state="absent"),
        _venv_task(venv, reqs, no_index),                                    # 5 stamp missing
        _venv_task(venv, reqs, [*no_index, "--no-deps"]),                    # 6 pip arguments changed
        _file(venv / "bin" / "python", state="absent"),
        _venv_task(venv, reqs, [*no_index, "--no-deps"]),                    # 8 broken venv
        {"ansible.builtin.copy": {"dest": str(reqs), "content": "labctl-no-such-package\n", "mode": "0644"}},
        _venv_task(venv, reqs, no_index),                                    # 10 pip fails
        {"ansible.builtin.stat": {"path": str(stamp)}},                      # 11
        _venv_task(venv, reqs, no_index),                                    # 12 still fails: pip runs again
    ])
    ran = {i: (r.get("installed"), r.get("created")) for i, r in enumerate(results) if "installed" in r}
    assert ran == {0: (True, True), 1: (False, False), 3: (True, False), 5: (True, False), 6: (True, False),
                   8: (True, True)}, results
    assert results[1]["changed"] is False and results[0]["changed"] is True
    assert "Requirement already satisfied: labctl-probe-a" in results[3]["stdout"], results[3]["stdout"]
    # a failed install leaves no stamp, so the next run tries again; the message is pip's own
    for failed in (results[10], results[12]):
        assert failed["failed"] and failed["msg"].startswith("pip install exited 1:"), failed
        assert "labctl-no-such-package" in failed["msg"]
    assert results[11]["stat"]["exists"] is False


def test_system_site_packages_of_a_venv_python_are_that_venvs(tmp_path):
    # `python` is a venv with labctl-probe-a in its own site-packages (a wheel unpacked there) and no pip; the
    # requirement must be found installed through that venv (no index: pip cannot fetch it), not reinstalled
    base, venv, reqs = tmp_path / "base-venv", tmp_path / "venv", tmp_path / "requirements.txt"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(base)], check=True)
    base_site = base / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    _wheel(tmp_path / "wheels", "labctl-probe-a")
    with zipfile.ZipFile(tmp_path / "wheels" / "labctl_probe_a-1.0-py3-none-any.whl") as whl:
        whl.extractall(base_site)
    (base_site / "labctl_probe_marker.pth").write_text(str(tmp_path / "marked") + "\n")
    (tmp_path / "marked").mkdir()
    (tmp_path / "no-wheels").mkdir()
    reqs.write_text("labctl-probe-a\n")
    plain = tmp_path / "plain-venv"
    no_index = ["--no-index", "--find-links", str(tmp_path / "no-wheels")]
    task = _venv_task(venv, reqs, no_index)
    task["labctl_venv"]["python"] = str(base / "bin" / "python")
    plain_task = _venv_task(plain, reqs, ["--no-index", "--find-links", str(tmp_path / "wheels")])
    plain_task["labctl_venv"]["python"] = getattr(sys, "_base_executable", sys.executable)  # not a venv
    made, again, from_plain = _play(tmp_path, [task, task, plain_task])
    assert made.get("installed") is True and made["created"] is True, made.get("msg")
    assert "Requirement already satisfied: labctl-probe-a" in made["stdout"], made["stdout"]
    assert again["installed"] is False and again["changed"] is False, again
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sys, labctl_probe_a; print(labctl_probe_a.__file__); "
         "print(sys.path.index(sys.argv[1]) < sys.path.index(sys.argv[2]) < sys.path.index(sys.argv[3]))",
         str(venv / base_site.relative_to(base)), str(base_site), str(tmp_path / "marked")],
        capture_output=True, text=True, check=True).stdout.split()
    # from the base venv itself (the new venv installed nothing), after the new venv's own site-packages,
    # with the base venv's .pth files processed too
    assert where == [str(base_site / "labctl_probe_a" / "__init__.py"), "True"], where
    # a venv made from a python that is no venv is as `python -m venv` makes it: no .pth of labctl's
    assert from_plain.get("installed") is True, from_plain
    assert not list(plain.glob("lib/python*/site-packages/labctl_site_packages.pth"))
    assert (plain / "lib" / base_site.parent.name / "site-packages" / "labctl_probe_a").is_dir()


def test_host_record_claims_only_missing_paths_and_makes_them_once(tmp_path):
    state, made, existing = tmp_path / "state", tmp_path / "caches" / "hf", tmp_path / "already"
    existing.mkdir()
    task = {"labctl_host_record": {"dir": str(state), "claim": {"installs": [str(made), str(existing)]},
                                   "create": [str(made)]}}
    first, again = _play(tmp_path, [task, task])
    assert first["changed"] is True and first["created"] == [str(made)] and made.is_dir()
    assert first["record"]["installs"] == [str(made)]  # what was there before labctl is never claimed
    assert oct(made.stat().st_mode & 0o777) == "0o755"
    assert again["changed"] is False and again["created"] == [] and again["record"] == first["record"]


def test_host_record_is_saved_0600_in_a_0700_dir_through_the_shipped_fileops(tmp_path):
    # the playbooks find playbooks/module_utils beside them; this playbook is elsewhere, so it is named here.
    # The module's files are kept, to see what AnsiballZ shipped: labctl/fileops.py itself, through the link
    state, remote = tmp_path / "state", tmp_path / "remote"
    state.mkdir(mode=0o755)
    add = {"labctl_host_record": {"dir": str(state), "add": {"mounts": {"/mnt/b": "10.0.0.5:/b"}}}}
    more = {"labctl_host_record": {"dir": str(state), "add": {"dirs": ["/mnt/b"]}}}
    utils = str(repo_data("playbooks", "module_utils"))
    first, second = _play(tmp_path, [add, more], ANSIBLE_MODULE_UTILS=utils, ANSIBLE_KEEP_REMOTE_FILES="1",
                          ANSIBLE_REMOTE_TMP=str(remote), ANSIBLE_PIPELINING="False")
    assert first["changed"] and second["changed"], (first, second)
    record = state / "host.json"
    assert oct(state.stat().st_mode & 0o777) == "0o700" and oct(record.stat().st_mode & 0o777) == "0o600"
    text = record.read_text(encoding="utf-8")
    assert json.loads(text) == second["record"] == {"version": 1, "mounts": {"/mnt/b": "10.0.0.5:/b"},
                                                     "fstab": {}, "dirs": ["/mnt/b"], "installs": []}
    assert text == json.dumps(second["record"], indent=1, sort_keys=True) + "\n"
    assert sorted(p.name for p in state.iterdir()) == ["host.json"]  # no temporary file left
    wrappers = sorted(remote.glob("*/AnsiballZ_labctl_host_record.py"))
    assert wrappers, sorted(remote.rglob("*"))
    payload = max(re.findall(r"[A-Za-z0-9+/=]{2000,}", wrappers[0].read_text()), key=len)
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(payload))) as shipped:
        fileops = shipped.read("ansible/module_utils/labctl_fileops.py")
    assert fileops == Path(labctl.fileops.__file__).read_bytes()
