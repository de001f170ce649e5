"""manifest.json: the experiment, rendered config, versions, mount options, ONTAP snapshot, times, files."""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path
from typing import Any

from labctl import __version__
from labctl.fileops import sha256_file

log = logging.getLogger(__name__)

REQUIRED = ("run_id", "experiment", "rendered_config", "versions", "mount_options", "ontap", "times", "files")


def file_entries(bundle: Path) -> list[dict[str, Any]]:
    """Size and sha256 of every file under raw/ (and events/), paths relative to the bundle."""
    entries = []
    for sub in ("raw", "events"):
        root = bundle / sub
        if not root.exists():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.name.endswith(".part"):
                entries.append(
                    {
                        "path": str(path.relative_to(bundle)),
                        "size": path.stat().st_size,
                        "sha256": sha256_file(path),
                    }
                )
    return entries


def verify(bundle: Path, manifest: dict[str, Any]) -> list[str]:
    """Problems found re-hashing the files the manifest lists (empty: every checksum verifies)."""
    problems = [f"manifest lacks {k}" for k in REQUIRED if k not in manifest]
    for entry in manifest.get("files", []):
        path = bundle / entry["path"]
        if not path.is_file():
            problems.append(f"{entry['path']}: missing")
            continue
        if sha256_file(path) != entry["sha256"] or path.stat().st_size != entry["size"]:
            problems.append(f"{entry['path']}: checksum or size differs")
    return problems


def host_versions(facts: dict[str, Any]) -> dict[str, Any]:
    keys = ("kernel", "gpu_driver", "bpftrace", "nfs_utils", "python", "llmstudio_tag")
    return {k: facts.get(k) for k in keys}


def mount_options(facts: dict[str, Any]) -> dict[str, Any]:
    return {
        "proc_mounts": facts.get("mounts"),
        "mountstats_opts": facts.get("mountstats_opts"),
        "xprt_count": facts.get("nconnect_xprts"),
    }


def ontap_snapshot(inventory: str | Path) -> dict[str, Any]:
    """The lab's ONTAP objects through labctl's ONTAP client; `{"available": false, …}` when it can't."""
    try:
        from netapp_ontap.resources import ExportPolicy, IpInterface, NfsService, Volume
        from rich.console import Console

        from labctl.config.lab import load_lab_config
        from labctl.ontap.session import ontap_session

        cfg = load_lab_config(Path(inventory))
        quiet = Console(file=io.StringIO())
        with ontap_session(cfg, quiet) as ontap:
            svm = cfg.svm
            fg_name = cfg.flexgroup.name

            def grab(what, fn):
                try:
                    return [r.to_dict() for r in ontap.call(what, fn)]
                except Exception as exc:  # noqa: BLE001 - a partial snapshot beats none
                    return {"error": str(exc)}

            info = ontap.cluster
            return {
                "available": True,
                "cluster": {"name": info.name, "version": info.version} if info else None,
                "svm": svm,
                "flexgroup": grab(
                    "read the FlexGroup",
                    lambda: list(
                        Volume.get_collection(
                            name=fg_name,
                            **{"svm.name": svm},
                            fields="uuid,name,style,size,state,nas,constituents_per_aggregate,"
                            "aggregates,space",
                        )
                    ),
                ),
                "nfs": grab(
                    "read the NFS service",
                    lambda: list(NfsService.get_collection(**{"svm.name": svm}, fields="*")),
                ),
                "export_policies": grab(
                    "read export policies",
                    lambda: list(ExportPolicy.get_collection(**{"svm.name": svm}, fields="name,rules")),
                ),
                "data_lifs": grab(
                    "read data LIFs",
                    lambda: list(
                        IpInterface.get_collection(**{"svm.name": svm}, fields="name,ip,location,services")
                    ),
                ),
            }
    except Exception as exc:  # noqa: BLE001 - recorded, never fatal to a run
        return {"available": False, "reason": f"{type(exc).__name__}: {exc}"}


def finalize(bundle: Path, manifest: dict[str, Any], reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Fill in everything known after collection; `complete` when every host ended and every file verified."""
    by_name = {r["name"]: r for r in reports}
    hosts = manifest["hosts"]
    errors: list[str] = []
    stale: set[str] = set()  # the previous collection's errors: this collection says what still holds
    ended = []
    for h in hosts:
        rep = by_name.get(h["name"], {})
        stale.update(f"{h['name']}: {e}" for e in h.get("collection_errors") or [])
        st = rep.get("status") or {}
        h["state"] = st.get("state", h.get("state"))
        h["trainer"] = st.get("trainer") or h.get("trainer")
        h["finished_flag"] = bool((st.get("trainer") or {}).get("finished_flag"))
        h["monitors"] = st.get("monitors")
        h["collection_errors"] = rep.get("errors", [])
        errors += [f"{h['name']}: {e}" for e in rep.get("errors", [])]
        if st.get("ended_at"):
            ended.append(st["ended_at"])
    facts = {h["name"]: h.get("facts") or {} for h in hosts}
    ontap = ontap_snapshot(manifest["inventory"])
    manifest["rendered_config"] = {h["name"]: h.get("rendered_config") for h in hosts}
    manifest["versions"] = {
        "labctl": __version__,
        "llmstudio": (manifest.get("llmstudio") or {}).get("version"),
        "trainer": manifest.get("trainer"),
        "ontap": ((ontap.get("cluster") or {}).get("version") if ontap.get("available") else None),
        "hosts": {name: host_versions(f) for name, f in facts.items()},
    }
    manifest["mount_options"] = {name: mount_options(f) for name, f in facts.items()}
    manifest["ontap"] = ontap
    manifest["times"]["ended"] = max(ended) if ended else None
    manifest["files"] = file_entries(bundle)
    states = [h.get("state") for h in hosts]
    manifest["success"] = all(h["finished_flag"] for h in hosts)
    manifest["state"] = (
        "finished" if manifest["success"] else ("stopped" if "stopped" in states else "failed")
    )
    kept = [e for e in manifest.get("errors", []) if e not in stale]
    manifest["errors"] = list(dict.fromkeys(kept + errors))
    missing = [f"{h['name']}: still {h.get('state') or 'unknown'}" for h in hosts
               if h.get("state") not in ("finished", "failed", "stopped", "lost")]
    missing += errors + verify(bundle, manifest)
    manifest["missing"] = missing
    manifest["complete"] = not missing
    history = manifest.setdefault("collections", [])  # every collection's outcome, oldest first
    history.append({"at": round(time.time(), 6), "complete": not missing, "errors": errors})
    return manifest
