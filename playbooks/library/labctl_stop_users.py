#!/usr/bin/python
"""Ansible module: before teardown unmounts, tell labctl's mounts from anyone else's, and its runs' processes
from anyone else's.

- A recorded mount (mount point -> the source labctl mounted) is `ours` only while that source is the top
  mount there; anything else mounted there is `foreign` and left alone, a mount no longer there is `gone`.
- A labctl run is active on this host while its agent or its trainer lives (`<workdir>/<run>/<host>/
  status.json` not final). Its processes are recognised by session: the agent, the trainer and each monitor
  are session leaders whose pids the run dir records.
- Without `force`, an active run or any other process using one of our mounts makes the module fail, naming
  them; processes of runs already over (orphaned monitors) are stopped. With `force`, only the runs'
  processes are stopped (the agent is asked first, so the run ends as "stopped"); anyone else's processes
  are never signalled, and the playbook then unmounts lazily.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: labctl_stop_users
short_description: Check labctl's mounts and stop only labctl runs' processes before unmounting
options:
  mounts: {description: "Recorded mounts: mount point -> source labctl mounted.", required: true, type: dict}
  mount_path: {description: "labctl_mount_path: foreign when an unrecorded mount is there.", type: path}
  workdir: {description: labctl_host_workdir (the runs' directories)., required: true, type: path}
  force: {description: Stop active runs; leave other users to a lazy unmount., type: bool, default: false}
  timeout: {description: Seconds between SIGTERM and SIGKILL., type: float, default: 20}
"""

RETURN = r"""
ours: {description: Recorded mount points that hold labctl's mount now, type: list, returned: always}
foreign: {description: "Mount points holding something else: {path: what}", type: dict, returned: always}
gone: {description: Recorded mount points with nothing mounted, type: list, returned: always}
stopped: {description: "pid and command of each stopped run process", type: list, returned: always}
others: {description: "anyone else's processes using our mounts (left running)", type: list, returned: always}
"""

import glob  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

try:  # playbooks/module_utils/labctl_formats is labctl/formats: the one reader of these files
    from ansible.module_utils.labctl_formats.procmounts import unescape
except ImportError:  # loaded outside Ansible (tests)
    from labctl.formats.procmounts import unescape
try:  # playbooks/module_utils/labctl_fileops.py is labctl/fileops.py: the one owner of these helpers
    from ansible.module_utils.labctl_fileops import pid_alive
except ImportError:  # loaded outside Ansible (tests)
    from labctl.fileops import pid_alive

FINAL = ("finished", "failed", "stopped")


def top_mounts():
    """{mount point: (source, fstype)} of the top mount at each mount point (/proc/self/mountinfo order)."""
    found = {}
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            head, _, tail = line.partition(" - ")
            fields, rest = head.split(), tail.split()
            if len(fields) >= 5 and len(rest) >= 2:
                found[unescape(fields[4])] = (unescape(rest[1]), rest[0])
    return found


def classify(mounts, mount_path=None):
    """(ours, foreign {path: "source (fstype)"}, gone) for the recorded `mounts`; `mount_path`, when not
    recorded, is foreign if anything is mounted there."""
    now = top_mounts()
    ours, foreign, gone = [], {}, []
    if mount_path and os.path.normpath(mount_path) not in mounts and os.path.normpath(mount_path) in now:
        top = now[os.path.normpath(mount_path)]
        foreign[os.path.normpath(mount_path)] = f"{top[0]} ({top[1]})"
    for path, source in sorted(mounts.items()):
        top = now.get(os.path.normpath(path))
        if top is None:
            gone.append(path)
        elif top[0] == source:
            ours.append(path)
        else:
            foreign[path] = f"{top[0]} ({top[1]})"
    return ours, foreign, gone


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _stat(pid):
    """(state, pgid, sid) of a process, or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[2]), int(fields[3])
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip() or "?"
    except OSError:
        return "?"


def runs(workdir):
    """Every labctl run dir on this host: {rundir, run_id, state, active, sessions}."""
    out = []
    for status_path in sorted(glob.glob(os.path.join(glob.escape(workdir), "*", "*", "status.json"))):
        status = _read_json(status_path)
        if not isinstance(status, dict):
            continue
        rundir = os.path.dirname(status_path)
        trainer = status.get("trainer") or {}
        monitors = (_read_json(os.path.join(rundir, "raw", "monitors.json")) or {}).get("monitors") or []
        agent = status.get("agent_pid")
        agent = agent if agent and rundir in _cmdline(agent) else None  # a reused pid is not the agent
        sessions = {p for p in (agent, trainer.get("pgid"), trainer.get("pid")) if isinstance(p, int)}
        sessions |= {m["pid"] for m in monitors if isinstance(m, dict) and isinstance(m.get("pid"), int)}
        live = pid_alive(agent) or pid_alive(trainer.get("pid"))
        out.append({"rundir": rundir, "run_id": status.get("run_id"), "state": status.get("state"),
                    "active": bool(live and status.get("state") not in FINAL), "agent": agent,
                    "sessions": sessions})
    return out


def _marks(pid):
    """What ties a process to a run dir: its cwd, command line and environment (inherited by children)."""
    text = _cmdline(pid)
    try:
        text += " " + os.readlink(f"/proc/{pid}/cwd") + "/"
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            text += " " + fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        pass
    return text


def run_processes(run, own_ns):
    """Pids (in our mount namespace) of `run`: in one of its sessions and tied to its run dir, so that a pid
    reused since by someone else is never taken for the run's."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid() or not _same_ns(entry, own_ns):
            continue
        st = _stat(entry)
        if not st or st[0] == "Z" or not {int(entry), st[1], st[2]} & run["sessions"]:
            continue
        if run["rundir"] + "/" in _marks(entry):
            pids.append(int(entry))
    return pids


def _under(target, path):
    return target == path or target.startswith(path + "/")


def _mount_ns(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _same_ns(pid, own_ns):
    return own_ns is None or _mount_ns(pid) == own_ns


def users(path, own_ns):
    """Pids (not ours) with anything open under `path`, in our own mount namespace only: a process in
    another namespace (a container, another simulated host) sees a different filesystem at that path."""
    me = {os.getpid(), os.getppid()}
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in me or not _same_ns(entry, own_ns):
            continue
        base = f"/proc/{entry}"
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
            found[int(entry)] = _cmdline(entry)
    return found


def stop(pids, timeout):
    """SIGTERM, wait up to `timeout`, SIGKILL what is left; returns [{pid, cmd}]."""
    done = [{"pid": pid, "cmd": _cmdline(pid)} for pid in pids]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(pid_alive(pid) for pid in pids):
            time.sleep(0.1)
    return done


def _ask_agents(active, timeout):
    """Ask each active run's agent to stop (it stops its trainer and monitors and records "stopped")."""
    for run in active:
        try:
            open(os.path.join(run["rundir"], "stop.request"), "a").close()
        except OSError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(r["agent"]) for r in active):
        time.sleep(0.2)


def _describe(procs):
    return ", ".join(f"pid {pid} ({cmd[:80]})" for pid, cmd in sorted(procs.items()))


def main():
    module = AnsibleModule(argument_spec={"mounts": {"type": "dict", "required": True},
                                          "mount_path": {"type": "path"},
                                          "workdir": {"type": "path", "required": True},
                                          "force": {"type": "bool", "default": False},
                                          "timeout": {"type": "float", "default": 20.0}},
                           supports_check_mode=True)
    mounts = {os.path.normpath(k): str(v) for k, v in module.params["mounts"].items()}
    if "/" in mounts:
        module.fail_json(msg="refusing to release /")
    ours, foreign, gone = classify(mounts, module.params["mount_path"])
    own_ns = _mount_ns("self")
    found_runs = runs(module.params["workdir"])
    active = [r for r in found_runs if r["active"]]
    using = {}
    for path in ours:
        using.update(users(path, own_ns))
    mine = {pid for run in found_runs for pid in run_processes(run, own_ns)}
    others = {pid: cmd for pid, cmd in using.items() if pid not in mine}
    result = {"ours": ours, "foreign": foreign, "gone": gone, "stopped": [],
              "others": [{"pid": k, "cmd": v} for k, v in sorted(others.items())],
              "runs": [{"run_id": r["run_id"], "state": r["state"], "rundir": r["rundir"]} for r in active]}
    force = module.params["force"]
    problems = []
    if active and not force:
        problems.append("a labctl run is active on this host (" + "; ".join(
            f"run {r['run_id']}, {r['state']}, in {r['rundir']}" for r in active) + "): wait for it to end "
            "(labctl attach RUN) or stop it; teardown --force stops it (its output so far is kept)")
    if others and not force:
        problems.append(f"{', '.join(ours)} is busy: {_describe(others)} use it; stop them, or rerun "
                        "teardown with --force (a lazy unmount; labctl never stops anyone else's processes)")
    if problems:
        module.fail_json(msg="; ".join(problems), **result)
    if module.check_mode:
        module.exit_json(changed=bool(mine), **result)
    if active:
        _ask_agents(active, module.params["timeout"])
    left = [pid for run in found_runs for pid in run_processes(run, own_ns)]
    result["stopped"] = stop(left, module.params["timeout"]) if left else []
    result["stopped_runs"] = [r["run_id"] for r in active]
    module.exit_json(changed=bool(left or active), **result)


if __name__ == "__main__":
    main()
