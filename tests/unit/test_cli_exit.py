"""The console script's exit (`labctl.cli.run`, through `labctl.leave`): it leaves with `os._exit`, so it must
first do what the interpreter's exit does for Python code: wait for other threads, run `atexit` handlers,
flush the streams."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

PROGRAM = textwrap.dedent("""
    import atexit, sys, threading, time
    from pathlib import Path
    from labctl import cli
    out = Path(sys.argv[1])
    atexit.register(lambda: (out / "atexit").write_text("ran"))
    def late() -> None:
        time.sleep(0.3)
        (out / "thread").write_text("finished")
    threading.Thread(target=late).start()
    sys.stdout.write("buffered, no newline")
    sys.argv = ["labctl", *sys.argv[2:]]
    cli.run()
""")


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROGRAM, str(tmp_path), *args], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_exit_runs_atexit_handlers_waits_for_threads_and_flushes(tmp_path):
    done = _run(tmp_path, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("buffered, no newline")
    assert "version" in done.stdout
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "thread").read_text() == "finished"


def test_exit_status_is_the_commands(tmp_path):
    done = _run(tmp_path, "report", str(tmp_path / "no-such-run"))
    assert done.returncode == 1
    assert "run bundle not found" in done.stderr
    assert (tmp_path / "atexit").read_text() == "ran"
