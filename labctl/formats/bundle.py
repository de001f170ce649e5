"""The run bundle's JSON files as versioned dataclasses (stdlib only: shipped with the host agent).

`spec.json` (what the host agent runs), `status.json` (the agent's live record), `raw/<host>/monitors.json`
(each monitor's command and outcome) and the controller's `manifest.json`. Each carries `schema_version`;
a file without one was written by labctl before the versions existed and has the shape of version 1
(the manifest's old `"version": 1` key is dropped). A newer or unknown version, an unknown key or a
non-object is refused with a `StateError` that names the file.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from labctl.errors import StateError
from labctl.fileops import write_json_atomic

SCHEMA_VERSION = 1
T = TypeVar("T", bound="BundleFile")


@dataclass
class BundleFile:
    """Common to every bundle file: the version, JSON in and out, one atomic write."""

    FILE: ClassVar[str] = ""
    LEGACY_KEYS: ClassVar[tuple[str, ...]] = ()  # keys of unversioned files, dropped on reading
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, default=str) + "\n"

    @classmethod
    def from_dict(cls: type[T], doc: Any, *, where: str | None = None) -> T:
        """The dataclass of a parsed JSON document; `where` (the file) is named in every refusal."""
        where = where or cls.FILE
        if not isinstance(doc, dict):
            raise StateError(f"not a JSON object ({cls.FILE})", where=where, fix=_FIX_DAMAGED)
        doc = dict(doc)
        version = doc.pop("schema_version", None)
        if version is None:  # written before schema versions: version 1's shape
            version = SCHEMA_VERSION
            for key in cls.LEGACY_KEYS:
                doc.pop(key, None)
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= SCHEMA_VERSION:
            raise StateError(
                f"schema_version {version!r} is not one this labctl reads (it reads {SCHEMA_VERSION})",
                where=where,
                fix="read it with the labctl that wrote it (a newer one), or upgrade labctl",
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(doc) - names)
        if unknown:
            raise StateError(
                f"key(s) {', '.join(unknown)} unknown to {cls.FILE} schema_version {version}",
                where=where,
                fix="read it with the labctl that wrote it, or upgrade labctl",
            )
        return cls(schema_version=version, **doc)

    @classmethod
    def from_json(cls: type[T], text: str, *, where: str | None = None) -> T:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise StateError(f"not JSON: {exc}", where=where or cls.FILE,
                             fix=_FIX_DAMAGED) from exc
        return cls.from_dict(doc, where=where)

    @classmethod
    def load(cls: type[T], path: Path) -> T:
        """Read and check `path`; StateError (naming it) when it is unreadable or not this schema."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise StateError(f"cannot read it: {exc}", where=str(path), fix=_FIX_DAMAGED) from exc
        return cls.from_json(text, where=str(path))

    def save(self, path: Path) -> None:
        """Atomic write (temporary file, then rename)."""
        write_json_atomic(path, self.to_dict())


_FIX_DAMAGED = "the file is damaged or not labctl's: restore it, or start a new run"


@dataclass
class Spec(BundleFile):
    """`<host rundir>/spec.json`: what the host agent runs (written by `labctl run`)."""

    FILE: ClassVar[str] = "spec.json"
    run_id: str | None = None
    host: str | None = None
    rundir: str = ""
    mount: str = ""
    proc_mountstats: str = "/proc/self/mountstats"
    proc_mounts: str = "/proc/mounts"
    llmstudio_dir: str | None = None
    dataset: str | None = None
    backbone_dir: str | None = None
    monitors: dict[str, Any] = field(default_factory=dict)  # per monitor: enabled, interval; lead_s, tail_s
    gpus: int | None = None
    bpftrace: dict[str, Any] = field(default_factory=dict)  # program (file beside the agent), strlen
    trainer: dict[str, Any] = field(default_factory=dict)  # kind, argv, cwd, env, output_dir, flags_path
    use_systemd: str = "auto"  # auto | never | always


@dataclass
class Status(BundleFile):
    """`<host rundir>/status.json`: the agent's live record of the run on one host."""

    FILE: ClassVar[str] = "status.json"
    run_id: str | None = None
    host: str | None = None
    state: str = "unknown"  # starting, monitoring, training, stopping, finished, failed, stopped (lost: read)
    agent_pid: int | None = None
    started_at: float | None = None
    updated_at: float | None = None
    ended_at: float | None = None
    trainer: dict[str, Any] = field(default_factory=dict)
    progress: dict[str, Any] = field(default_factory=dict)
    monitors: dict[str, str] = field(default_factory=dict)  # name → status
    gpu_pct: float | None = None
    nfs_mbps: dict[str, Any] | None = None
    trainer_alive: bool | None = None  # set by `agent status`/`watch` when the agent is gone


@dataclass
class Monitors(BundleFile):
    """`raw/<host>/monitors.json`: each monitor's command, start/stop, exit status and errors."""

    FILE: ClassVar[str] = "monitors.json"
    tz: str = "UTC"
    host: str | None = None
    run_id: str | None = None
    monitors: list[dict[str, Any]] = field(default_factory=list)
    trainer: dict[str, Any] = field(default_factory=dict)


@dataclass
class Manifest(BundleFile):
    """`runs/<run-id>/manifest.json`: the controller's record of a run, from its start to its collection."""

    FILE: ClassVar[str] = "manifest.json"
    LEGACY_KEYS: ClassVar[tuple[str, ...]] = ("version",)
    run_id: str = ""
    state: str = "preparing"
    complete: bool = False
    success: bool | None = None
    experiment_file: str | None = None
    inventory: str | None = None
    experiment: dict[str, Any] = field(default_factory=dict)
    experiment_yaml: str | None = None
    trainer: str | None = None
    labctl_version: str | None = None
    times: dict[str, Any] = field(default_factory=dict)
    hosts: list[dict[str, Any]] = field(default_factory=list)
    llmstudio: dict[str, Any] | None = None
    emulator: dict[str, Any] | None = None
    rendered_config: dict[str, Any] | None = None
    versions: dict[str, Any] | None = None
    mount_options: dict[str, Any] | None = None
    ontap: dict[str, Any] | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    collections: list[dict[str, Any]] = field(default_factory=list)
