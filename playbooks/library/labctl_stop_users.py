#!/usr/bin/python
"""Ansible module: stop the processes that still use a mount (leftover trainers, monitors, shells)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: labctl_stop_users
short_description: Stop every process whose cwd, root, executable, open files or mappings lie under a path
options:
  path: {description: The mount point., required: true, type: str}
  timeout: {description: Seconds between SIGTERM and SIGKILL., type: float, default: 10}
"""

RETURN = r"""
stopped: {description: "pid and command of each stopped process", type: list, returned: always}
"""

import os  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


def _under(target, path):
    return target == path or target.startswith(path + "/")


def _mount_ns(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def users(path):
    """Pids (not ours) with anything open under `path`, in our own mount namespace only: a process in
    another namespace (a container, another simulated host) sees a different filesystem at that path."""
    me = {os.getpid(), os.getppid()}
    own_ns = _mount_ns("self")
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in me:
            continue
        base = f"/proc/{entry}"
        if own_ns is not None and _mount_ns(entry) != own_ns:
            continue
        links = []
        for name in ("cwd", "root", "exe"):
            try:
                links.append(os.readlink(f"{base}/{name}"))
            except OSError:
                pass
        try:
            for fd in os.listdir(f"{base}/fd"):
                try:
                    links.append(os.readlink(f"{base}/fd/{fd}"))
                except OSError:
                    pass
        except OSError:
            pass
        try:
            with open(f"{base}/maps", encoding="utf-8", errors="replace") as fh:
                links += [line.split(None, 5)[5].strip() for line in fh if len(line.split(None, 5)) == 6]
        except OSError:
            pass
        if any(_under(link, path) for link in links if link.startswith("/")):
            try:
                with open(f"{base}/cmdline", "rb") as fh:
                    found[int(entry)] = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                found[int(entry)] = "?"
    return found


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def main():
    module = AnsibleModule(argument_spec={"path": {"type": "str", "required": True},
                                          "timeout": {"type": "float", "default": 10.0}},
                           supports_check_mode=True)
    path = os.path.realpath(module.params["path"])
    if path == "/":
        module.fail_json(msg="refusing to stop the users of /")
    found = users(path)
    if module.check_mode or not found:
        module.exit_json(changed=bool(found), stopped=[{"pid": k, "cmd": v} for k, v in found.items()])
    for pid in found:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + module.params["timeout"]
    while time.monotonic() < deadline and any(_alive(pid) for pid in found):
        time.sleep(0.2)
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    module.exit_json(changed=True, stopped=[{"pid": k, "cmd": v} for k, v in found.items()])


if __name__ == "__main__":
    main()
