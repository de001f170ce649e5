"""labctl's bpftrace program (labctl/data/bpf/io_by_second.bt), rendered for one mount point by the run; its
output format is `labctl.formats.bpftrace`'s."""

from __future__ import annotations

from labctl.paths import repo_data

PROGRAM = ("bpf", "io_by_second.bt")
MAX_PREFIX = 63  # "<mount>/" as a string literal: bpftrace 0.17 rejects literals over 64 bytes
MAPS = ("io", "read_bytes", "write_bytes", "read_calls", "write_calls", "fsync_calls", "read_size",
        "write_size", "ckpt_open")


def program_text() -> str:
    """The program with its `__MOUNT__` / `__MOUNT_LEN__` placeholders."""
    return repo_data(*PROGRAM).read_text(encoding="utf-8")


def render_program(mount: str) -> str:
    """The program for files under `mount` (prefix match on the opened path, with a trailing '/').

    Run it as `BPFTRACE_STRLEN=128 bpftrace -f json -o bpftrace.jsonl <file> <trainer_pid>`.
    """
    prefix = mount.rstrip("/") + "/"
    if '"' in prefix or "\\" in prefix or len(prefix.encode()) > MAX_PREFIX:
        raise ValueError(f"mount path {mount!r} cannot be embedded in the bpftrace program "
                         f"(no quotes or backslashes, at most {MAX_PREFIX - 1} bytes: bpftrace ≤0.17 caps "
                         "string literals at 64 bytes)")
    return program_text().replace("__MOUNT_LEN__", str(len(prefix))).replace("__MOUNT__", prefix)
