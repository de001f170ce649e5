"""Line reading and parse accounting shared by every parser."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from labctl.analysis.rawfile import open_raw


@dataclass
class ParseStats:
    """What one parser saw: lines read, records emitted, lines skipped by reason."""

    source: str
    path: str = ""
    lines: int = 0
    records: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str, n: int = 1) -> None:
        """Count `n` skipped lines (or snapshots, blocks) for `reason`."""
        if n > 0:
            self.skipped[reason] += n

    def add(self, other: ParseStats) -> None:
        """Count another part's lines, records and skips in (a file parsed in ranges)."""
        self.lines += other.lines
        self.records += other.records
        self.skipped.update(other.skipped)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (summary.json `parse`)."""
        return {"source": self.source, "path": self.path, "lines": self.lines, "records": self.records,
                "skipped": dict(sorted(self.skipped.items()))}


def iter_lines(path: Path, stats: ParseStats) -> Iterator[bytes]:
    """Complete lines of `path` (without the newline); an unterminated last line is counted as truncated."""
    with open_raw(path) as fh:
        for raw in fh:
            stats.lines += 1
            if raw[-1:] != b"\n":
                stats.skip("truncated_last_line")
                return
            yield raw.rstrip(b"\r\n")


BLOCK = 8 << 20


class BlockReader:
    """Bytes [start, end) of a file, a block at a time, read into one reused buffer (so no fresh memory, and
    no page faults, per block). The caller says how much of each block it used; the rest starts the next one.

        with BlockReader(path) as reader:
            used = 0
            while (view := reader.next(used)) is not None:
                used = ...  # bytes of `view` taken (e.g. to its last newline); `reader.final`: the last
            reader.rest     # the bytes never used

    A view is valid until the next call of `next`.
    """

    def __init__(self, path: Path, start: int = 0, end: int | None = None, size: int | None = None) -> None:
        self.fh = open_raw(path, buffering=0)  # closed by __exit__
        self.fh.seek(start)
        self.left = float("inf") if end is None else max(end - start, 0)
        self.buf = bytearray(size or BLOCK)
        self.n = 0  # valid bytes in buf
        self.final = False  # the current block reaches the end of the range
        self.rest = b""

    def __enter__(self) -> BlockReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.fh.close()

    def next(self, used: int) -> memoryview | None:
        """Drop the first `used` bytes of the current block and read on: the next block, or None when the
        range is exhausted (`rest` then holds the bytes never used)."""
        if self.final:
            self.rest = bytes(self.buf[used:self.n])
            return None
        keep = self.n - used
        if keep == len(self.buf):  # one record longer than the buffer: a larger one (old views stay valid)
            grown = bytearray(2 * len(self.buf))
            grown[:keep] = self.buf
            self.buf = grown
        elif keep and used:
            self.buf[:keep] = self.buf[used:self.n]
        self.n = keep
        with memoryview(self.buf) as view:
            while self.n < len(self.buf) and self.left > 0:
                got = self.fh.readinto(view[self.n:self.n + int(min(len(self.buf) - self.n, self.left))])
                if not got:
                    self.left = 0
                    break
                self.n += got
                self.left -= got
        self.final = self.left <= 0
        return memoryview(self.buf)[:self.n]

    def line_end(self, end: int) -> int:
        """Where the complete lines of the current block's first `end` bytes end (0: there are none)."""
        return self.buf.rfind(b"\n", 0, end) + 1


def line_blocks(path: Path, stats: ParseStats, start: int = 0, end: int | None = None,
                size: int | None = None) -> Iterator[tuple[bytearray, int]]:
    """Bytes [start, end) of `path` (end None: to its end) as (buffer, n): the buffer's first n bytes are
    complete lines, newlines included (the buffer is reused: valid until the next block); an unterminated
    final line is counted and skipped as truncated. The lines yielded are not counted."""
    with BlockReader(path, start, end, size) as reader:
        used = 0
        while reader.next(used) is not None:
            used = reader.line_end(reader.n)
            yield reader.buf, used
    if reader.rest:
        stats.lines += 1
        stats.skip("truncated_last_line")


def iter_text(path: Path, stats: ParseStats) -> Iterator[str]:
    """Like `iter_lines`, decoded as UTF-8 (undecodable bytes replaced)."""
    for raw in iter_lines(path, stats):
        yield raw.decode("utf-8", "replace")
