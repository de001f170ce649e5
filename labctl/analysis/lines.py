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

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (summary.json `parse`)."""
        return {"source": self.source, "path": self.path, "lines": self.lines, "records": self.records,
                "skipped": dict(sorted(self.skipped.items()))}


BLOCK = 8 << 20  # bytes read at a time


def iter_lines(path: Path, stats: ParseStats) -> Iterator[bytes]:
    """Complete lines of `path` (without the newline); an unterminated last line is counted as truncated."""
    rest = b""
    with open_raw(path) as fh:
        while block := fh.read(BLOCK):
            lines = (rest + block).split(b"\n")
            rest = lines.pop()  # after the last newline: the start of a line the next block ends
            stats.lines += len(lines)
            for raw in lines:
                yield raw.rstrip(b"\r")
    if rest:
        stats.lines += 1
        stats.skip("truncated_last_line")


def iter_text(path: Path, stats: ParseStats) -> Iterator[str]:
    """Like `iter_lines`, decoded as UTF-8 (undecodable bytes replaced)."""
    for raw in iter_lines(path, stats):
        yield raw.decode("utf-8", "replace")
