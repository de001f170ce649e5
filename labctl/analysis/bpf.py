"""labctl's bpftrace program (labctl/data/bpf/io_by_second.bt), rendered for one mount point."""

from __future__ import annotations

from labctl.paths import repo_data

PROGRAM = ("bpf", "io_by_second.bt")
MAPS = ("read_bytes", "write_bytes", "read_calls", "write_calls", "fsync_calls", "read_size", "write_size",
        "ckpt_open")


def program_text() -> str:
    """The program with its `__MOUNT__` / `__MOUNT_LEN__` placeholders."""
    return repo_data(*PROGRAM).read_text(encoding="utf-8")


def render_program(mount: str) -> str:
    """The program for files under `mount` (prefix match on the opened path, with a trailing '/').

    Run it as `BPFTRACE_STRLEN=128 bpftrace -f json -o bpftrace.jsonl <file> <trainer_pid>`.
    """
    prefix = mount.rstrip("/") + "/"
    if '"' in prefix or "\\" in prefix or len(prefix) > 190:
        raise ValueError(f"mount path {mount!r} cannot be embedded in the bpftrace program")
    return program_text().replace("__MOUNT_LEN__", str(len(prefix))).replace("__MOUNT__", prefix)
