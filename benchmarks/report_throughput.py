# ruff: noqa: E501  (raw-format templates read best on one line)
"""Analysis throughput and memory of `labctl report` on a large synthetic bundle.

    python -m benchmarks.report_throughput [--scale 1.0] [--dir DIR] [--keep]

At scale 1 the bundle holds a 1 GB bpftrace event trace (ticks every ~0.1 s) plus 24 h of 1 s
mountstats and nfsiostat logs; --scale shrinks both (0.01 for a smoke test). It prints, measured in this run:
the time `wc -l` takes to read the same files and the time of the analysis (timeline.parquet + summary.json,
in a child process run with labctl's bytecode compiled beforehand, as an install has it), each the best of 2
runs on a warm cache after the new bundle is flushed to disk (so the kernel's writeback of 1.3 GB does not run
during either); the analysis' peak memory (the sum of the PSS of its whole process tree, worker processes
included, sampled every 0.1 s in a third run, untimed: the sampling takes CPU from the analysis); and their
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

import labctl
from benchmarks.synthbundle import SynthCheckpoint, SynthSpec, _Plan, write_run

DAY = 86_400
TRACE_BYTES = 1_000_000_000
COMMS = ("python", "pt_data_worker", "pt_autograd_0", "pt_autograd_1", "tokenizers", "torch_shm_mgr")
TARGET_RATIO, TARGET_RSS_MB = 5.0, 1024.0


def _bpftrace(d: Path, plan: _Plan, seconds: int, target_bytes: int) -> None:
    """A dense trace of io_by_second.bt records: ticks spread evenly over the run, ~1.06 kB each."""
    boot = 1_000_000_000_000
    (d / "bpftrace.meta.json").write_text(json.dumps({"realtime_minus_boottime": plan.t0 - boot / 1e9}))
    ticks = max(int(target_bytes / 1060), 1)
    step_ns = seconds * 1_000_000_000 // ticks
    hist = ", ".join(f'{{"min": {1 << k}, "max": {(1 << (k + 1)) - 1}, "count": {k * 3 + 1}}}' for k in range(12, 21))
    hist_r = f'{{"type": "hist", "data": {{"@read_size": [{hist}]}}}}\n'
    hist_w = '{"type": "hist", "data": {"@write_size": [{"min": 1024, "max": 2047, "count": 1}, {"min": 1048576, "max": 2097151, "count": 4}]}}\n'
    with (d / "bpftrace.jsonl").open("w") as fh:
        fh.write('{"type": "attached_probes", "data": {"probes": 26}}\n')
        fh.write(f'{{"type": "printf", "data": "start {boot}\\n"}}\n')
        for k in range(1, ticks + 1):
            ns = boot + k * step_ns
            sec = min(int(k * step_ns / 1e9), len(plan.write) - 1)
            frac = step_ns / 1e9
            r, w = int(plan.read[sec] * frac) + 4096, int(plan.write[sec] * frac)
            per = r // len(COMMS)
            rb = ", ".join(f'"{c}": {per + i}' for i, c in enumerate(COMMS))
            rc = ", ".join(f'"{c}": {i + 1}' for i, c in enumerate(COMMS))
            fh.write(f'{{"type": "printf", "data": "tick {ns}\\n"}}\n'
                     f'{{"type": "map", "data": {{"@read_bytes": {{{rb}}}}}}}\n'
                     f'{{"type": "map", "data": {{"@read_calls": {{{rc}}}}}}}\n' + hist_r)
            if w:
                fh.write(f'{{"type": "map", "data": {{"@write_bytes": {{"python": {w}}}}}}}\n'
                         f'{{"type": "map", "data": {{"@write_calls": {{"python": {max(w >> 20, 1)}}}}}}}\n' + hist_w)


def build(run: Path, scale: float) -> list[Path]:
    """Write the benchmark bundle; returns the raw files the analysis reads."""
    seconds = max(int(DAY * scale), 600)
    every = max(seconds // 24, 120)
    spec = SynthSpec(warmup_s=0, train_s=seconds - 10, cooldown_s=10, dataset_read_s=min(600, seconds // 4),
                     checkpoints=[SynthCheckpoint(o, 20, 2_000_000_000) for o in range(every, seconds - 60, every)],
                     sources=("mountstats", "nfsiostat"))
    write_run(run, spec)
    host = run / "raw" / spec.hosts[0]
    _bpftrace(host, _Plan(spec), seconds, int(TRACE_BYTES * scale))
    return [host / "bpftrace.jsonl", host / "mountstats.log", host / "nfsiostat.log"]


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


def installed_env(root: Path) -> dict[str, str]:
    """The child's environment: labctl's bytecode compiled beforehand (into `root`, not the source tree), as a
    pip install compiles it. Without it, where PYTHONDONTWRITEBYTECODE is set (as on the CI VM) every start
    compiles labctl's modules from source (~50 ms), time the analysis itself does not need."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    package = Path(labctl.__file__).parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], env=env, check=True,
                   capture_output=True)
    return env


def time_analysis(run: Path, env: dict[str, str], sample_memory: bool) -> tuple[float, float, float, dict]:
    """Seconds of a child process running the analysis; with `sample_memory`, its peak memory (MB) as the sum
    of the PSS of the whole process tree (the parser's worker processes included; sampled every 0.1 s, which
    takes CPU from the child: such a run is not one of the timed ones), else 0; the largest single process's
    peak RSS (MB); and its summary."""
    # the analysis, its result printed, and the exit as the `labctl` command makes it (labctl.cli.run:
    # gc.freeze() before the interpreter's teardown)
    code = ("import gc, sys, json; from pathlib import Path; from labctl.analysis.analyse import analyse;"
            "s = analyse(Path(sys.argv[1])).summary; print(json.dumps({'checkpoints': len(s['checkpoints']),"
            "'rows': s['timeline_rows']})); gc.freeze()")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
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
    ap = argparse.ArgumentParser(prog="python -m benchmarks.report_throughput", description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="1.0 = 1 GB trace + 24 h logs (default)")
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
        env = installed_env(root)
        runs = [time_analysis(run, env, sample_memory=False) for _ in range(2)]
        took, result = min(r[0] for r in runs), runs[-1][3]
        _, peak, rss, _ = time_analysis(run, env, sample_memory=True)
        ratio = took / wc
        print(f"scale {args.scale}: {size / 1e6:,.1f} MB in {len(files)} files (generated in {gen:.1f} s)")
        print(f"wc -l:    {wc:8.3f} s")
        print(f"analysis: {took:8.3f} s  ({size / 1e6 / took:,.1f} MB/s), {result['rows']:,} timeline rows, "
              f"{result['checkpoints']} checkpoints")
        print(f"ratio analysis / wc -l: {ratio:.1f}x (target ≤ {TARGET_RATIO:g}x)")
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
