"""`nvidia-smi` shim of a simulated host (8× Tesla V100-SXM2-32GB by default), in the real tool's formats.

Supports `-L`, `dmon [-s pucvmet] [-o DT] [-d N] [-c N] [-i IDS]`, `--query-gpu=… --format=csv[,noheader]
[,nounits] [-l N|-lms MS] [-i IDS]` and a plain summary. GPU utilisation comes from
`$LABCTL_SIM_HOST_ROOT/gpu/activity.json` (docs/design.md, "Simulated GPU activity"): `sm` % is
Δbusy_seconds/Δt over the sampling interval, 0 when the file is absent or its pid is gone; power, temperature,
clocks and PCIe traffic follow from it. The GPU count is `$LABCTL_SIM_HOST_ROOT/gpu/count` (default 8).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from labctl.fileops import pid_alive
from labctl.testlab.shims import exit_on_term

NAME = "Tesla V100-SXM2-32GB"
DRIVER = "535.183.06"
CUDA = "12.2"
MEM_TOTAL = 32768
POWER_LIMIT = 300.0

# `nvidia-smi dmon` header cells per -s letter (driver 535 layout).
DMON_GROUPS = {
    "p": [("pwr", "W"), ("gtemp", "C"), ("mtemp", "C")],
    "u": [("sm", "%"), ("mem", "%"), ("enc", "%"), ("dec", "%"), ("jpg", "%"), ("ofa", "%")],
    "c": [("mclk", "MHz"), ("pclk", "MHz")],
    "v": [("pviol", "%"), ("tviol", "bool")],
    "m": [("fb", "MB"), ("bar1", "MB"), ("ccpm", "MB")],
    "e": [("sbecc", "errs"), ("dbecc", "errs"), ("pci", "errs")],
    "t": [("rxpci", "MB/s"), ("txpci", "MB/s")],
}

QUERY_FIELDS = {  # name → (header unit, value unit)
    "index": ("", ""), "timestamp": ("", ""), "name": ("", ""), "uuid": ("", ""), "pci.bus_id": ("", ""),
    "driver_version": ("", ""), "count": ("", ""), "pstate": ("", ""), "temperature.gpu": ("", ""),
    "utilization.gpu": ("%", "%"), "utilization.memory": ("%", "%"), "memory.total": ("MiB", "MiB"),
    "memory.used": ("MiB", "MiB"), "memory.free": ("MiB", "MiB"), "power.draw": ("W", "W"),
    "power.limit": ("W", "W"), "clocks.sm": ("MHz", "MHz"), "clocks.mem": ("MHz", "MHz"),
    "clocks.gr": ("MHz", "MHz"), "fan.speed": ("%", "%"),
}


def host_root() -> Path:
    return Path(os.environ.get("LABCTL_SIM_HOST_ROOT", "."))


def gpu_count(root: Path) -> int:
    try:
        return max(0, int((root / "gpu" / "count").read_text().strip()))
    except (OSError, ValueError):
        return 8


def read_activity(root: Path) -> dict | None:
    """activity.json when present and its writer is alive."""
    try:
        data = json.loads((root / "gpu" / "activity.json").read_text())
    except (OSError, ValueError):
        return None
    pid = data.get("pid")
    return data if isinstance(pid, int) and pid > 0 and pid_alive(pid) else None


class Sampler:
    """Per-GPU utilisation from successive reads of activity.json."""

    def __init__(self, root: Path, count: int) -> None:
        self.root, self.count = root, count
        self.last: tuple[float, list[float]] | None = None

    def _busy(self) -> tuple[float, list[float], list[int]]:
        act = read_activity(self.root)
        busy = [0.0] * self.count
        mem = [0] * self.count
        if act:
            for i, value in enumerate(act.get("busy_seconds", [])[: self.count]):
                busy[i] = float(value)
            for i, value in enumerate(act.get("mem_used_mib", [])[: self.count]):
                mem[i] = int(value)
        return time.monotonic(), busy, mem

    def sample(self, settle: float = 0.0) -> list[dict]:
        """One sample per GPU: sm %, memory used and the derived power/temperature/clocks."""
        if self.last is None and settle > 0:
            t0, b0, _ = self._busy()
            self.last = (t0, b0)
            time.sleep(settle)
        now, busy, mem = self._busy()
        if self.last is None:
            util = [0.0] * self.count
        else:
            dt = max(1e-6, now - self.last[0])
            pairs = zip(busy, self.last[1], strict=True)
            util = [max(0.0, min(100.0, 100.0 * (b - p) / dt)) for b, p in pairs]
        self.last = (now, busy)
        return [derive(i, u, m) for i, (u, m) in enumerate(zip(util, mem, strict=True))]


def derive(index: int, sm: float, mem_used: int) -> dict:
    """The readings of a V100 at `sm` % utilisation."""
    busy = sm > 0.5
    return {"index": index, "sm": round(sm), "mem": round(sm * 0.45), "pwr": round(42 + sm * 2.4),
            "gtemp": round(34 + sm * 0.32), "mtemp": round(32 + sm * 0.3), "mclk": 877,
            "pclk": 1530 if busy else 135, "fb": mem_used if mem_used else 0, "bar1": 2,
            "rxpci": round(sm * 12), "txpci": round(sm * 3), "mem_used": mem_used}


def uuid(index: int) -> str:
    return f"GPU-5a1ab0c7-{index:04x}-4c7d-9e1f-labctl{index:06d}".replace("labctl", "0000ab")


def cmd_list(root: Path) -> int:
    for i in range(gpu_count(root)):
        print(f"GPU {i}: {NAME} (UUID: {uuid(i)})")
    return 0


def _ids(arg: str | None, count: int) -> list[int]:
    if not arg:
        return list(range(count))
    return [int(x) for x in arg.split(",") if x.strip().isdigit() and int(x) < count]


def cmd_dmon(root: Path, args: list[str]) -> int:
    opts = {"-s": "puc", "-o": "", "-d": "1", "-c": "0", "-i": ""}
    long = {"--select": "-s", "--options": "-o", "--delay": "-d", "--count": "-c", "--id": "-i"}
    i = 0
    while i < len(args):
        key, _, inline = args[i].partition("=")
        key = long.get(key, key)
        if key in opts:
            if inline:
                opts[key] = inline
                i += 1
            else:
                opts[key] = args[i + 1] if i + 1 < len(args) else ""
                i += 2
        else:
            i += 1
    groups = [g for g in "pucvmet" if g in opts["-s"]] or ["p", "u", "c"]
    cols = [c for g in groups for c in DMON_GROUPS[g]]
    with_date, with_time = "D" in opts["-o"], "T" in opts["-o"]
    ids = _ids(opts["-i"], gpu_count(root))
    delay, count = max(1, int(opts["-d"] or 1)), int(opts["-c"] or 0)
    names = ["gpu", *[c for c, _ in cols]]
    units = ["Idx", *[u for _, u in cols]]
    prefix_n, prefix_u = "#", "#"
    if with_date:
        prefix_n, prefix_u = prefix_n + "Date        ", prefix_u + "YYYYMMDD    "
    if with_time:
        prefix_n, prefix_u = prefix_n + "Time         ", prefix_u + "HH:MM:SS     "
    if not (with_date or with_time):
        prefix_n, prefix_u = "# ", "# "
        head_n = prefix_n + " ".join(f"{n:>5s}" for n in names)
        head_u = prefix_u + " ".join(f"{u:>5s}" for u in units)
    else:
        head_n = prefix_n + f"{names[0]:>3s}" + "".join(f"{n:>7s}" for n in names[1:])
        head_u = prefix_u + f"{units[0]:>3s}" + "".join(f"{u:>7s}" for u in units[1:])
    print(head_n)
    print(head_u, flush=True)
    sampler = Sampler(root, gpu_count(root))
    signal.signal(signal.SIGTERM, exit_on_term)
    done = 0
    next_at = time.monotonic()
    while count <= 0 or done < count:
        readings = sampler.sample()
        stamp = time.localtime()
        for r in (readings[g] for g in ids):
            values = [_dmon_value(r, c) for c, _ in cols]
            if with_date or with_time:
                lead = ""
                if with_date:
                    lead += f" {time.strftime('%Y%m%d', stamp)}   "
                if with_time:
                    lead += f" {time.strftime('%H:%M:%S', stamp)}    "
                line = lead + f"{r['index']:>4d}" + "".join(f"{v:>7s}" for v in values)
            else:
                line = f"  {r['index']:>5d}" + "".join(f" {v:>5s}" for v in values)
            print(line)
        sys.stdout.flush()
        done += 1
        if count > 0 and done >= count:
            break
        next_at += delay
        time.sleep(max(0.0, next_at - time.monotonic()))
    return 0


def _dmon_value(r: dict, col: str) -> str:
    if col in ("enc", "dec", "jpg", "ofa", "pviol", "tviol", "ccpm", "sbecc", "dbecc", "pci"):
        return "0"
    return str(r[col])


def _query_value(r: dict, field: str, count: int, nounits: bool) -> str:
    unit = QUERY_FIELDS[field][1]
    raw: str
    if field == "index":
        raw = str(r["index"])
    elif field == "timestamp":
        t = time.time()
        raw = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"
    elif field == "name":
        raw = NAME
    elif field == "uuid":
        raw = uuid(r["index"])
    elif field == "pci.bus_id":
        raw = f"00000000:{0x06 + 0x10 * r['index']:02X}:00.0"
    elif field == "driver_version":
        raw = DRIVER
    elif field == "count":
        raw = str(count)
    elif field == "pstate":
        raw = "P0" if r["sm"] else "P0"
    elif field == "temperature.gpu":
        raw = str(r["gtemp"])
    elif field == "utilization.gpu":
        raw = str(r["sm"])
    elif field == "utilization.memory":
        raw = str(r["mem"])
    elif field == "memory.total":
        raw = str(MEM_TOTAL)
    elif field == "memory.used":
        raw = str(r["mem_used"])
    elif field == "memory.free":
        raw = str(MEM_TOTAL - r["mem_used"])
    elif field == "power.draw":
        raw = f"{float(r['pwr']):.2f}"
    elif field == "power.limit":
        raw = f"{POWER_LIMIT:.2f}"
    elif field in ("clocks.sm", "clocks.gr"):
        raw = str(r["pclk"])
    elif field == "clocks.mem":
        raw = str(r["mclk"])
    else:  # fan.speed: SXM2 boards have no fan
        return "[N/A]"
    return raw if nounits or not unit else f"{raw} {unit}"


def cmd_query(root: Path, fields_arg: str, fmt: str, loop_s: float, ids_arg: str | None) -> int:
    fields = [f.strip() for f in fields_arg.split(",") if f.strip()]
    for field in fields:
        if field not in QUERY_FIELDS:
            print(f'Field "{field}" is not a valid field to query.', file=sys.stderr)
            print("", file=sys.stderr)
            return 2
    flags = {f.strip() for f in fmt.split(",")}
    if "csv" not in flags:
        print('"--format" requires csv.', file=sys.stderr)
        return 2
    noheader, nounits = "noheader" in flags, "nounits" in flags
    count = gpu_count(root)
    ids = _ids(ids_arg, count)
    if not noheader:
        heads = (f"{f} [{QUERY_FIELDS[f][0]}]" if QUERY_FIELDS[f][0] else f for f in fields)
        print(", ".join(heads), flush=True)
    sampler = Sampler(root, count)
    signal.signal(signal.SIGTERM, exit_on_term)
    first = True
    while True:
        readings = sampler.sample(settle=0.3 if first else 0.0)
        first = False
        for r in (readings[g] for g in ids):
            print(", ".join(_query_value(r, f, count, nounits) for f in fields))
        sys.stdout.flush()
        if loop_s <= 0:
            return 0
        time.sleep(loop_s)


def cmd_summary(root: Path) -> int:
    readings = Sampler(root, gpu_count(root)).sample(settle=0.3)
    bar = "+-----------------------------------------+----------------------+----------------------+"
    print(time.strftime("%a %b %d %H:%M:%S %Y"))
    print("+---------------------------------------------------------------------------------------+")
    print(f"| NVIDIA-SMI {DRIVER}             Driver Version: {DRIVER}   CUDA Version: {CUDA}     |")
    print(bar)
    print("| GPU  Name                 Persistence-M | Bus-Id        Disp.A | Volatile Uncorr. ECC |")
    print("| Fan  Temp   Perf          Pwr:Usage/Cap |         Memory-Usage | GPU-Util  Compute M. |")
    print("|=========================================+======================+======================|")
    for r in readings:
        bus = f"00000000:{0x06 + 0x10 * r['index']:02X}:00.0"
        print(f"| {r['index']:3d}  {NAME:<20s}           On  | {bus}  Off |                    0 |")
        print(f"| N/A   {r['gtemp']:2d}C    P0  {r['pwr']:10d}W / {int(POWER_LIMIT)}W | "
              f"{r['mem_used']:8d}MiB / {MEM_TOTAL}MiB | {r['sm']:5d}%      Default |")
        print(bar)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = host_root()
    if not args:
        return cmd_summary(root)
    if args[0] in ("-L", "--list-gpus"):
        return cmd_list(root)
    if args[0] == "dmon":
        return cmd_dmon(root, args[1:])
    query = fmt = ids = None
    loop_s = 0.0
    i = 0
    while i < len(args):
        arg = args[i]
        key, eq, value = arg.partition("=")
        needs = not eq and i + 1 < len(args)
        if key in ("--query-gpu", "--format", "-l", "--loop", "-lms", "--loop-ms", "-i", "--id"):
            if needs:
                value = args[i + 1]
                i += 1
            if key == "--query-gpu":
                query = value
            elif key == "--format":
                fmt = value
            elif key in ("-l", "--loop"):
                loop_s = float(value)
            elif key in ("-lms", "--loop-ms"):
                loop_s = float(value) / 1000.0
            else:
                ids = value
        i += 1
    if query:
        return cmd_query(root, query, fmt or "csv", loop_s, ids)
    print(f"nvidia-smi shim: unsupported arguments {' '.join(args)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (KeyboardInterrupt, BrokenPipeError):
        sys.exit(0)
