"""`/proc/mounts` lines and the kernel's octal escaping of device names and mount points (`\\040` = space)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_OCTAL = re.compile(r"\\([0-7]{3})")
_ESCAPED = {"\\": "\\134", " ": "\\040", "\t": "\\011", "\n": "\\012"}


def unescape(text: str) -> str:
    """Undo the kernel's octal escaping (any `\\ooo`)."""
    return _OCTAL.sub(lambda m: chr(int(m[1], 8)), text)


def escape(text: str) -> str:
    """The kernel's escaping of a device name or mount point (backslash, space, tab, newline)."""
    return "".join(_ESCAPED.get(c, c) for c in text)


def options(text: str) -> dict[str, str]:
    """`rw,vers=4.1,hard` -> {"rw": "", "vers": "4.1", "hard": ""}."""
    out: dict[str, str] = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key.strip():
            out[key.strip()] = value.strip()
    return out


@dataclass(frozen=True)
class MountLine:
    """One `/proc/mounts` line, unescaped."""

    device: str
    mountpoint: str
    fstype: str
    options: str

    def format(self) -> str:
        """The line as the kernel writes it (without the newline)."""
        return f"{escape(self.device)} {escape(self.mountpoint)} {self.fstype} {self.options} 0 0"


def parse_line(line: str) -> MountLine | None:
    """A `/proc/mounts` line, or None when it has fewer than four fields."""
    fields = line.split()
    if len(fields) < 4:
        return None
    return MountLine(unescape(fields[0]), unescape(fields[1]), fields[2], fields[3])


def find(text: str, mountpoint: str) -> list[MountLine]:
    """Every line of a mount table mounted on `mountpoint` (the last one is on top)."""
    return [m for line in text.splitlines() if (m := parse_line(line)) and m.mountpoint == mountpoint]
