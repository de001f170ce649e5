#!/usr/bin/env python3
"""labctl's DLIO-style emulated trainer (stdlib only; shipped to GPU hosts next to the agent).

It behaves, I/O-wise, like an LLM Studio fine-tune: it reads the data set, spends "compute" time per step
(the GPU is busy), writes `<output_dir>/checkpoint.pth` of the model's real size at each evaluation
(write + fsync; the GPU is idle meanwhile) and logs in LLM Studio's format (logs.log + stderr). At the end it
writes LLM Studio's finished flag, `flags.json {"status": "finished"}`.

Usage: emulator.py SPEC.json   (keys: see `Spec`)
On a simulated host (`$LABCTL_SIM_HOST_ROOT` set) it keeps `$LABCTL_SIM_HOST_ROOT/gpu/activity.json` up to
date for the `nvidia-smi` shim.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from labctl.fileops import write_json_atomic

log = logging.getLogger("labctl.emulator")

SUMMARY_TAG = "labctl-emulator:"


@dataclass
class Spec:
    """What to emulate (written by the controller as JSON)."""

    output_dir: str
    dataset_path: str
    experiment_name: str = "reference"
    backbone: str = "h2oai/h2ogpt-4096-llama2-13b"
    backbone_dtype: str = "int4"
    epochs: int = 3
    steps_per_epoch: int = 40
    step_compute_s: float = 0.5
    read_bytes_per_step: int = 1 << 20
    startup_s: float = 2.0
    validation_s: float = 2.0
    checkpoint_bytes: int = 1 << 20
    write_chunk_bytes: int = 16 << 20
    dataset_bytes: int = 64 << 20
    evaluation_epochs: float = 1.0
    save_checkpoint: str = "best"
    evaluate_before_training: bool = False
    metric: str = "Perplexity"
    gpus: int = 1
    loader_workers: int = 0
    gpu_mem_mib: int = 20480
    seed: int = 42
    activity_path: str | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: str) -> Spec:
        data = json.loads(Path(path).read_text())
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def _set_comm(name: bytes) -> None:
    """Name this process like PyTorch names its DataLoader workers (best effort, Linux prctl)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, name, 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


class Loader:
    """Forked data-loader worker processes (comm `pt_data_worker`) that read the data set for the trainer."""

    def __init__(self, path: str, workers: int) -> None:
        self.workers: list[tuple[int, int, int]] = []  # (pid, request fd, response fd)
        for _ in range(workers):
            req_r, req_w = os.pipe()
            resp_r, resp_w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the worker: only os-level calls after fork
                os.close(req_w)
                os.close(resp_r)
                for _, other_req, other_resp in self.workers:  # else earlier workers never see EOF
                    os.close(other_req)
                    os.close(other_resp)
                _set_comm(b"pt_data_worker")
                self._serve(path, req_r, resp_w)
                os._exit(0)
            os.close(req_r)
            os.close(resp_w)
            self.workers.append((pid, req_w, resp_r))

    @staticmethod
    def _serve(path: str, req: int, resp: int) -> None:
        fd = os.open(path, os.O_RDONLY)
        size = os.fstat(fd).st_size
        buf = b""
        while True:
            while b"\n" not in buf:
                chunk = os.read(req, 64)
                if not chunk:
                    return
                buf += chunk
            line, buf = buf.split(b"\n", 1)
            offset, want = (int(x) for x in line.split())
            got = 0
            while got < want and size:
                off = (offset + got) % size
                data = os.pread(fd, min(want - got, 1 << 20, size - off), off)
                if not data:
                    break
                got += len(data)
            os.write(resp, b"%d\n" % got)

    def read(self, offset: int, want: int) -> int:
        """Read `want` bytes from `offset` (wrapping), split across the workers; bytes read."""
        n = len(self.workers)
        share = -(-want // n)
        for i, (_, req, _) in enumerate(self.workers):
            os.write(req, b"%d %d\n" % (offset + i * share, max(0, min(share, want - i * share))))
        total = 0
        for _, _, resp in self.workers:
            line = b""
            while not line.endswith(b"\n"):
                chunk = os.read(resp, 64)
                if not chunk:
                    raise RuntimeError("a data-loader worker died")
                line += chunk
            total += int(line)
        return total

    def close(self) -> None:
        for pid, req, resp in self.workers:
            os.close(req)
            os.close(resp)
            os.waitpid(pid, 0)
        self.workers = []


class GpuActivity:
    """Cumulative busy time per emulated GPU, published to activity.json (atomic rename)."""

    def __init__(self, path: Path | None, gpus: int) -> None:
        self.path, self.gpus = path, gpus
        self.busy_total = 0.0
        self.busy_since: float | None = None
        self.mem_mib = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.publish()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.4):
            self.publish()

    def busy_seconds(self) -> float:
        with self._lock:
            extra = time.monotonic() - self.busy_since if self.busy_since is not None else 0.0
            return self.busy_total + extra

    def set_busy(self, busy: bool) -> None:
        with self._lock:
            now = time.monotonic()
            if busy and self.busy_since is None:
                self.busy_since = now
            elif not busy and self.busy_since is not None:
                self.busy_total += now - self.busy_since
                self.busy_since = None
        self.publish()

    def publish(self) -> None:
        if self.path is None:
            return
        busy = round(self.busy_seconds(), 3)
        doc = {
            "t": round(time.time(), 3),
            "gpus": self.gpus,
            "busy_seconds": [busy] * self.gpus,
            "mem_used_mib": [self.mem_mib] * self.gpus,
            "pid": os.getpid(),
        }
        with contextlib.suppress(OSError):
            write_json_atomic(self.path, doc)

    def stop(self) -> None:
        self._stop.set()
        self.set_busy(False)


def fmt_interval(seconds: float) -> str:
    """tqdm's elapsed/remaining format: MM:SS, or H:MM:SS past an hour."""
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def fmt_bar(desc: str, n: int, total: int, elapsed: float) -> str:
    """One tqdm line as LLM Studio logs it (ascii=True, 10-wide bar)."""
    frac = n / total if total else 0.0
    filled = frac * 10
    full = int(filled)
    bar = "#" * full
    if full < 10:
        digit = int((filled - full) * 10)
        bar += (str(digit) if digit else " ") + " " * (9 - full)
    if n and elapsed > 0:
        rate = n / elapsed
        rate_s = f"{rate:.2f}it/s" if rate >= 1 else f"{1 / rate:.2f}s/it"
        remaining = fmt_interval((total - n) / rate)
    else:
        rate_s, remaining = "?it/s", "?"
    return f"{desc}: {frac * 100:3.0f}%|{bar}| {n}/{total} [{fmt_interval(elapsed)}<{remaining}, {rate_s}]"


class Emulator:
    """One emulated fine-tune."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.out = Path(spec.output_dir)
        root = os.environ.get("LABCTL_SIM_HOST_ROOT")
        path = spec.activity_path or (str(Path(root) / "gpu" / "activity.json") if root else None)
        self.gpu = GpuActivity(Path(path) if path else None, spec.gpus)
        self.bytes_read = 0
        self.bytes_written = 0
        self.checkpoints = 0
        self._buf = memoryview(os.urandom(min(spec.write_chunk_bytes, max(spec.checkpoint_bytes, 1))))
        self._data_fd = -1
        self._data_size = 0
        self._data_off = 0
        self.loader: Loader | None = None

    # -- phases -----------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        path = Path(self.spec.dataset_path)
        if not path.exists():
            log.info(
                f"{SUMMARY_TAG} no data set at {path}; generating {self.spec.dataset_bytes} synthetic bytes"
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            self._write_file(path, self.spec.dataset_bytes, fsync=True)
        self._data_fd = os.open(path, os.O_RDONLY)
        self._data_size = os.fstat(self._data_fd).st_size
        if self.spec.loader_workers > 0 and self._data_size:
            self.loader = Loader(str(path), self.spec.loader_workers)

    def read_step(self) -> None:
        want = self.spec.read_bytes_per_step
        if not want or not self._data_size:
            return
        if self.loader is not None:
            got = self.loader.read(self._data_off, want)
            self._data_off = (self._data_off + got) % self._data_size
            self.bytes_read += got
            return
        while want > 0:
            if self._data_off >= self._data_size:
                self._data_off = 0
            chunk = os.pread(
                self._data_fd, min(want, 1 << 20, self._data_size - self._data_off), self._data_off
            )
            if not chunk:
                self._data_off = 0
                continue
            self._data_off += len(chunk)
            self.bytes_read += len(chunk)
            want -= len(chunk)

    def compute(self, seconds: float) -> None:
        self.gpu.set_busy(True)
        time.sleep(seconds)
        self.gpu.set_busy(False)

    def _write_file(self, path: Path, size: int, *, fsync: bool) -> int:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        written = 0
        try:
            buf = self._buf
            while written < size:
                n = os.write(fd, buf[: min(len(buf), size - written)])
                written += n
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        self.bytes_written += written
        return written

    def save_checkpoint(self) -> None:
        start = time.monotonic()
        self._write_file(self.out / "checkpoint.pth", self.spec.checkpoint_bytes, fsync=True)
        took = time.monotonic() - start
        self.checkpoints += 1
        rate = self.spec.checkpoint_bytes / took / 1e6 if took > 0 else float("inf")
        log.info(
            f"{SUMMARY_TAG} checkpoint {self.checkpoints} {self.spec.checkpoint_bytes} bytes "
            f"in {took:.3f} s ({rate:.1f} MB/s)"
        )

    # -- the run ----------------------------------------------------------------------------------
    def run(self) -> int:
        s = self.spec
        t0 = time.monotonic()
        self.out.mkdir(parents=True, exist_ok=True)
        log.info("Problem Type: text_causal_language_modeling")
        log.info(f"Global random seed: {s.seed}")
        log.info("Preparing the data...")
        self.prepare_data()  # forks the loader workers: before any thread starts
        self.gpu.start()
        log.info("Preparing train and validation data")
        log.info(f"Using {s.backbone_dtype} for backbone")
        log.info(f"Loading {s.backbone}. This may take a while.")
        time.sleep(s.startup_s)
        self.gpu.mem_mib = s.gpu_mem_mib
        self.gpu.publish()
        log.info(f"Loaded {s.backbone}.")
        free = _free_mb(self.out)
        log.info(
            f"Enough space available for saving model weights.Required space: "
            f"{s.checkpoint_bytes * 1.03 / 2**20:.2f}MB, Available space: {free:.2f}MB."
        )
        eval_step = max(int(s.steps_per_epoch * s.evaluation_epochs), 1)
        update_every = max(s.steps_per_epoch // 20, 1)
        best = math.inf
        loss = 2.5
        itr = 0
        if s.evaluate_before_training:
            best = self.evaluate(loss, best, itr)
        for epoch in range(1, s.epochs + 1):
            log.info(f"Training Epoch: {epoch} / {s.epochs}")
            epoch_start = time.monotonic()
            losses: list[float] = []
            log.info(fmt_bar("train loss", 0, s.steps_per_epoch, 0.0))
            for n in range(1, s.steps_per_epoch + 1):
                itr += 1
                self.read_step()
                self.compute(s.step_compute_s)
                loss = max(0.05, loss * 0.985)
                losses.append(loss)
                if n % update_every == 0 or n == s.steps_per_epoch:
                    mean = sum(losses[-10:]) / len(losses[-10:])
                    log.info(
                        fmt_bar(
                            f"train loss: {mean:.2f}", n, s.steps_per_epoch, time.monotonic() - epoch_start
                        )
                    )
                if itr % eval_step == 0:
                    best = self.evaluate(loss, best, itr)
        os.close(self._data_fd)
        if self.loader is not None:
            self.loader.close()
        log.info(
            f"{SUMMARY_TAG} wrote {self.bytes_written} bytes in {self.checkpoints} checkpoints, "
            f"read {self.bytes_read} bytes"
        )
        self.gpu.stop()
        runtime = time.monotonic() - t0
        h, rem = divmod(int(runtime), 3600)
        (self.out / "flags.json").write_text(
            json.dumps({"status": "finished", "info": f"Runtime: {h:02d}:{rem // 60:02d}:{rem % 60:02d}"})
        )
        return 0

    def evaluate(self, loss: float, best: float, itr: int) -> float:
        s = self.spec
        log.info(f"Evaluation step: {itr}")
        if s.save_checkpoint == "last":
            log.info(f"Saving last model checkpoint to {self.out}")
            self.save_checkpoint()
        log.info("Starting validation inference")
        steps = 4
        start = time.monotonic()
        for n in range(1, steps + 1):
            self.compute(s.validation_s / steps)
            log.info(fmt_bar("validation progress", n, steps, time.monotonic() - start))
        val = math.exp(min(loss * 1.05, 50))
        log.info(f"Validation {s.metric}: {val:.5f}")
        log.info(f"Mean validation loss: {loss * 1.05:.5f}")
        if s.save_checkpoint == "best" and val < best:
            log.info(f"Saving best model checkpoint: val_{s.metric} {best:.5f} -> {val:.5f} to {self.out}")
            self.save_checkpoint()
            return val
        return min(best, val)


def _free_mb(path: Path) -> float:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize / 2**20


def setup_logging(out: Path) -> None:
    """LLM Studio's format, UTC, to stderr and <output_dir>/logs.log."""
    from labctl.formats.trainlog import LOG_FORMAT  # noqa: PLC0415 - shipped beside the agent

    fmt = logging.Formatter(LOG_FORMAT)
    fmt.converter = time.gmtime
    out.mkdir(parents=True, exist_ok=True)
    for handler in (logging.StreamHandler(sys.stderr), logging.FileHandler(out / "logs.log")):
        handler.setFormatter(fmt)
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: emulator.py SPEC.json", file=sys.stderr)
        return 2
    spec = Spec.load(args[0])
    setup_logging(Path(spec.output_dir))
    try:
        return Emulator(spec).run()
    except Exception:  # noqa: BLE001 - logged like LLM Studio does, then a failure exit
        log.exception("Exception occurred during the run:")
        return 1


if __name__ == "__main__":
    sys.exit(main())
