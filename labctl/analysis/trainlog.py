"""H2O LLM Studio's `logs.log` (`%(asctime)s - %(levelname)s: %(message)s`, tqdm bars via the logger)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from labctl.analysis.clock import HostClock, naive_epoch
from labctl.analysis.lines import ParseStats, iter_text
from labctl.analysis.series import SeriesStore
from labctl.formats.trainlog import BAR, EPOCH, EVENTS, PREFIX, SAVE

SOURCE = "trainer"
@dataclass
class TrainLog:
    """Events of one trainer log on the controller clock."""

    stats: ParseStats
    saves: list[dict[str, object]] = field(default_factory=list)  # ts, next_ts, text
    events: list[dict[str, object]] = field(default_factory=list)  # ts, kind, text
    train_start: float | None = None
    train_end: float | None = None
    epochs: int | None = None
    last_line_ts: float | None = None


def parse_trainlog(path: Path, host: str, store: SeriesStore, clock: HostClock) -> TrainLog:
    """Parse a trainer log into `train.*` series and checkpoint-save / lifecycle events."""
    stats = ParseStats(SOURCE, str(path))
    out = TrainLog(stats)
    epoch = 1
    for line in iter_text(path, stats):
        m = PREFIX.match(line)
        if m is None:
            if line.strip():
                stats.skip("no_prefix")  # tracebacks, tqdm carriage-return fragments
            continue
        y, mo, d, hh, mi, ss, ms = (int(x) for x in m.groups()[:7])
        ts = clock.local(naive_epoch(y, mo, d, hh, mi, ss + ms / 1000))
        msg = m[9]
        if out.saves and out.saves[-1]["next_ts"] is None:
            out.saves[-1]["next_ts"] = ts
        out.last_line_ts = ts
        if (e := EPOCH.search(msg)) is not None:
            epoch, out.epochs = int(e[1]), int(e[2])
            if out.train_start is None:
                out.train_start = ts
            store.add(host, -1, SOURCE, "train.epoch", "count", ts, float(epoch - 1))
            stats.records += 1
            continue
        if (b := BAR.search(msg)) is not None:
            if b["desc"].startswith("train loss"):
                n, total = int(b["n"]), max(int(b["total"]), 1)
                if out.train_start is None:
                    out.train_start = ts
                out.train_end = ts
                store.add(host, -1, SOURCE, "train.epoch", "count", ts, epoch - 1 + n / total)
                store.add(host, -1, SOURCE, "train.step", "count", ts, float((epoch - 1) * total + n))
                stats.records += 2
                if b["loss"] and b["loss"] != "nan":
                    store.add(host, -1, SOURCE, "train.loss", "1", ts, float(b["loss"]))
                    stats.records += 1
            continue
        if SAVE.search(msg) is not None:
            out.saves.append({"ts": ts, "next_ts": None, "text": msg})
            continue
        for needle, kind in EVENTS:
            if needle in msg:
                out.events.append({"ts": ts, "kind": kind, "text": msg[:200]})
                break
    return out
