"""`/proc/<pid>/mountstats` NFS entries, and per-interval rates from consecutive snapshots.

The bundle's `mountstats.log` holds one snapshot per sample: a line `#ts <epoch> <monotonic>` followed by the
mount's block verbatim. Counters are keyed by name, 8 or 9 per-op fields and 25 or 27 events are accepted,
unknown lines are ignored, and a decreasing `age:` or any negative delta starts a new baseline (no record).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from labctl.analysis.clock import HostClock
from labctl.analysis.lines import BlockReader, ParseStats
from labctl.analysis.native import scanner
from labctl.analysis.rawfile import open_raw
from labctl.analysis.series import Column, SeriesStore, joined

SOURCE = "mountstats"
MAX_DELTA = 2**63
MAX_BYTES_RATE = 1e12  # 1 TB/s per mount: anything above is a counter glitch, not traffic
OPS = (b"READ", b"WRITE", b"COMMIT", b"GETATTR", b"LOOKUP", b"OPEN", b"CLOSE", b"RENAME", b"ACCESS",
       b"LAYOUTGET", b"LAYOUTCOMMIT", b"LAYOUTRETURN", b"READDIR", b"SETATTR")
_DEVICE = re.compile(rb"^device (\S+) mounted on (\S+) with fstype (\S+)(?: statvers=(\S+))?")
_OCTAL = re.compile(r"\\([0-7]{3})")
_OP_NAME = re.compile(rb"^[A-Z][A-Z0-9_]*$")
EV_FSYNC, EV_PNFS_READ, EV_PNFS_WRITE = 15, 25, 26


def unescape(text: str) -> str:
    """Undo the kernel's octal escaping of device and mount names (`\\040` is a space)."""
    return _OCTAL.sub(lambda m: chr(int(m[1], 8)), text)


@dataclass
class MountEntry:
    """One `device … mounted on …` entry; only the parts labctl uses are kept."""

    device: str
    mount: str
    fstype: str
    statvers: str = ""
    opts: dict[str, str] = field(default_factory=dict)
    nfsv4: dict[str, str] = field(default_factory=dict)
    age: int | None = None
    events: list[int] = field(default_factory=list)
    bytes: list[int] = field(default_factory=list)
    xprts: list[tuple[str, list[int]]] = field(default_factory=list)
    ops: dict[str, list[int]] = field(default_factory=dict)

    @property
    def is_nfs(self) -> bool:
        return self.fstype.startswith("nfs")

    def complete(self) -> bool:
        """Has the counters an interval needs (a snapshot cut short lacks them)."""
        return len(self.bytes) == 8 and "READ" in self.ops and "WRITE" in self.ops


def _kv(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key:
            out[key.strip()] = value.strip()
    return out


def _ints(raw: bytes) -> list[int]:
    return [int(x) for x in raw.split()]


def parse_entries(lines: Iterable[bytes], stats: ParseStats) -> Iterator[MountEntry]:
    """Entries of a mountstats text (lines without newlines); malformed lines are counted, never fatal."""
    cur: MountEntry | None = None
    in_ops = False
    for line in lines:
        if line.startswith(b"device "):
            if cur is not None:
                yield cur
            m = _DEVICE.match(line)
            cur, in_ops = None, False
            if m is None:
                stats.skip("bad_device_line")
                continue
            dev, mnt = (unescape(x.decode("utf-8", "replace")) for x in (m[1], m[2]))
            cur = MountEntry(dev, mnt, m[3].decode(), (m[4] or b"").decode())
            continue
        if cur is None:
            continue
        s = line.strip()
        if not s:
            yield cur
            cur, in_ops = None, False
            continue
        try:
            name, sep, rest = s.partition(b": ")
            if in_ops or (sep and _OP_NAME.match(name)):  # op lines, with or without their marker line
                if not sep:
                    stats.skip("bad_op_line")
                elif name in OPS:
                    nums = _ints(rest)
                    if len(nums) < 8:
                        stats.skip("bad_op_line")
                    else:
                        cur.ops[name.decode()] = nums
            elif s.startswith(b"bytes:"):
                cur.bytes = _ints(s[6:])
            elif s.startswith(b"xprt:"):
                parts = s[5:].split()
                cur.xprts.append((parts[0].decode(), [int(x) for x in parts[1:]]))
            elif s.startswith(b"events:"):
                cur.events = _ints(s[7:])
            elif s.startswith(b"age:"):
                cur.age = int(s[4:])
            elif s.startswith(b"opts:"):
                cur.opts = _kv(s[5:].decode("utf-8", "replace"))
            elif s.startswith(b"nfsv4:"):
                cur.nfsv4 = _kv(s[6:].decode("utf-8", "replace"))
            elif s.startswith(b"per-op statistics"):
                in_ops = True
        except (ValueError, IndexError):
            stats.skip("bad_counter_line")
    if cur is not None:
        yield cur


# xprt field index of sends / backlog per protocol (statvers 1.1, after the protocol word)
_XPRT_SENDS = {"tcp": (5, 8), "rdma": (5, 8), "udp": (2, 5)}


def _xprt_sums(entry: MountEntry) -> tuple[int, int]:
    sends = bklog = 0
    for proto, nums in entry.xprts:
        i, j = _XPRT_SENDS.get(proto, (5, 8))
        if len(nums) > j:
            sends += nums[i]
            bklog += nums[j]
    return sends, bklog


def interval_metrics(e0: MountEntry, e1: MountEntry, dt: float,
                     stats: ParseStats) -> list[tuple[str, str, float]] | None:
    """(metric, unit, value) for the interval between two snapshots, or None when it must be dropped."""
    if e1.age is not None and e0.age is not None and e1.age < e0.age:
        stats.skip("counter_reset")
        return None
    db = [b - a for a, b in zip(e0.bytes, e1.bytes, strict=True)]
    if any(d < 0 for d in db):
        stats.skip("counter_reset")
        return None
    if any(d > MAX_DELTA for d in db) or max(db[4], db[5]) / dt > MAX_BYTES_RATE:
        stats.skip("absurd_delta")
        return None
    out: list[tuple[str, str, float]] = [
        ("nfs.read.bytes", "B", float(db[4])), ("nfs.write.bytes", "B", float(db[5])),
        ("nfs.read.bytes_rate", "B/s", db[4] / dt), ("nfs.write.bytes_rate", "B/s", db[5] / dt),
        ("nfs.app_read.bytes_rate", "B/s", (db[0] + db[2]) / dt),
        ("nfs.app_write.bytes_rate", "B/s", (db[1] + db[3]) / dt),
        ("nfs.mmap_read.bytes_rate", "B/s", max(0, db[4] - db[0] - db[2]) / dt),
    ]
    retrans = timeouts = errors = 0
    for name, v1 in e1.ops.items():
        v0 = e0.ops.get(name)
        if v0 is None:
            continue
        d = [b - a for a, b in zip(v0, v1, strict=False)]
        if d[0] < 0 or d[0] > MAX_DELTA:
            stats.skip("counter_reset")
            continue
        low = name.lower()
        out.append((f"nfs.{low}.ops_rate", "ops/s", d[0] / dt))
        if 0 <= d[1] - d[0] < MAX_DELTA:
            retrans += d[1] - d[0]
        timeouts += max(d[2], 0)
        if len(d) > 8 and 0 <= d[8] < MAX_DELTA:
            errors += d[8]
        if d[0] > 0 and name in ("READ", "WRITE", "COMMIT"):
            for idx, label in ((6, "rtt_ms"), (7, "exe_ms"), (5, "queue_ms")):
                if 0 <= d[idx] < MAX_DELTA:
                    out.append((f"nfs.{low}.{label}", "ms", d[idx] / d[0]))
                else:
                    stats.skip("absurd_delta")
    out += [("nfs.retrans", "count", float(retrans)), ("nfs.timeouts", "count", float(timeouts))]
    if any(len(v) > 8 for v in e1.ops.values()):
        out.append(("nfs.errors", "count", float(errors)))
    s0, b0 = _xprt_sums(e0)
    s1, b1 = _xprt_sums(e1)
    out.append(("nfs.xprt.count", "count", float(len(e1.xprts))))
    if len(e0.xprts) == len(e1.xprts) and s1 >= s0:
        out.append(("nfs.xprt.sends_rate", "ops/s", (s1 - s0) / dt))
        if s1 > s0 and b1 >= b0:
            out.append(("nfs.xprt.backlog_avg", "count", (b1 - b0) / (s1 - s0)))
    ev0, ev1 = e0.events, e1.events
    if len(ev0) == len(ev1) and len(ev1) > EV_FSYNC:
        out.append(("nfs.fsync_rate", "ops/s", max(0, ev1[EV_FSYNC] - ev0[EV_FSYNC]) / dt))
        if len(ev1) > EV_PNFS_WRITE:
            out.append(("nfs.pnfs.read_dispatch_rate", "ops/s",
                        max(0, ev1[EV_PNFS_READ] - ev0[EV_PNFS_READ]) / dt))
            out.append(("nfs.pnfs.write_dispatch_rate", "ops/s",
                        max(0, ev1[EV_PNFS_WRITE] - ev0[EV_PNFS_WRITE]) / dt))
    return out


@dataclass
class MountInfo:
    """The mount as the kernel reports it (effective options), from the first complete snapshot."""

    device: str
    mount: str
    fstype: str
    opts: dict[str, str]
    pnfs: str
    xprt_count: int

    def to_dict(self) -> dict[str, object]:
        return {"device": self.device, "mount": self.mount, "fstype": self.fstype, "opts": self.opts,
                "pnfs": self.pnfs, "xprt_count": self.xprt_count}


def _pick(entries: list[MountEntry], mount: str | None) -> MountEntry | None:
    nfs = [e for e in entries if e.is_nfs]
    if mount:
        nfs = [e for e in nfs if e.mount == mount] or nfs
    return nfs[0] if nfs else None


CHUNK = 4 << 20  # bytes per read
_OPS_RE = re.compile(rb"[ \t](" + b"|".join(OPS) + rb"): ([0-9 ]+)\n")
_XPRT_RE = re.compile(rb"\n\txprt:\t(\w+) ([0-9 ]+)(?=\n)")


def _snapshot_end(buf: bytearray, pos: int, end: int, n: int) -> int:
    """Where the snapshot at `pos` ends: at the next `\n#ts ` (which may straddle `end`), else at `end`."""
    k = buf.find(b"\n#ts ", pos, min(n, end + 4))
    return k if k >= 0 else end


def _lines_in(part: bytes) -> int:
    return part.count(b"\n") + (1 if part and not part.endswith(b"\n") else 0)


def _head(part: bytes, stats: ParseStats) -> tuple[float, float, bytes] | None:
    line, _, body = part.partition(b"\n")
    fields = line.split()
    try:
        epoch = float(fields[0])
        mono = float(fields[1]) if len(fields) > 1 else epoch
    except (ValueError, IndexError):
        stats.skip("bad_ts_line")
        stats.skip("outside_snapshot", body.count(b"\n"))
        return None
    return epoch, mono, body


def _fast_entry(body: bytes) -> MountEntry | None:
    """The single tab-formatted entry of a bundle snapshot without a line-by-line parse; None to fall back."""
    nl = body.find(b"\n")
    m = _DEVICE.match(body[:nl])
    ops_at = body.find(b"per-op statistics")
    if m is None or ops_at < 0:
        return None

    def field(key: bytes) -> bytes:
        i = body.index(key) + len(key)
        return body[i:body.index(b"\n", i)]

    try:
        dev, mnt = (unescape(x.decode("utf-8", "replace")) for x in (m[1], m[2]))
        e = MountEntry(dev, mnt, m[3].decode(), (m[4] or b"").decode())
        e.opts = _kv(field(b"\n\topts:\t").decode("utf-8", "replace"))
        e.age = int(field(b"\n\tage:\t"))
        e.events = _ints(field(b"\n\tevents:\t"))
        e.bytes = _ints(field(b"\n\tbytes:\t"))
        if b"\n\tnfsv4:\t" in body:
            e.nfsv4 = _kv(field(b"\n\tnfsv4:\t").decode("utf-8", "replace"))
        e.xprts = [(p.decode(), _ints(n)) for p, n in _XPRT_RE.findall(body, 0, ops_at)]
        e.ops = {name.decode(): _ints(nums) for name, nums in _OPS_RE.findall(body, ops_at)}
    except ValueError:
        return None
    if any(len(v) < 8 for v in e.ops.values()):
        return None  # the line-by-line parse counts such a line
    return e


def _entry(body: bytes, mount: str | None, stats: ParseStats) -> MountEntry | None:
    if body.startswith(b"device ") and body.count(b"\ndevice ") == 0:
        fast = _fast_entry(body)
        if fast is not None and fast.complete() and fast.is_nfs:
            return fast
    return _pick(list(parse_entries(body.split(b"\n"), stats)), mount)


@dataclass
class _Prev:
    """The last complete snapshot: its entry, or only its body while the compiled scanner holds it."""

    mono: float
    entry: MountEntry | None
    body: bytes


class _LogParse:
    """State of the parse of one log (or one range of it): its series are kept as columns."""

    def __init__(self, path: Path, mount: str | None) -> None:
        self.mount = mount
        self.stats = ParseStats(SOURCE, str(path))
        self.prev: _Prev | None = None
        self.info: MountInfo | None = None
        self.columns: dict[tuple[str, str], tuple[Column, Column]] = {}  # (metric, unit) -> times, values

    def _columns(self, metric: str, unit: str) -> tuple[Column, Column]:
        cols = self.columns.get((metric, unit))
        if cols is None:
            cols = self.columns[metric, unit] = (Column("d"), Column("d"))
        return cols

    def one(self, epoch: float, mono: float, body: bytes) -> None:
        """One snapshot against the previous complete one."""
        stats, prev = self.stats, self.prev
        entry = _entry(body, self.mount, stats)
        if entry is None or not entry.complete():
            stats.skip("incomplete_snapshot")
            return
        if self.info is None:
            self.info = MountInfo(entry.device, entry.mount, entry.fstype, entry.opts,
                                  entry.nfsv4.get("pnfs", ""), len(entry.xprts))
        if prev is not None:
            dt = mono - prev.mono
            if dt <= 0:
                stats.skip("bad_interval")
            else:
                prev_entry = prev.entry or _entry(prev.body, self.mount, stats)
                metrics = interval_metrics(prev_entry, entry, dt, stats)  # type: ignore[arg-type]
                if metrics is not None:
                    for metric, unit, value in [*metrics, ("nfs.interval_s", "s", dt)]:
                        times, values = self._columns(metric, unit)
                        times.append(epoch)  # host clock; corrected once the column is joined
                        values.append(value)
                    stats.records += len(metrics)
        self.prev = _Prev(mono, entry, body)

    def snapshots(self, scan: ModuleType | None, buf: bytearray, pos: int, end: int, n: int, *,
                  until_info: bool = False) -> None:
        """The snapshots in buf[pos:end] (each starts with `#ts `): runs of them through the compiled scanner
        once a complete snapshot is known, the others through `one`; with `until_info`, up to the first
        complete one."""
        while pos < end and not (until_info and self.info is not None):
            if scan is not None and self.prev is not None:
                pos = self._native(scan, buf, pos, end, n)
                if pos >= end:
                    return
            k = _snapshot_end(buf, pos, end, n)
            snap = _head(bytes(buf[pos + 4:k]), self.stats)
            if snap is not None:
                self.one(*snap)
            nxt = k + 1 if k < end else end
            self.stats.lines += buf.count(b"\n", pos, nxt)
            pos = nxt

    def _native(self, scan: ModuleType, buf: bytearray, pos: int, end: int, n: int) -> int:
        prev = self.prev
        assert prev is not None
        with memoryview(buf)[:n] as view:
            stop, (body, body_end, mono), cols, records, lines, skipped = scan.mountstats(
                view, pos, end, prev.mono, prev.body)
        for metric, unit, epochs, values in cols:
            times, column = self._columns(metric, unit)
            times.add_chunk(epochs)  # host epochs: the clock correction is applied to the joined column
            column.add_chunk(values)
        self.stats.records += records
        self.stats.lines += lines
        for reason, count in skipped.items():
            self.stats.skip(reason, count)
        if body >= 0:
            self.prev = _Prev(mono, None, bytes(buf[body:body_end]))
        return stop


def _regions(path: Path, stats: ParseStats, start: int = 0, stop: int | None = None,
             size: int | None = None) -> Iterator[tuple[bytearray, int, int, int]]:
    """Per block of the log from `start` to `stop` (snapshot starts; None: the file's end): (buffer, where its
    first snapshot starts, where its complete snapshots end, bytes in the buffer); lines counted, text before
    the file's first snapshot and an unterminated last line skipped."""
    at_start = start == 0
    until = None if stop is None else stop + 4  # with the next snapshot's "#ts "
    with BlockReader(path, start, until, size or CHUNK) as reader:
        used = 0
        while reader.next(used) is not None:
            buf, n = reader.buf, reader.n
            if reader.final and stop is None:  # the snapshots left are complete; an unterminated line is not
                end = reader.line_end(n)
                if end < n:
                    stats.lines += 1
                    stats.skip("truncated_last_line")
            else:  # complete snapshots: up to where the last one begins
                end = buf.rfind(b"\n#ts ", 0, n) + 1
            used = end
            pos = 0
            if at_start and end:
                at_start = False
                if not buf.startswith(b"#ts "):  # text before the first snapshot
                    k = _snapshot_end(buf, 0, end, n)
                    stats.skip("outside_snapshot", _lines_in(bytes(buf[:k])))
                    pos = k + 1 if k < end else end
                    stats.lines += buf.count(b"\n", 0, pos)
            yield buf, pos, end, n  # the snapshots' lines are counted as they are parsed


PARALLEL_MIN = 64 << 20  # logs above this are split at snapshots and parsed by two threads (with the scanner)
WINDOW = 1 << 20  # how far past a nominal split point a snapshot to split after is looked for


def _split(path: Path, mount: str | None) -> tuple[int, _Prev] | None:
    """A snapshot start near the middle of the log whose previous snapshot is complete (the second half then
    starts from it, as a whole parse would), or None."""
    size = path.stat().st_size
    with open_raw(path) as fh:
        fh.seek(size // 2)
        window = fh.read(WINDOW)
    seps = [m.start() for m in re.finditer(rb"\n#ts ", window)]
    for a, b in zip(seps, seps[1:], strict=False):  # a snapshot window[a+1:b], complete, then one at b+1
        snap = _head(window[a + 5:b], ParseStats(SOURCE))
        if snap is None:
            continue
        entry = _entry(snap[2], mount, ParseStats(SOURCE))
        if entry is not None and entry.complete():
            return size // 2 + b + 1, _Prev(snap[1], entry, snap[2])
    return None


def _parse_range(path: Path, mount: str | None, start: int, stop: int | None,
                 prev: _Prev | None) -> _LogParse:
    state = _LogParse(path, mount)
    state.prev = prev
    scan = scanner()
    for buf, pos, end, n in _regions(path, state.stats, start, stop):
        state.snapshots(scan, buf, pos, end, n)
    return state


def parse_mountstats_log(path: Path, host: str, store: SeriesStore, clock: HostClock, *,
                         mount: str | None = None) -> tuple[ParseStats, MountInfo | None]:
    """Parse a bundle `mountstats.log` into per-interval `nfs.*` series (timestamp = end of interval).

    With the compiled scanner, snapshots after the first complete one go to it; it computes what
    `interval_metrics` would and leaves any snapshot it cannot read exactly to the code here. A log above
    64 MiB is then split in two at a snapshot that follows a complete one; the halves are parsed by two
    threads (the scanner runs without the GIL) and joined."""
    cut = _split(path, mount) if scanner() is not None and path.stat().st_size >= PARALLEL_MIN else None
    if cut is None:
        parts = [_parse_range(path, mount, 0, None, None)]
    else:
        with ThreadPoolExecutor(2) as pool:
            jobs = [pool.submit(_parse_range, path, mount, 0, cut[0], None),
                    pool.submit(_parse_range, path, mount, cut[0], None, cut[1])]
            parts = [job.result() for job in jobs]
    stats = ParseStats(SOURCE, str(path))
    columns: dict[tuple[str, str], list[tuple[Column, Column]]] = {}
    for part in parts:
        stats.add(part.stats)
        for key, cols in part.columns.items():
            columns.setdefault(key, []).append(cols)
    for (metric, unit), cols in columns.items():
        times, values = clock.host_in_place(joined([t for t, _ in cols])), joined([v for _, v in cols])
        store.extend(host, -1, SOURCE, metric, unit, times, values)
    return stats, parts[0].info


def first_mount_info(path: Path, mount: str | None = None) -> MountInfo | None:
    """The mount as the log's first complete snapshot shows it (what `parse_mountstats_log` returns), without
    reading the rest."""
    state = _LogParse(path, mount)
    for buf, pos, end, n in _regions(path, state.stats, size=64 << 10):  # one snapshot is wanted
        state.snapshots(None, buf, pos, end, n, until_info=True)
        if state.info is not None:
            break
    return state.info
