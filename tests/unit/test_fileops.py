"""fileops' atomic writes: the file is the old one or the new one, with the asked mode, never a part."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from labctl.fileops import write_json_atomic, write_text_atomic


def test_the_mode_is_the_one_asked_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_text_atomic(tmp_path / "shared.txt", "x\n")
    finally:
        os.umask(old)
    write_json_atomic(tmp_path / "secret.json", {"b": 1, "a": 2}, mode=0o600, sort_keys=True, durable=True)
    assert oct((tmp_path / "shared.txt").stat().st_mode & 0o777) == "0o644"
    assert oct((tmp_path / "secret.json").stat().st_mode & 0o777) == "0o600"
    assert (tmp_path / "secret.json").read_text() == '{\n "a": 2,\n "b": 1\n}\n'
    write_json_atomic(tmp_path / "line.json", {"sha256": "ab"}, indent=None)
    assert (tmp_path / "line.json").read_text() == '{"sha256": "ab"}\n'


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "doc.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(TypeError):  # not JSON: fails before the file is touched
        write_json_atomic(target, {("tuple", "key"): 1})
    assert json.loads(target.read_text()) == {"v": 1}
    taken = tmp_path / "taken"
    (taken / "inside").mkdir(parents=True)  # a directory holds the name: the rename fails after the write
    with pytest.raises(OSError):
        write_text_atomic(taken, "new\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.json", "taken"]
