"""What crosses a simulated NFS mount, per file, reported to the ONTAP simulator (`POST /_sim/nfs/io`).

The FUSE threads only add to an in-memory batch under a lock; a reporter thread sends the batch at most every
0.5 s (and once more at unmount) with a short timeout. When the simulator is slow, down or refuses a batch,
the batch is dropped and counted, and the FUSE log (the daemon's stderr) says so: the I/O itself never waits
for, or fails because of, the simulator. Ops are the NFS RPCs the bytes make (up to rsize/wsize bytes each,
per file and batch); latency is the microseconds the calls took.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

PERIOD_S = 0.5
POST_TIMEOUT_S = 2.0
FIELDS = tuple(f"{kind}_{unit}" for kind in ("read", "write", "other") for unit in ("ops", "bytes", "us"))
Post = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


class IoReporter:
    """Per-file read/write/other counters of one mount, sent in batches by `post`."""

    def __init__(self, post: Post, mount: dict[str, Any], rsize: int, wsize: int,
                 log: TextIO | None = None) -> None:
        self.post = post
        self.mount = mount  # directory, server, client, vers, pnfs: what every batch carries
        self.sizes = {"read": max(1, rsize), "write": max(1, wsize)}
        self.log = log or sys.stderr
        self.batch: dict[str, dict[str, int]] = {}
        self.sent = {"batches": 0, "ops": 0, "bytes": 0}
        self.dropped = {"batches": 0, "ops": 0, "bytes": 0}
        self._failing = False
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # the FUSE threads ---------------------------------------------------------------------------------------
    def _entry(self, path: str) -> dict[str, int]:
        return self.batch.setdefault(path or "/", dict.fromkeys(FIELDS, 0))

    def data(self, path: str, kind: str, nbytes: int, seconds: float) -> None:
        """`nbytes` read or written to `path` in `seconds`."""
        with self._lock:
            entry = self._entry(path)
            entry[f"{kind}_bytes"] += nbytes
            entry[f"{kind}_us"] += int(seconds * 1e6)

    def other(self, path: str, seconds: float) -> None:
        """One metadata operation on `path` that took `seconds`."""
        with self._lock:
            entry = self._entry(path)
            entry["other_ops"] += 1
            entry["other_us"] += int(seconds * 1e6)

    # sending ------------------------------------------------------------------------------------------------
    def _take(self) -> dict[str, dict[str, int]]:
        with self._lock:
            batch, self.batch = self.batch, {}
        for entry in batch.values():
            for kind, size in self.sizes.items():
                entry[f"{kind}_ops"] = -(-entry[f"{kind}_bytes"] // size)
        return batch

    def flush(self) -> bool:
        """Send what was counted since the last flush; False when it was dropped (or there was nothing)."""
        with self._send_lock:
            batch = self._take()
            if not batch:
                return False
            ops = sum(e["read_ops"] + e["write_ops"] + e["other_ops"] for e in batch.values())
            nbytes = sum(e["read_bytes"] + e["write_bytes"] for e in batch.values())
            try:
                status, answer = self.post({**self.mount, "files": batch})
                message = answer.get("error", {}).get("message", "")
                problem = "" if status < 300 else f"HTTP {status}: {message}"
            except Exception as exc:  # noqa: BLE001 - whatever the transport raises, the I/O goes on
                problem = f"{type(exc).__name__}: {exc}"
            if not problem:
                self._count(self.sent, ops, nbytes)
                if self._failing:
                    self._say(f"reaching the simulator again; dropped so far: {self._totals()}")
                self._failing = False
                return True
            self._count(self.dropped, ops, nbytes)
            if not self._failing:
                self._say(f"simulator unreachable or refusing ({problem}); dropping batches until it answers")
            self._failing = True
            return False

    @staticmethod
    def _count(totals: dict[str, int], ops: int, nbytes: int) -> None:
        totals["batches"] += 1
        totals["ops"] += ops
        totals["bytes"] += nbytes

    def _totals(self) -> str:
        d = self.dropped
        return f"{d['batches']} batches, {d['ops']} ops, {d['bytes']} bytes"

    def _say(self, message: str) -> None:
        print(f"nfsfuse: I/O report: {message}", file=self.log, flush=True)

    def start(self) -> None:
        """Send a batch every 0.5 s from a daemon thread."""

        def loop() -> None:
            while not self._stop.wait(PERIOD_S):
                self.flush()

        self._thread = threading.Thread(target=loop, name="io-report", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, send what is left, and log what was dropped (if anything)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=POST_TIMEOUT_S + 1)
        self.flush()
        if self.dropped["batches"]:
            self._say(f"at unmount: dropped {self._totals()} in all")
