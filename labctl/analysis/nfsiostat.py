"""`nfsiostat <interval> <mount>` text (nfs-utils ≤2.2 … HEAD `-m`, PCP's variant), blocks after `#ts <ep>`.

Columns are mapped from each op's header line, `N (p%)` counts as one cell, the first block per mount
(cumulative since mount) is dropped, free-text lines are ignored.
"""

from __future__ import annotations

import re
from pathlib import Path

from labctl.analysis.clock import HostClock, naive_epoch
from labctl.analysis.lines import ParseStats, iter_text
from labctl.analysis.series import Series, SeriesStore

SOURCE = "nfsiostat"
_MOUNT = re.compile(r"^(?P<export>\S+) mounted on (?P<mount>.+?):?\s*$")
_OP_HEADER = re.compile(r"^(?P<op>\w+):\s+ops?/s")
_HEAD_CELLS = re.compile(r"ops?/s|[kM]B/s|[kM]B/op|retrans|avg RTT \(ms\)|avg exe \(ms\)|avg queue \(ms\)"
                         r"|errors")
_VALUE_CELLS = re.compile(r"\d+\s+\(\d+(?:\.\d+)?%\)|-?\d+(?:\.\d+)?")
_PCP_TS = re.compile(r"^Timestamp\s*:\s*(\d\d)/(\d\d)/(\d{4}) (\d\d):(\d\d):(\d\d)")
_SCALE = {"kB/s": 1024.0, "MB/s": 2.0**20, "kB/op": 1024.0, "MB/op": 2.0**20}
# header cell -> (metric suffix, unit)
_NAMES = {"ops/s": ("ops_rate", "ops/s"), "op/s": ("ops_rate", "ops/s"), "kB/s": ("bytes_rate", "B/s"),
          "MB/s": ("bytes_rate", "B/s"), "kB/op": ("bytes_per_op", "B"), "MB/op": ("bytes_per_op", "B"),
          "retrans": ("retrans", "count"), "avg RTT (ms)": ("rtt_ms", "ms"), "avg exe (ms)": ("exe_ms", "ms"),
          "avg queue (ms)": ("queue_ms", "ms"), "errors": ("errors", "count")}


def _cell(text: str) -> float:
    """`12.5` -> 12.5; `3 (0.1%)` -> 3."""
    return float(text.split()[0])


_Column = tuple[str, str, float, str | None]  # metric, unit, scale, the `.bytes` metric of a rate
_TOP: list[_Column] = [("nfsiostat.rpc.ops_rate", "ops/s", 1.0, None),  # the `ops/s  rpc bklog` line
                       ("nfsiostat.rpc.backlog", "count", 1.0, None)]


def _column(op: str, cell: str) -> _Column:
    """Where one header cell's values go."""
    suffix, unit = _NAMES[cell]
    return (f"nfsiostat.{op}.{suffix}", unit, _SCALE.get(cell, 1.0),
            f"nfsiostat.{op}.bytes" if suffix == "bytes_rate" else None)


def parse_nfsiostat(path: Path, host: str, store: SeriesStore, clock: HostClock, *,
                    nconnect: int = 1, skip_first: bool = True) -> ParseStats:
    """Parse one nfsiostat log into `nfsiostat.<op>.*` series (wire bytes incl. RPC headers).

    `skip_first=False` keeps the first (since-mount) block, e.g. for a one-shot capture.
    The top `ops/s` line comes from one transport only, so it is dropped (and counted) when `nconnect` > 1.
    `nfsiostat.<op>.bytes` (B) is the rate times the measured time since the previous block of that mount.
    """
    stats = ParseStats(SOURCE, str(path))
    ts: float | None = None
    mount: str | None = None
    blocks: dict[str, int] = {}
    last_ts: dict[str, float] = {}
    pending: tuple[str, list[_Column]] | None = None  # (kind, its columns) awaiting its value line
    emit = False
    block_prev: float | None = None

    made: dict[str, Series] = {}

    def add(metric: str, unit: str, value: float) -> None:
        s = made.get(metric) or made.setdefault(metric, store.series_for(host, -1, SOURCE, metric, unit))
        s.ts.append(ts)  # type: ignore[arg-type]
        s.values.append(value)
        stats.records += 1

    headers: dict[str, tuple[str, list[_Column]]] = {}  # op header line -> (op, its columns)

    for line in iter_text(path, stats):
        if line.startswith("#ts "):
            try:
                ts = clock.host(float(line.split()[1]))
            except (ValueError, IndexError):
                stats.skip("bad_ts_line")
                ts = None
            continue
        pcp = _PCP_TS.match(line) if line.startswith("Timestamp") else None
        if pcp:
            mo, d, y, hh, mi, ss = (int(x) for x in pcp.groups())
            ts = clock.local(naive_epoch(y, mo, d, hh, mi, ss))
            continue
        stripped = line.strip()
        if not stripped:
            continue
        m = _MOUNT.match(stripped) if " mounted on " in stripped else None
        if m:
            mount = m["mount"]
            blocks[mount] = blocks.get(mount, 0) + 1
            pending = None
            first = blocks[mount] == 1 and skip_first
            emit = not first and ts is not None
            if first:
                stats.skip("first_block_since_mount")
            elif ts is None:
                stats.skip("no_timestamp")
            block_prev = last_ts.get(mount)
            if emit and block_prev is not None and ts is not None and ts <= block_prev:
                stats.skip("non_increasing_ts")
                emit = False
            if ts is not None:
                last_ts[mount] = ts
            continue
        if pending is not None:
            kind, columns = pending
            pending = None
            values = _VALUE_CELLS.findall(stripped)
            if len(values) != len(columns):
                stats.skip("column_count")
                continue
            if not emit or mount is None:
                continue
            if kind == "top":
                if nconnect > 1:
                    stats.skip("top_line_nconnect")
                else:
                    add("nfsiostat.rpc.ops_rate", "ops/s", _cell(values[0]))
                add("nfsiostat.rpc.backlog", "count", _cell(values[1]))
                continue
            prev = block_prev
            for (metric, unit, scale, bytes_metric), raw in zip(columns, values, strict=True):
                value = _cell(raw) * scale
                add(metric, unit, value)
                if bytes_metric is not None and prev is not None:
                    add(bytes_metric, "B", value * (ts - prev))  # type: ignore[operator]
            continue
        if "rpc bklog" in stripped:
            pending = ("top", _TOP)
            continue
        known = headers.get(stripped)
        if known is None and (oh := _OP_HEADER.match(stripped)):
            op, cells = oh["op"].lower(), _HEAD_CELLS.findall(stripped)
            known = headers[stripped] = (op, [_column(op, c) for c in cells])
        if known is not None:
            pending = known
            continue
        stats.skip("free_text")
    return stats
