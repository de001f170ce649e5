"""Analysis throughput and memory of `labctl report` on a realistic day-long bundle.

    python -m benchmarks.report_throughput [--scale 1.0] [--dir DIR] [--keep]

At scale 1 the bundle is 24 h of one host at the shipped rates: 8 GPUs in dmon every 10 s, mountstats and
nfsiostat every 1 s, the shipped bpftrace program's output (a tick and its @io line per second, the run's
totals at the end), each verbatim and as the agent's compact record, and the trainer log, all written through
labctl.formats by benchmarks/synthbundle.py; --scale shrinks the day (0.01 for a smoke test). It prints,
measured in this run: the time `wc -l` takes to read the bundle's raw files and the time of the analysis
(timeline.parquet + summary.json, in a child process run with labctl's bytecode compiled beforehand, as an
install has it), each the best of 2 runs on a warm cache after the new bundle is flushed to disk; the
analysis' peak memory (the PSS of its process tree, sampled every 0.1 s in a third, untimed run); and their
ratios against the targets (≤ 5× wc -l, ≤ 1 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.installed import compile_labctl
from benchmarks.synthbundle import SynthCheckpoint, SynthSpec, write_run

DAY = 86_400
TARGET_RATIO, TARGET_RSS_MB = 5.0, 1024.0


def build(run: Path, scale: float) -> list[Path]:
    """Write the benchmark bundle; returns its raw files (what `wc -l` reads)."""
    seconds = max(int(DAY * scale), 600)
    every = max(seconds // 24, 120)
    checkpoints = [SynthCheckpoint(o, 20, 2_000_000_000) for o in range(every, seconds - 60, every)]
    spec = SynthSpec(warmup_s=0, train_s=seconds - 10, cooldown_s=10, dataset_read_s=min(600, seconds // 4),
                     checkpoints=checkpoints, gpus=8, dmon_every_s=10, epochs=3,
                     nconnect=16)  # the lab's mount option: 16 `xprt:` lines per mountstats snapshot
    write_run(run, spec)
    raw = run / "raw" / spec.hosts[0]
    return sorted(p for p in raw.iterdir() if p.suffix in (".log", ".f64", ".jsonl"))


def time_wc(files: list[Path]) -> float:
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        subprocess.run(["wc", "-l", *map(str, files)], check=True, capture_output=True)
        best = min(best, time.perf_counter() - t)
    return best


def _tree(root: int) -> list[int]:
    """`root` and its descendants, from /proc."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, pp in parent.items() if pp in frontier]
        tree += frontier
    return tree


def _pss_mb(pids: list[int]) -> float:
    """Sum of the processes' proportional set sizes (shared pages counted once), MB."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total / 1024.0


EXIT = "from labctl.leave import leave; leave(0)"  # as the `labctl` command ends
FLOOR = "import numpy, pyarrow, pyarrow.parquet; " + EXIT


def time_floor() -> float:
    """Seconds of a child that only starts the interpreter, imports what the analysis cannot do without
    (numpy, pyarrow with its Parquet module) and exits as the analysis does: the part of the
    analysis' time that does not depend on the bundle (best of 2)."""
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", FLOOR], check=True, capture_output=True)
        best = min(best, time.perf_counter() - t)
    return best


def time_analysis(run: Path, sample_memory: bool) -> tuple[float, float, float, dict]:
    """Seconds of a child process running the analysis; with `sample_memory`, its peak memory (MB) as the sum
    of the PSS of the whole process tree (the parser's worker processes included; sampled every 0.1 s, which
    takes CPU from the child: such a run is not one of the timed ones), else 0; the largest single process's
    peak RSS (MB); and its summary."""
    # the analysis, its result printed, and the exit as the `labctl` command makes it (labctl.leave)
    code = ("import sys, json; from pathlib import Path;"
            "from labctl.report.analyse import analyse; s = analyse(Path(sys.argv[1])).summary;"
            "print(json.dumps({'checkpoints': len(s['checkpoints']), 'rows': s['timeline_rows']}));"
            f"{EXIT}")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    peak, done = [0.0], threading.Event()

    def sample() -> None:  # beside the wait, so the time is the child's, not the sampling period's
        while not done.is_set():
            peak[0] = max(peak[0], _pss_mb(_tree(proc.pid)))
            done.wait(0.1)

    sampler = threading.Thread(target=sample)
    if sample_memory:
        sampler.start()
    out, err = proc.communicate()
    elapsed = time.perf_counter() - t
    done.set()
    if sample_memory:
        sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"the analysis failed ({proc.returncode}): {err[-1500:]}")
    rss = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024.0
    return elapsed, peak[0], rss, json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.report_throughput",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="1.0 = 24 h at the shipped rates (default)")
    ap.add_argument("--dir", type=Path, help="where to build the bundle (default: a temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the generated bundle")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args(argv)
    root = args.dir or Path(tempfile.mkdtemp(prefix="labctl-bench-"))
    run = root / "bench-run"
    try:
        t = time.perf_counter()
        files = build(run, args.scale)
        os.sync()  # the bundle on disk before anything is timed: no writeback during either side
        gen = time.perf_counter() - t
        size = sum(f.stat().st_size for f in files)
        wc = time_wc(files)
        compile_labctl()  # the children start as an installed labctl's would (benchmarks/installed.py)
        floor = time_floor()
        runs = [time_analysis(run, sample_memory=False) for _ in range(2)]
        took, result = min(r[0] for r in runs), runs[-1][3]
        _, peak, rss, _ = time_analysis(run, sample_memory=True)
        ratio = took / wc
        print(f"scale {args.scale}: {size / 1e6:,.1f} MB in {len(files)} files (generated in {gen:.1f} s)")
        print(f"wc -l:    {wc:8.3f} s")
        print(f"analysis: {took:8.3f} s  ({size / 1e6 / took:,.1f} MB/s), {result['rows']:,} timeline rows, "
              f"{result['checkpoints']} checkpoints")
        print(f"ratio analysis / wc -l: {ratio:.1f}x (target ≤ {TARGET_RATIO:g}x)")
        print(f"floor:    {floor:8.3f} s  (interpreter start, numpy and pyarrow imports, exit: "
              f"{floor / wc:.1f}x wc -l); the analysis beyond it: {took - floor:.3f} s = "
              f"{(took - floor) / wc:.1f}x wc -l")
        print(f"peak memory: {peak:,.0f} MB (target ≤ {TARGET_RSS_MB:,.0f} MB), the sum of the process "
              f"tree's PSS; largest single process RSS {rss:,.0f} MB")
        ok = ratio <= TARGET_RATIO and peak <= TARGET_RSS_MB
        print("targets: " + ("met" if ok else "NOT met"))
        return 1 if args.check and not ok else 0
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
