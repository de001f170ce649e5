"""`bpftrace -f json` output of labctl's io_by_second.bt (bpftrace 0.14 … 0.26 record shapes, research
instrumentation.md §4.5).

The shipped program prints, per tick: `printf "tick <nsecs>"` then one flat totals line, the map `@io`
(key = index in `SUM_MAPS`, value = that second's sum; an absent key or map means zero) and, when there were
any, `@ckpt_open[comm, path]`; at exit a last tick, `printf "totals <nsecs>"`, the per-command maps and the
histograms over the whole run, and `printf "end <nsecs>"`. Older traces printed the per-command maps and
histograms every tick: their per-tick sums are the maps' totals (read the same way).

Its compact form, written by the host agent once bpftrace has stopped (`write_compact`): `bpftrace.f64`
(`labctl.formats.records`), a row per tick (`TICK_COLUMNS`: the tick's boot-clock ns and the sums of the
second it closes), and `bpftrace.totals.json`, everything else the trace holds (`Trace.totals`) with the
verbatim file's line count and skips.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from labctl.fileops import write_text_atomic

from . import records
from .mountstats import CountedSkips, NoSkips, Skips

SUM_MAPS = ("read_bytes", "write_bytes", "read_calls", "write_calls", "fsync_calls")
HIST_MAPS = ("read_size", "write_size")
MARKERS = ("tick", "start", "totals", "end")
TICK_COLUMNS = ("ns", *SUM_MAPS)
COMPACT = ("bpftrace.f64", "bpftrace.totals.json")  # beside bpftrace.jsonl
_MISESCAPE = re.compile(rb"\\uffffff([0-9a-fA-F]{2})")
_TICK = b'{"type": "printf", "data": "tick '
_IO = b'{"type": "map", "data": {"@io": '
_IO_PAIR = re.compile(rb'"([0-4])": (\d+)[,}]')



def fix_escapes(raw: bytes) -> str:
    """Undo bpftrace ≤0.26's sign-extended `\\uffffffXX` escapes of non-ASCII bytes, then decode UTF-8."""
    if b"\\uffffff" in raw:
        raw = _MISESCAPE.sub(lambda m: bytes([int(m[1], 16)]), raw)
    return raw.decode("utf-8", "replace")


def split_key(key: str, arity: int) -> list[str]:
    """Split a tuple key joined by `,` (free text last, so at most arity-1 splits)."""
    return key.split(",", arity - 1)


def record(kind: str, data: object) -> str:
    """One output line (without its newline), as bpftrace writes it."""
    return json.dumps({"type": kind, "data": data})


def marker(word: str, ns: int) -> str:
    """A `tick`/`start`/`totals`/`end` printf record."""
    return record("printf", f"{word} {ns}\n")


def _num(value: object) -> float:
    """bpftrace ≥0.24 writes integers beyond 2^53 as strings."""
    return float(value) if isinstance(value, (int, float, str)) else 0.0  # type: ignore[arg-type]


class Trace:
    """A trace read line by line (`line`, then `close`): boot-clock ticks with the sums of the second each
    closes, and the run's per-command totals, histograms, checkpoint opens and bpftrace's own records."""

    def __init__(self, skips: Skips | None = None) -> None:
        self.skips = skips or NoSkips()
        self.ticks: list[int] = []
        self.sums: dict[str, list[float]] = {m: [] for m in SUM_MAPS}  # per tick, once closed
        self.by_comm: dict[str, Counter[str]] = {m: Counter() for m in SUM_MAPS}
        self.hists: dict[str, Counter[tuple[int | None, int | None]]] = {m: Counter() for m in HIST_MAPS}
        self.opens: list[tuple[int, str, str, int]] = []  # tick ns, comm, path, count
        self.lost_events = 0
        self.probes: int | None = None
        self.start: int | None = None  # the marker before the first tick
        self._cur = [0.0] * len(SUM_MAPS)  # the open tick's sums, in SUM_MAPS order
        self._totals = self._ended = False

    def line(self, raw: bytes) -> None:
        """One line of the trace (without its newline)."""
        digits = raw[len(_TICK):-4]
        if raw.startswith(_TICK) and raw.endswith(b'\\n"}') and digits.isdigit() and len(digits) <= 18 \
                and not self._totals:  # the shipped tick, as it is written
            if self.ticks:
                self._close_tick()
            self.ticks.append(int(digits))
            return
        if raw.startswith(_IO) and raw.endswith(b"}}}") and self.ticks and not self._ended:  # its @io line
            pairs = _IO_PAIR.findall(raw, len(_IO))
            if len(pairs) == raw.count(b":") - 3:  # every pair a plain key and integer: else read it below
                for key, v in pairs:
                    self._cur[int(key)] += int(v)
                return
        if not raw.strip():
            self.skips.skip("blank")
            return
        try:
            rec = json.loads(fix_escapes(raw))
            kind, data = rec["type"], rec.get("data")
        except (ValueError, KeyError, TypeError):
            self.skips.skip("bad_json")
            return
        if kind == "printf" and isinstance(data, str):
            self._marker(data)
        elif kind in ("map", "hist", "stats") and isinstance(data, dict):
            if self._ended:
                self.skips.skip("exit_dump")
            elif not self.ticks:
                self.skips.skip("before_first_tick")
            else:
                for name, value in data.items():
                    self._map(name.lstrip("@"), value)
        elif kind == "lost_events" and isinstance(data, dict):
            self.lost_events += int(data.get("events", 0) or 0)
        elif kind == "attached_probes" and isinstance(data, dict):
            self.probes = int(data.get("probes", 0) or 0)
        else:
            self.skips.skip("other_record")

    def totals(self) -> dict[str, Any]:
        """What the trace holds besides its ticks, as JSON (`from_totals` reads it back)."""
        return {"start": self.start, "ticks": len(self.ticks), "lost_events": self.lost_events,
                "probes": self.probes, "by_comm": self.by_comm, "opens": self.opens,
                "hists": {m: [[lo, hi, n] for (lo, hi), n in h.items()] for m, h in self.hists.items()}}

    @classmethod
    def from_totals(cls, doc: dict[str, Any]) -> Trace:
        """A trace holding `totals`' content, without ticks (raises ValueError/KeyError/TypeError when `doc`
        is not such a document)."""
        t = cls()
        t.start, t.lost_events, t.probes = doc["start"], int(doc["lost_events"]), doc["probes"]
        for m in SUM_MAPS:
            t.by_comm[m].update({str(c): int(n) for c, n in doc["by_comm"][m].items()})
        for m in HIST_MAPS:
            t.hists[m].update({(lo, hi): int(n) for lo, hi, n in doc["hists"][m]})
        t.opens = [(int(ns), str(c), str(p), int(n)) for ns, c, p, n in doc["opens"]]
        return t

    def close(self) -> None:
        """The last tick's sums (its interval ends with the trace)."""
        if len(self.sums[SUM_MAPS[0]]) < len(self.ticks):
            self._close_tick()

    def _close_tick(self) -> None:
        for m, v in zip(SUM_MAPS, self._cur, strict=True):
            self.sums[m].append(float(v))
        self._cur = [0.0] * len(SUM_MAPS)

    def _marker(self, data: str) -> None:
        word, _, rest = data.strip().partition(" ")
        if word not in MARKERS:
            return
        try:
            ns = int(rest.split()[0])
        except (ValueError, IndexError):
            ns = -1
        if not 0 <= ns < 2**63:  # boot-clock nanoseconds fit int64
            self.skips.skip("bad_marker")
            return
        if word == "tick" and not self._totals:
            if self.ticks:
                self._close_tick()
            self.ticks.append(ns)
        elif not self.ticks:
            self.start = ns
        self._totals = self._totals or word == "totals"
        self._ended = self._ended or word == "end"

    def _map(self, name: str, value: object) -> None:
        try:
            if name == "io" and isinstance(value, dict):
                adds = [(int(key), _num(v)) for key, v in value.items()]
                if any(not 0 <= k < len(SUM_MAPS) for k, _ in adds):
                    raise IndexError(name)
                for k, v in adds:
                    self._cur[k] += v
            elif name in SUM_MAPS:
                total = _num(value) if not isinstance(value, dict) else 0.0
                for comm, v in (value.items() if isinstance(value, dict) else ()):
                    total += _num(v)
                    self.by_comm[name][comm] += int(_num(v))
                if not self._totals:  # a trace of the per-tick shape
                    self._cur[SUM_MAPS.index(name)] += total
            elif name in HIST_MAPS and isinstance(value, list):
                for b in value:
                    self.hists[name][(b.get("min"), b.get("max"))] += int(b.get("count", 0))
            elif name == "ckpt_open" and isinstance(value, dict):
                for key, v in value.items():
                    parts = split_key(key, 2)
                    comm, path = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
                    self.opens.append((self.ticks[-1], comm, path, int(_num(v))))
            else:
                self.skips.skip("unknown_map")
        except (ValueError, TypeError, AttributeError, IndexError):
            self.skips.skip("bad_map_value")


def write_compact(jsonl: Path) -> None:
    """Read the verbatim trace `jsonl` (line by line, as the analysis would) and write its compact form beside
    it (`COMPACT`; each through a temporary file and a rename, the totals last)."""
    skips = CountedSkips()
    trace = Trace(skips)
    lines = 0
    with open(jsonl, "rb") as fh:
        for raw in fh:
            lines += 1
            if not raw.endswith(b"\n"):  # a last line cut short: not read, as the analysis does not
                skips.skip("truncated_last_line")
                break
            trace.line(raw[:-1].rstrip(b"\r"))
    trace.close()
    ticks, totals = (jsonl.with_name(name) for name in COMPACT)
    records.write(ticks, TICK_COLUMNS, ([ns, *(trace.sums[m][i] for m in SUM_MAPS)]
                                        for i, ns in enumerate(trace.ticks)))
    write_text_atomic(totals, json.dumps({**trace.totals(), "lines": lines, "skipped": dict(skips.counts)}))
