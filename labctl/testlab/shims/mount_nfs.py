"""`mount.nfs` / `mount.nfs4` shim of a simulated host: the kernel NFS client this machine lacks.

Called by `mount -t nfs4 SERVER:/EXPORT DIR -o OPTS` inside the host's mount namespace. It asks the ONTAP
simulator (`POST /_sim/nfs/mount`, client = this host's address) what a real server would grant, fails like
mount.nfs (exit 32, same message) when refused, and otherwise starts the FUSE counter (`nfsfuse`) over the
volume's real directory and waits until the mount and the host's `/proc` views show it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

from labctl.formats.procmounts import escape
from labctl.testlab import nfsviews, simapi

EX_USAGE = 1
EX_FAIL = 32
# Options mount(8) itself consumes or that only matter to fstab.
NON_NFS = {"defaults", "auto", "noauto", "user", "nouser", "users", "_netdev", "nofail", "rw", "ro", "exec",
           "noexec", "suid", "nosuid", "dev", "nodev", "relatime", "noatime", "x-systemd.automount"}


def parse_args(argv: list[str]) -> tuple[str, str, str, bool]:
    """`spec dir [-fnrsvw] [-o opts] [-t type]` → (spec, dir, opts, fake)."""
    positional: list[str] = []
    opts: list[str] = []
    fake = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "-o" and i + 1 < len(argv):
            opts.append(argv[i + 1])
            i += 2
            continue
        if arg == "-t" and i + 1 < len(argv):
            i += 2
            continue
        if arg.startswith("-"):
            fake = fake or "f" in arg[1:]
            i += 1
            continue
        positional.append(arg)
        i += 1
    if len(positional) != 2:
        raise ValueError("usage: mount.nfs remotetarget dir [-rvVwfnsh] [-o nfsoptions]")
    return positional[0], positional[1], ",".join(opts), fake


def requested_options(opts: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in filter(None, opts.split(",")):
        key, _, value = item.partition("=")
        if key not in NON_NFS and not key.startswith("x-"):
            out[key] = value
    return out


def mount(prog: str, argv: list[str], host_root: Path) -> int:
    """Do the mount; returns mount.nfs's exit status."""
    try:
        spec, mountpoint, opts, fake = parse_args(argv)
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EX_USAGE
    if ":" not in spec:
        print(f"{prog}: remote share not in 'host:dir' format", file=sys.stderr)
        return EX_USAGE
    server, export = spec.split(":", 1)
    mountpoint = os.path.realpath(mountpoint)
    if not os.path.isdir(mountpoint):
        print(f"{prog}: mount point {mountpoint} does not exist", file=sys.stderr)
        return EX_FAIL
    if nfsviews.is_fuse_mounted(mountpoint):
        print(f"{prog}: {spec} is already mounted on {mountpoint}", file=sys.stderr)
        return EX_FAIL
    info = json.loads((host_root / "host.json").read_text(encoding="utf-8"))
    if "ontap_url" not in info:
        print(f"{prog}: Connection refused", file=sys.stderr)
        return EX_FAIL
    requested = requested_options(opts)
    nfs_opts = ",".join(k if v == "" else f"{k}={v}" for k, v in requested.items())
    try:
        body = {"server": server, "export": export, "client": info["address"], "options": nfs_opts}
        status, answer = simapi.post(info, "/_sim/nfs/mount", body)
    except (OSError, urllib.error.URLError) as exc:
        print(f"{prog}: Connection refused ({exc})", file=sys.stderr)
        return EX_FAIL
    if status >= 300 or "directory" not in answer:
        message = answer.get("error", {}).get("message", f"server answered HTTP {status}")
        rest = message[len("mount.nfs:"):] if message.startswith("mount.nfs:") else f" {message}"
        message = prog + ":" + rest
        print(message, file=sys.stderr)
        return int(answer.get("error", {}).get("exit_status", EX_FAIL))
    if fake:
        return 0
    state_dir = host_root / "nfs" / nfsviews.slug(mountpoint)
    state_dir.mkdir(parents=True, exist_ok=True)
    request = {"spec": spec, "server": server, "export": export, "mountpoint": mountpoint,
               "directory": answer["directory"], "granted": answer["granted"], "client": info["address"],
               "requested": requested, "host_root": str(host_root), "mounted_at": time.time(),
               "svm": answer.get("svm"), "volume": answer.get("volume")}
    (state_dir / "request.json").write_text(json.dumps(request, indent=1), encoding="utf-8")
    return _start_daemon(prog, state_dir, mountpoint, host_root, spec)


def _start_daemon(prog: str, state_dir: Path, mountpoint: str, host_root: Path, spec: str) -> int:
    log = open(state_dir / "daemon.log", "ab")  # noqa: SIM115 - handed to the daemon
    proc = subprocess.Popen([sys.executable, "-m", "labctl.testlab.nfsfuse", str(state_dir)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                            close_fds=True)
    log.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (state_dir / "daemon.log").read_text(errors="replace").strip().splitlines()[-3:]
            reason = " / ".join(tail) or "FUSE daemon exited"
            print(f"{prog}: mounting {spec} failed: {reason}", file=sys.stderr)
            nfsviews.forget(state_dir)
            return EX_FAIL
        mounts_view, _ = nfsviews.view_paths(host_root)
        if nfsviews.is_fuse_mounted(mountpoint) and f" {escape(mountpoint)} " in \
                mounts_view.read_text(encoding="utf-8", errors="replace"):
            return 0
        time.sleep(0.05)
    print(f"{prog}: mounting {spec} timed out", file=sys.stderr)
    return EX_FAIL


def main() -> int:
    prog = os.environ.get("LABCTL_SHIM_NAME", "mount.nfs")
    root = os.environ.get("LABCTL_SIM_HOST_ROOT")
    if not root:
        print(f"{prog}: not a simulated host (LABCTL_SIM_HOST_ROOT unset)", file=sys.stderr)
        return EX_FAIL
    return mount(prog, sys.argv[1:], Path(root))


if __name__ == "__main__":
    sys.exit(main())
