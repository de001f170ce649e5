"""Real I/O counters: what the test hosts' FUSE layer reports (`POST /_sim/nfs/io`) becomes ONTAP's raw
`statistics` and `metric` rates on volumes, constituents, aggregates, nodes, IP interfaces, the NFS service.

Placement (docs/simulator.md): a file of a FlexGroup lives on the constituent picked by a stable hash of its
path inside the volume (sha256, first 8 bytes, modulo the constituent count), remembered the first time it is
seen so that it stays there. The constituent's aggregate and that aggregate's node get its traffic; with pNFS
the data (read/write bytes) goes through the SVM's data LIF currently located on that node, metadata through
the LIF the client mounted. Raw counters are cumulative: ops, bytes and microseconds (latency, as ONTAP).

History: the counters are sampled on ONTAP's 15 s grid. They only change when a report arrives, so a sample is
stored lazily (the values in force at the first grid point after a change) and the value at any grid point is
the newest sample at or before it; `metric` is the last complete 15 s window.
"""

from __future__ import annotations

import bisect
import copy
import hashlib
import math
import os
import time
from pathlib import Path, PurePosixPath
from typing import Any

from labctl.sim.exceptions import InvalidValue, OntapApiError
from labctl.sim.models.base import Record
from labctl.sim.models.counters import add_counters
from labctl.sim.models.svm import SvmMixin

KINDS = ("read", "write", "other")
FIELDS = tuple(f"{kind}_{unit}" for kind in KINDS for unit in ("ops", "bytes", "us"))
SAMPLE_S = 15
# the real API's `interval` (time range) → (seconds of history, sample step, `duration` of each record)
INTERVALS = {"1h": (3600, 15, "PT15S"), "1d": (86400, 300, "PT5M"), "1w": (7 * 86400, 1800, "PT30M"),
             "1m": (30 * 86400, 7200, "PT2H"), "1y": (365 * 86400, 86400, "P1D")}
KEEP_S = 366 * 86400
NFS_VERSIONS = {"3": "v3", "4": "v4", "4.0": "v4", "4.1": "v41", "4.2": "v41"}
Counter = dict[str, int]


def blank() -> Counter:
    """Zeroed raw counters."""
    return dict.fromkeys(FIELDS, 0)


def iso(epoch: float) -> str:
    """An epoch as ONTAP's timestamp (UTC, seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def file_hash(path: str) -> int:
    """A stable 64-bit hash of a path (the same in every process and run)."""
    return int.from_bytes(hashlib.sha256(path.encode("utf-8")).digest()[:8], "big")


def raw_block(c: Counter) -> dict[str, Any]:
    """`statistics`' `iops_raw`, `throughput_raw`, `latency_raw` (read/write/other/total) of one counter."""
    out: dict[str, Any] = {}
    for name, unit in (("iops_raw", "ops"), ("throughput_raw", "bytes"), ("latency_raw", "us")):
        values = {kind: c[f"{kind}_{unit}"] for kind in KINDS}
        out[name] = {**values, "total": sum(values.values())}
    return out


def rate_block(before: Counter, after: Counter, seconds: float) -> dict[str, Any]:
    """`metric`'s `iops`, `throughput` (per second) and `latency` (µs per op) between two samples."""
    delta = {k: max(0, after[k] - before[k]) for k in FIELDS}
    iops = {kind: int(delta[f"{kind}_ops"] / seconds) for kind in KINDS}
    throughput = {kind: int(delta[f"{kind}_bytes"] / seconds) for kind in KINDS}
    latency = {kind: delta[f"{kind}_us"] // delta[f"{kind}_ops"] if delta[f"{kind}_ops"] else 0
               for kind in KINDS}
    ops = sum(delta[f"{kind}_ops"] for kind in KINDS)
    return {"iops": {**iops, "total": int(ops / seconds)},
            "throughput": {**throughput, "total": sum(throughput.values())},
            "latency": {**latency, "total": sum(delta[f"{k}_us"] for k in KINDS) // ops if ops else 0}}


def add(target: Counter, other: Counter) -> None:
    """Add `other` into `target`."""
    for key in FIELDS:
        target[key] += other.get(key, 0)


class IoStats:
    """Cumulative counters by key (`volume:<uuid>`, `aggregate:<uuid>`, `node:<uuid>`, `lif:<uuid>`,
    `nfs:<svm uuid>:v41`) and their sparse history on the 15 s grid. Guarded by the backend's lock."""

    def __init__(self, now: float | None = None) -> None:
        self.start = time.time() if now is None else now
        self.raw: dict[str, Counter] = {}
        self.times: list[float] = []  # the grid points of `samples`, ascending
        self.samples: list[dict[str, Counter]] = []
        self.placement: dict[tuple[str, str], str] = {}
        self._pending: float | None = None  # the grid point after the last change, not yet sampled

    def advance(self, now: float) -> None:
        """Store the sample of the grid point after the last change once that point has passed."""
        if self._pending is not None and self._pending <= now:
            self.times.append(self._pending)
            self.samples.append(copy.deepcopy(self.raw))
            self._pending = None
            cut = max(0, bisect.bisect_left(self.times, now - KEEP_S) - 1)  # keep the one in force at the cut
            del self.times[:cut], self.samples[:cut]

    def count(self, key: str, values: Counter, now: float) -> None:
        """Add `values` to the counters of `key`."""
        self.advance(now)
        add(self.raw.setdefault(key, blank()), values)
        self._pending = math.floor(now / SAMPLE_S) * SAMPLE_S + SAMPLE_S

    def at(self, grid: float) -> dict[str, Counter]:
        """The counters in force at a grid point (empty before the first sample)."""
        i = bisect.bisect_right(self.times, grid)
        return self.samples[i - 1] if i else {}


def _sum(sample: dict[str, Counter], keys: list[str]) -> Counter:
    total = blank()
    for key in keys:
        add(total, sample.get(key, {}))
    return total


class IoStatsMixin(SvmMixin):
    """Takes the FUSE layer's reports and puts the counters on the records it renders."""

    io: IoStats

    def render_volume(self, volume: Record) -> Record:
        return add_counters(super().render_volume(volume), "/api/storage/volumes", self.now(),
                            self.volume_io(volume))

    def render_aggregate(self, aggr: Record) -> Record:
        return add_counters(super().render_aggregate(aggr), "/api/storage/aggregates", self.now(),
                            self.io_counters([f"aggregate:{aggr['uuid']}"]))

    def render_interface(self, lif: Record) -> Record:
        return add_counters(super().render_interface(lif), "/api/network/ip/interfaces", self.now(),
                            self.io_counters([f"lif:{lif['uuid']}"]))

    def render_nfs_service(self, service: Record) -> Record:
        return add_counters(super().render_nfs_service(service), "/api/protocols/nfs/services", self.now(),
                            self.nfs_io(service))

    # reports ----------------------------------------------------------------------------------------------
    def record_io(self, body: dict[str, Any]) -> dict[str, Any]:
        """One report: `{"directory", "server", "vers", "pnfs", "files": {path: {read_ops, read_bytes,
        read_us, write_…, other_…}}}` → counted on every object it crossed; returns what was counted."""
        files = body.get("files")
        if not isinstance(files, dict):
            raise InvalidValue("files", files)
        for path, values in files.items():  # the whole batch is checked before any of it counts
            if not isinstance(values, dict) or not all(isinstance(values.get(k, 0), int) for k in FIELDS):
                raise InvalidValue(f"files.{path}", values)
        volume, below = self._volume_of(str(body.get("directory", "")))
        svm = self.svm_by_uuid(volume["svm"]["uuid"]) or {}
        mounted = next((i for i in self.state["interfaces"].values()
                        if i["ip"]["address"] == body.get("server") and i["svm"]["uuid"] == svm.get("uuid")),
                       None)
        if mounted is None:
            raise OntapApiError(f"No data LIF with address \"{body.get('server')}\" in SVM "
                                f"\"{svm.get('name')}\".", code="2", target="server")
        version = NFS_VERSIONS.get(str(body.get("vers", "")))
        now = time.time()
        counted = 0
        for path, values in files.items():
            counter = {k: max(0, int(values.get(k, 0))) for k in FIELDS}
            rel = str(PurePosixPath(below, str(path).lstrip("/")))
            target = self.place_file(volume, rel)
            aggrs = target.get("aggregates") or [{}]
            aggr = self.state["aggregates"].get(aggrs[0].get("uuid", ""))
            node_uuid = aggr["node"]["uuid"] if aggr else (target.get("nodes") or [{}])[0].get("uuid", "")
            data = {k: v for k, v in counter.items() if not k.startswith("other_")}
            meta = {k: v for k, v in counter.items() if k.startswith("other_")}
            self.io.count(f"volume:{target['uuid']}", counter, now)
            if aggr is not None:
                self.io.count(f"aggregate:{aggr['uuid']}", counter, now)
            self.io.count(f"node:{node_uuid}", counter, now)
            data_lif = self.data_lif(mounted, node_uuid) if body.get("pnfs") else mounted
            self.io.count(f"lif:{data_lif['uuid']}", data, now)
            self.io.count(f"lif:{mounted['uuid']}", meta, now)
            if version:
                self.io.count(f"nfs:{svm['uuid']}:{version}", counter, now)
            counted += 1
        return {"files": counted, "volume": volume["name"]}

    def _volume_of(self, directory: str) -> tuple[Record, str]:
        """The volume whose directory holds `directory`, and the path below the volume's root."""
        for volume in self.state["volumes"].values():
            if volume["style"] == "flexgroup_constituent":
                continue
            root = str(self.volume_dir(volume))
            if directory and os.path.commonpath([root, directory]) == root:
                return volume, Path(directory).relative_to(root).as_posix()
        raise OntapApiError(f"No volume holds directory \"{directory}\".", code="4", target="directory")

    def place_file(self, volume: Record, rel: str) -> Record:
        """The constituent a FlexGroup file lives on (a FlexVol: the volume itself); see the module doc."""
        members = self.constituents(volume) if volume["style"] == "flexgroup" else []
        if not members:
            return volume
        key = (volume["uuid"], rel.strip("/") or ".")
        chosen = self.io.placement.get(key)
        member = next((m for m in members if m["uuid"] == chosen), None)
        if member is None:
            member = members[file_hash(key[1]) % len(members)]
            self.io.placement[key] = member["uuid"]
        return member

    def data_lif(self, mounted: Record, node_uuid: str) -> Record:
        """The SVM's NFS data LIF currently on `node_uuid` (the mounted one when it is there or none is)."""
        if mounted["location"]["node"]["uuid"] == node_uuid:
            return mounted
        here = sorted((i for i in self.state["interfaces"].values()
                       if i["svm"]["uuid"] == mounted["svm"]["uuid"] and i["enabled"]
                       and "data_nfs" in i["services"] and i["location"]["node"]["uuid"] == node_uuid),
                      key=lambda i: i["name"])
        return here[0] if here else mounted

    # rendering --------------------------------------------------------------------------------------------
    def _keys_of_volume(self, volume: Record) -> list[str]:
        members = self.constituents(volume) if volume["style"] == "flexgroup" else []
        return [f"volume:{m['uuid']}" for m in members] or [f"volume:{volume['uuid']}"]

    def io_counters(self, keys: list[str]) -> dict[str, Any]:
        """`statistics` (raw, now) and `metric` (the last complete 15 s window) of the sum of `keys`."""
        now = time.time()
        self.io.advance(now)
        end = math.floor(now / SAMPLE_S) * SAMPLE_S
        stats = {**raw_block(_sum(self.io.raw, keys)), "status": "ok", "timestamp": iso(now)}
        before, after = (_sum(self.io.at(t), keys) for t in (end - SAMPLE_S, end))
        metric = {**rate_block(before, after, SAMPLE_S), "status": "ok", "timestamp": iso(end),
                  "duration": f"PT{SAMPLE_S}S"}
        return {"statistics": stats, "metric": metric}

    def volume_io(self, volume: Record) -> dict[str, Any]:
        """The volume's counters (a FlexGroup's: the sum of its constituents')."""
        return self.io_counters(self._keys_of_volume(volume))

    def node_io(self, node: Record) -> dict[str, Any]:
        """A node's `processor_utilization_raw` (µs spent serving its I/O) over `…_base` (µs elapsed)."""
        now = time.time()
        self.io.advance(now)
        key = f"node:{node['uuid']}"

        def busy(counter: Counter) -> int:
            return sum(counter.get(f"{kind}_us", 0) for kind in KINDS)

        base = int((now - self.io.start) * 1e6)
        end = math.floor(now / SAMPLE_S) * SAMPLE_S
        delta = busy(self.io.at(end).get(key, {})) - busy(self.io.at(end - SAMPLE_S).get(key, {}))
        return {"statistics": {"processor_utilization_raw": min(base, busy(self.io.raw.get(key, {}))),
                               "processor_utilization_base": base, "status": "ok", "timestamp": iso(now)},
                "metric": {"processor_utilization": min(100, int(delta / (SAMPLE_S * 1e4))), "status": "ok",
                           "timestamp": iso(end), "duration": f"PT{SAMPLE_S}S"}}

    def nfs_io(self, service: Record) -> dict[str, Any]:
        """The NFS service's counters per protocol version (`v3`, `v4`, `v41`)."""
        parts = {v: self.io_counters([f"nfs:{service['svm']['uuid']}:{v}"]) for v in ("v3", "v4", "v41")}
        return {"statistics": {v: p["statistics"] for v, p in parts.items()},
                "metric": {v: p["metric"] for v, p in parts.items()}}

    def volume_metrics(self, volume: Record, interval: str) -> list[dict[str, Any]]:
        """`GET /api/storage/volumes/{uuid}/metrics?interval=`: one record per step, newest first, from the
        first complete step after the counters started."""
        if interval not in INTERVALS:
            raise InvalidValue("interval", interval)
        span, step, duration = INTERVALS[interval]
        now = time.time()
        self.io.advance(now)
        keys = self._keys_of_volume(volume)
        end = math.floor(now / step) * step
        records = []
        t = end
        while t > now - span and t - step >= math.floor(self.io.start / step) * step:
            rates = rate_block(_sum(self.io.at(t - step), keys), _sum(self.io.at(t), keys), step)
            records.append({**rates, "timestamp": iso(t), "duration": duration, "status": "ok"})
            t -= step
        return records
