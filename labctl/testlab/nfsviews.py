"""The simulated NFS client's `/proc/mounts` and `/proc/self/mountstats` views of a test host.

Every simulated NFS mount is a FUSE filesystem of type `fuse.labctlnfs` (see `nfsfuse`). Its state directory
`HOST_ROOT/nfs/<slug>/` holds `request.json` (what was asked and what the server granted) and `counters.json`
(updated by the FUSE daemon). The views are the host namespace's real mount table with each `fuse.labctlnfs`
entry replaced by the `nfs4` entry a kernel client would print, in the kernel's exact formats.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from pathlib import Path
from typing import Any

from labctl.fileops import write_text_atomic
from labctl.formats.mountstats import Entry
from labctl.formats.procmounts import MountLine, options, unescape

FUSE_TYPE = "fuse.labctlnfs"

# Kernel order of the NFSv4 per-op statistics (nfs-utils Nfsv4ops).
NFS4_OPS = [
    "NULL",
    "READ",
    "WRITE",
    "COMMIT",
    "OPEN",
    "OPEN_CONFIRM",
    "OPEN_NOATTR",
    "OPEN_DOWNGRADE",
    "CLOSE",
    "SETATTR",
    "FSINFO",
    "RENEW",
    "SETCLIENTID",
    "SETCLIENTID_CONFIRM",
    "LOCK",
    "LOCKT",
    "LOCKU",
    "ACCESS",
    "GETATTR",
    "LOOKUP",
    "LOOKUP_ROOT",
    "REMOVE",
    "RENAME",
    "LINK",
    "SYMLINK",
    "CREATE",
    "PATHCONF",
    "STATFS",
    "READLINK",
    "READDIR",
    "SERVER_CAPS",
    "DELEGRETURN",
    "GETACL",
    "SETACL",
    "FS_LOCATIONS",
    "RELEASE_LOCKOWNER",
    "SECINFO",
    "FSID_PRESENT",
    "EXCHANGE_ID",
    "CREATE_SESSION",
    "DESTROY_SESSION",
    "SEQUENCE",
    "GET_LEASE_TIME",
    "RECLAIM_COMPLETE",
    "LAYOUTGET",
    "GETDEVICEINFO",
    "LAYOUTCOMMIT",
    "LAYOUTRETURN",
    "SECINFO_NO_NAME",
    "TEST_STATEID",
    "FREE_STATEID",
    "GETDEVICELIST",
    "BIND_CONN_TO_SESSION",
    "DESTROY_CLIENTID",
    "SEEK",
    "ALLOCATE",
    "DEALLOCATE",
    "LAYOUTSTATS",
    "CLONE",
    "COPY",
    "OFFLOAD_CANCEL",
    "LOOKUPP",
    "LAYOUTERROR",
    "COPY_NOTIFY",
    "GETXATTR",
    "SETXATTR",
    "LISTXATTRS",
    "REMOVEXATTR",
    "READ_PLUS",
]

EVENTS = [
    "inoderevalidates",
    "dentryrevalidates",
    "datainvalidates",
    "attrinvalidates",
    "vfsopen",
    "vfslookup",
    "vfsaccess",
    "vfsupdatepage",
    "vfsreadpage",
    "vfsreadpages",
    "vfswritepage",
    "vfswritepages",
    "vfsgetdents",
    "vfssetattr",
    "vfsflush",
    "vfsfsync",
    "vfslock",
    "vfsrelease",
    "congestionwait",
    "setattrtrunc",
    "extendwrite",
    "sillyrenames",
    "shortreads",
    "shortwrites",
    "delay",
    "pnfs_read",
    "pnfs_write",
]

BYTES = [
    "normalreadbytes",
    "normalwritebytes",
    "directreadbytes",
    "directwritebytes",
    "serverreadbytes",
    "serverwritebytes",
    "readpages",
    "writepages",
]

# Per-op counter fields, in the kernel's order.
OP_FIELDS = ("ops", "ntrans", "timeouts", "bytes_sent", "bytes_recv", "queue", "rtt", "execute", "errors")


def slug(mountpoint: str) -> str:
    """A file name for a mount point."""
    return "m" + mountpoint.replace("/", "_")


def empty_counters(nconnect: int) -> dict[str, Any]:
    """Zeroed counters of a fresh mount."""
    return {
        "events": dict.fromkeys(EVENTS, 0),
        "bytes": dict.fromkeys(BYTES, 0),
        "ops": {op: dict.fromkeys(OP_FIELDS, 0) for op in NFS4_OPS},
        "xprt": [
            {"sends": 0, "recvs": 0, "req_u": 0, "bklog_u": 0, "idle": 0} for _ in range(max(1, nconnect))
        ],
    }


def mount_options(request: dict[str, Any], for_mountstats: bool = False) -> str:
    """The option string a kernel NFS client shows for the granted mount."""
    granted = request["granted"]
    vers = str(granted.get("vers", "4.1"))
    opts = ["rw"] + ([] if for_mountstats else ["relatime"])
    opts += [f"vers={vers}", f"rsize={granted['rsize']}", f"wsize={granted['wsize']}", "namlen=255"]
    if for_mountstats:
        opts += ["acregmin=3", "acregmax=60", "acdirmin=30", "acdirmax=60"]
    requested = request.get("requested", {})
    opts.append("soft" if "soft" in requested else "hard")
    opts.append(f"proto={granted.get('proto', 'tcp')}")
    nconnect = int(granted.get("nconnect", 1) or 1)
    if nconnect > 1:
        opts.append(f"nconnect={nconnect}")
    opts += [
        f"timeo={requested.get('timeo', 600)}",
        f"retrans={requested.get('retrans', 2)}",
        f"sec={requested.get('sec', 'sys')}",
        f"clientaddr={request['client']}",
        "local_lock=none",
    ]
    if not for_mountstats:
        opts.append(f"addr={request['server']}")
    return ",".join(opts)


def mounts_line(request: dict[str, Any]) -> str:
    """The `/proc/mounts` line of a simulated NFS mount."""
    fstype = "nfs4" if str(request["granted"].get("vers", "4.1")).startswith("4") else "nfs"
    return MountLine(request["spec"], request["mountpoint"], fstype, mount_options(request)).format()


def mountstats_block(request: dict[str, Any], counters: dict[str, Any], now: float | None = None) -> str:
    """The `/proc/self/mountstats` entry of a simulated NFS mount (statvers 1.1, kernel whitespace)."""
    now = time.time() if now is None else now
    granted = request["granted"]
    vers = str(granted.get("vers", "4.1"))
    fstype = "nfs4" if vers.startswith("4") else "nfs"
    pnfs = "LAYOUT_NFSV4_1_FILES" if granted.get("pnfs") else "not configured"
    base_port = 700 + (hash(request["mountpoint"]) % 200)
    entry = Entry(request["spec"], request["mountpoint"], fstype, "1.1",
                  options(mount_options(request, for_mountstats=True)),
                  {"impl_id": "name='',domain='',date='0,0'",
                   "caps": "caps=0x3fff7,wtmult=512,dtsize=32768,bsize=0,namlen=255",
                   "nfsv4": f"bm0=0xfdffafff,bm1=0xf9be3e,bm2=0x800,acl=0x0,sessions,pnfs={pnfs},"
                            "lease_time=90,lease_expired=0",
                   "sec": "flavor=1,pseudoflavor=1"},
                  max(0, int(now - request["mounted_at"])),
                  [counters["events"][e] for e in EVENTS], [counters["bytes"][b] for b in BYTES],
                  f"1.1  p/v: 100003/{vers.split('.')[0]} (nfs)",
                  [("tcp", [base_port + i, 1, 1, 0, max(0, int(now - x.get("last", request["mounted_at"]))),
                            x["sends"], x["recvs"], 0, x["req_u"], x["bklog_u"], 65536, 0, 0])
                   for i, x in enumerate(counters["xprt"])],
                  {op: [counters["ops"][op][f] for f in OP_FIELDS] for op in NFS4_OPS})
    return entry.format()



def _requests(host_root: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    found: dict[str, tuple[Path, dict[str, Any]]] = {}
    for req in sorted((host_root / "nfs").glob("*/request.json")):
        try:
            data = json.loads(req.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        found[data["mountpoint"]] = (req.parent, data)
    return found


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)


def render(
    host_root: Path, mounts_text: str, mountstats_text: str, now: float | None = None
) -> tuple[str, str]:
    """Both views from the real tables: each `fuse.labctlnfs` entry becomes its NFS entry."""
    requests = _requests(host_root)
    out_mounts = []
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == FUSE_TYPE:
            req = requests.get(unescape(fields[1]))
            if req:
                out_mounts.append(mounts_line(req[1]))
            continue
        out_mounts.append(line)
    out_stats: list[str] = []
    skipping = False
    for line in mountstats_text.splitlines():
        if line.startswith("device "):
            skipping = False
            parts = line.split(" ")
            if len(parts) >= 8 and parts[7] == FUSE_TYPE:
                skipping = True
                req = requests.get(unescape(parts[4]))
                if req:
                    counters = _counters(req[0], req[1])
                    out_stats.append(mountstats_block(req[1], counters, now).rstrip("\n") + "\n")
                continue
        if skipping:
            continue
        out_stats.append(line)
    mounts = "\n".join(out_mounts) + "\n" if out_mounts else ""
    stats = "\n".join(out_stats) + "\n" if out_stats else ""
    return mounts, stats


def _counters(state_dir: Path, request: dict[str, Any]) -> dict[str, Any]:
    try:
        return json.loads((state_dir / "counters.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return empty_counters(int(request["granted"].get("nconnect", 1) or 1))


def view_paths(host_root: Path) -> tuple[Path, Path]:
    """Where the views of a host live: HOST_ROOT/proc/mounts and HOST_ROOT/proc/self/mountstats."""
    return host_root / "proc" / "mounts", host_root / "proc" / "self" / "mountstats"


def refresh(host_root: Path) -> None:
    """Rewrite both views from this process's mount namespace (call it inside the host's namespace)."""
    (host_root / "nfs").mkdir(parents=True, exist_ok=True)
    with open(host_root / "nfs" / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        mounts, stats = render(host_root, _read("/proc/self/mounts"), _read("/proc/self/mountstats"))
        mounts_path, stats_path = view_paths(host_root)
        _atomic_write(mounts_path, mounts)
        _atomic_write(stats_path, stats)


def is_fuse_mounted(mountpoint: str) -> bool:
    """Whether a `fuse.labctlnfs` filesystem is mounted on `mountpoint` in this namespace."""
    for line in _read("/proc/self/mounts").splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == FUSE_TYPE and unescape(fields[1]) == mountpoint:
            return True
    return False


def forget(state_dir: Path) -> None:
    """Remove a mount's state directory once it is unmounted."""
    for name in ("request.json", "counters.json", "daemon.pid"):
        with contextlib.suppress(OSError):
            (state_dir / name).unlink()
