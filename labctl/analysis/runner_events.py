"""ansible-runner artifacts under `events/<phase>/…`: job events boiled down to one record per phase."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from labctl.analysis.clock import iso_epoch
from labctl.analysis.lines import ParseStats
from labctl.analysis.rawfile import read_text

_HOST_EVENTS = {"runner_on_ok": "ok", "runner_on_failed": "failed", "runner_on_unreachable": "unreachable",
                "runner_on_skipped": "skipped"}


def parse_runner_events(events_dir: Path) -> tuple[list[dict[str, object]], ParseStats]:
    """One summary per phase directory: start/end, per-host ok/changed/failed/unreachable, failures."""
    stats = ParseStats("ansible-runner", str(events_dir))
    phases: list[dict[str, object]] = []
    if not events_dir.is_dir():
        return phases, stats
    for phase_dir in sorted(p for p in events_dir.iterdir() if p.is_dir()):
        hosts: dict[str, Counter[str]] = {}
        times: list[float] = []
        failed: list[str] = []
        for path in sorted(phase_dir.rglob("job_events/*.json")):
            stats.lines += 1
            try:
                ev = json.loads(read_text(path))
                kind = ev["event"]
                data = ev.get("event_data") or {}
            except (ValueError, KeyError, TypeError, OSError):
                stats.skip("bad_event")
                continue
            stats.records += 1
            if (t := iso_epoch(ev.get("created"))) is not None:
                times.append(t)
            if kind in _HOST_EVENTS and isinstance(data, dict):
                host = str(data.get("host", "?"))
                c = hosts.setdefault(host, Counter())
                c[_HOST_EVENTS[kind]] += 1
                res = data.get("res") if isinstance(data.get("res"), dict) else {}
                if res.get("changed"):
                    c["changed"] += 1
                if kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
                    failed.append(f"{host}: {data.get('task', '?')}")
        status = [read_text(p).strip() for p in phase_dir.rglob("status")]
        phases.append({"phase": phase_dir.name, "start": min(times) if times else None,
                       "end": max(times) if times else None,
                       "hosts": {h: dict(c) for h, c in sorted(hosts.items())},
                       "failed_tasks": failed[:20], "status": status[-1] if status else None})
    return phases, stats
