"""The emulated trainer's checkpoint write rate against `dd conv=fsync` on the same directory.

    python -m benchmarks.checkpoint_rate [--dir DIR] [--mib 256] [--rounds 9]

Both write the same number of bytes to a new file in DIR and fsync it, after a sync(), in back-to-back pairs
whose order alternates, so that a shared, noisy device drifts equally for both. Prints the median rate of
each, the per-pair ratios, and the ratio of the best rounds, measured in this run (the emulator should be
within 10 % of dd).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labctl.experiment.agent.emulator import Emulator, Spec

CHUNK = 1 << 20  # the same write size for both (dd bs=1M)


def emulator_rate(directory: Path, size: int) -> float:
    """Bytes/s of one emulator checkpoint (write + fsync to <dir>/checkpoint.pth)."""
    spec = Spec(
        output_dir=str(directory),
        dataset_path=str(directory / "unused"),
        checkpoint_bytes=size,
        write_chunk_bytes=CHUNK,
    )
    emu = Emulator(spec)
    target = directory / "checkpoint.pth"
    target.unlink(missing_ok=True)
    os.sync()  # start from clean page cache / writeback state, as dd does below
    start = time.perf_counter()
    emu.save_checkpoint()
    took = time.perf_counter() - start
    target.unlink()
    return size / took


def dd_rate(directory: Path, size: int) -> float:
    """Bytes/s of `dd if=/dev/zero of=<dir>/dd.bin bs=1M count=N conv=fsync`."""
    target = directory / "dd.bin"
    target.unlink(missing_ok=True)
    os.sync()
    start = time.perf_counter()
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", f"bs={CHUNK}", f"count={size // CHUNK}", "conv=fsync"],
        check=True,
        capture_output=True,
    )
    took = time.perf_counter() - start
    target.unlink()
    return size / took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.checkpoint_rate", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="directory to write in [default: a temp dir here]"
    )
    parser.add_argument("--mib", type=int, default=256, help="checkpoint size in MiB [256]")
    parser.add_argument("--rounds", type=int, default=9, help="rounds of each [9]")
    args = parser.parse_args(argv)
    if not shutil.which("dd"):
        print("dd not found", file=sys.stderr)
        return 2
    size = args.mib << 20
    tmp = None
    if args.dir is None:
        tmp = tempfile.mkdtemp(prefix="ckpt-rate-", dir=os.getcwd())
        directory = Path(tmp)
    else:
        directory = args.dir
        directory.mkdir(parents=True, exist_ok=True)
    try:
        emulator_rate(directory, 1 << 20)  # warm up imports and the buffer
        emu, dd = [], []
        for i in range(args.rounds):  # back-to-back pairs, alternating which goes first
            if i % 2 == 0:
                emu.append(emulator_rate(directory, size))
                dd.append(dd_rate(directory, size))
            else:
                dd.append(dd_rate(directory, size))
                emu.append(emulator_rate(directory, size))
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    e, d = statistics.median(emu), statistics.median(dd)
    print(f"directory: {directory}  size: {args.mib} MiB  rounds: {args.rounds}")
    print(
        f"emulator checkpoint (write + fsync): {e / 1e6:8.1f} MB/s  (rounds: "
        f"{', '.join(f'{r / 1e6:.0f}' for r in emu)})"
    )
    print(
        f"dd bs=1M conv=fsync:                 {d / 1e6:8.1f} MB/s  (rounds: "
        f"{', '.join(f'{r / 1e6:.0f}' for r in dd)})"
    )
    ratios = [a / b for a, b in zip(emu, dd, strict=True)]
    print(
        f"best rounds: emulator {max(emu) / 1e6:.1f} MB/s, dd {max(dd) / 1e6:.1f} MB/s "
        f"(interference only slows a round down, so the best rounds compare the mechanisms)"
    )
    print(f"per-pair ratios: {', '.join(f'{r:.2f}' for r in ratios)}; ratio of medians {e / d:.3f}")
    print(f"ratio emulator/dd: {max(emu) / max(dd):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
