"""labctl's benchmarks, one command: each prints a ratio of two numbers measured side by side in this run.

    python -m benchmarks [--quick] [--only NAME …]

Each result is one line, `name: value_a vs value_b = ratio (goal …) PASS/MISS` (`(info)` where there is no
goal), followed by an indented detail line. Benchmarks: provision_vs_ansible (also the no-op second
provision), report_throughput, instrumentation_overhead, checkpoint_rate, scale_hosts (root only).
`--quick` uses small sizes (a CI smoke test: it shows they run, not how fast; machines vary).
Results and the machine they ran on: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import platform
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

Result = dict[str, Any]  # name, a, b, unit, ratio, goal (str | None), passed (bool | None), detail

ORDER = ("provision_vs_ansible", "report_throughput", "instrumentation_overhead", "checkpoint_rate",
         "scale_hosts")


def _num(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def format_result(r: Result) -> str:
    """`name: a unit vs b unit = ratio (goal …) PASS/MISS`."""
    if r.get("skipped"):
        return f"{r['name']}: skipped ({r['skipped']})"
    unit = f" {r['unit']}" if r.get("unit") else ""
    head = f"{r['name']}: {_num(r['a'])}{unit} vs {_num(r['b'])}{unit} = {r['ratio']:.3f}x"
    if r.get("goal") is None:
        return head + " (info)"
    verdict = "PASS" if r.get("passed") else "MISS"
    return f"{head} (goal {r['goal']}) {verdict}"


# --- the two benchmarks that are their own scripts: run as written, their printed numbers read back --------
def _run_module(module: str, args: list[str], timeout: float) -> str:
    argv = [sys.executable, "-m", module, *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{module} exited {proc.returncode}: {(proc.stdout + proc.stderr)[-1500:]}")
    return proc.stdout


def _grab(pattern: str, text: str, module: str) -> float:
    m = re.search(pattern, text)
    if m is None:
        raise RuntimeError(f"cannot read {pattern!r} from the output of {module}:\n{text[-1500:]}")
    return float(m.group(1).replace(",", ""))


def bench_report_throughput(quick: bool) -> list[Result]:
    """benchmarks/report_throughput.py (analysis vs `wc -l` on the same files), in its own process."""
    scale = "0.01" if quick else "1.0"
    mod = "benchmarks.report_throughput"
    out = _run_module(mod, ["--scale", scale], timeout=3600)
    wc = _grab(r"wc -l:\s+([\d.]+) s", out, mod)
    took = _grab(r"analysis:\s+([\d.]+) s", out, mod)
    rss = _grab(r"peak memory: ([\d,.]+) MB", out, mod)
    size = _grab(r": ([\d,.]+) MB in \d+ files", out, mod)
    ratio = _grab(r"ratio analysis / wc -l: ([\d,.]+)x", out, mod)  # from unrounded times
    floor = _grab(r"floor:\s+([\d.]+) s", out, mod)
    return [
        {"name": "report_throughput", "a": took, "b": wc, "unit": "s", "ratio": ratio, "goal": "≤ 5x",
         "passed": ratio <= 5, "detail": f"`labctl report` analysis vs `wc -l`, scale {scale} "
                                             f"({size:,.0f} MB), as printed by {mod}"},
        {"name": "report_throughput.floor", "a": floor, "b": wc, "unit": "s", "ratio": floor / wc,
         "goal": None, "passed": None,
         "detail": "a child that only starts, imports numpy and pyarrow (with Parquet) and exits: the part "
                   "of the analysis' time no bundle changes"},
        {"name": "report_throughput.beyond_floor", "a": took - floor, "b": wc, "unit": "s",
         "ratio": (took - floor) / wc, "goal": None, "passed": None,
         "detail": "the analysis' time less that floor, against `wc -l`"},
        {"name": "report_throughput.memory", "a": rss, "b": 1024.0, "unit": "MB", "ratio": rss / 1024.0,
         "goal": "≤ 1x (1 GB)", "passed": rss <= 1024.0,
         "detail": "peak memory of the analysis (sum of PSS over its process tree, workers included) vs "
                   "the 1 GB budget"},
    ]


def bench_checkpoint_rate(quick: bool) -> list[Result]:
    """benchmarks/checkpoint_rate.py (the run engineer's: emulator checkpoint vs dd conv=fsync)."""
    mod = "benchmarks.checkpoint_rate"
    if importlib.util.find_spec(mod) is None:
        return [{"name": "checkpoint_rate", "skipped": f"{mod} is not in this checkout"}]
    args = ["--mib", "32", "--rounds", "1"] if quick else ["--mib", "256", "--rounds", "9"]
    out = _run_module(mod, args, timeout=1800)
    emu = _grab(r"emulator checkpoint[^:]*:\s+([\d.]+) MB/s", out, mod)
    dd = _grab(r"dd bs=1M conv=fsync:\s+([\d.]+) MB/s", out, mod)
    ratio = _grab(r"ratio emulator/dd: ([\d.]+)", out, mod)
    return [{"name": "checkpoint_rate", "a": emu, "b": dd, "unit": "MB/s", "ratio": ratio, "goal": "≥ 0.9x",
             "passed": ratio >= 0.9,
             "detail": f"emulator checkpoint (write + fsync) vs dd bs=1M conv=fsync, {' '.join(args)}; "
                       f"rates are medians; the ratio is the `ratio emulator/dd` line of {mod} "
                       "(its method: see that module)"}]


def _from_module(name: str) -> Callable[[bool], list[Result]]:
    def run(quick: bool) -> list[Result]:
        return importlib.import_module(f"benchmarks.{name}").bench(quick)

    return run


BENCHMARKS: dict[str, Callable[[bool], list[Result]]] = {
    "provision_vs_ansible": _from_module("provision_vs_ansible"),
    "report_throughput": bench_report_throughput,
    "instrumentation_overhead": _from_module("instrumentation_overhead"),
    "checkpoint_rate": bench_checkpoint_rate,
    "scale_hosts": _from_module("scale_hosts"),
}


def machine() -> str:
    """One line about where this ran."""
    try:
        text = Path("/proc/meminfo").read_text()
        mem = next(line.split()[1] for line in text.splitlines() if line.startswith("MemTotal:"))
        mem_s = f"{int(mem) / 2**20:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        mem_s = "?"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"machine: {os.cpu_count()} CPUs, {mem_s} RAM, Linux {platform.release()}, "
            f"Python {platform.python_version()}, load {load}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test); the numbers mean little")
    ap.add_argument("--only", action="append", choices=ORDER, metavar="NAME",
                    help=f"run only this benchmark (repeatable): {', '.join(ORDER)}")
    ap.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = ap.parse_args(argv)
    print(machine(), flush=True)
    missed = errors = 0
    for name in [n for n in ORDER if not args.only or n in args.only]:
        started = time.perf_counter()
        try:
            results = BENCHMARKS[name](args.quick)
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
            errors += 1
            print(f"{name}: ERROR {type(exc).__name__}: {exc}", flush=True)
            traceback.print_exc(file=sys.stderr)
            continue
        for r in results:
            print(format_result(r), flush=True)
            if r.get("detail"):
                print(f"    {r['detail']}", flush=True)
            missed += r.get("passed") is False
        print(f"    ({name} took {time.perf_counter() - started:.0f} s)", flush=True)
    if errors:
        return 1
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
