"""The simulated NFS client's data path: a FUSE passthrough filesystem over the simulator's volume directory.

`python -m labctl.testlab.nfsfuse STATE_DIR` mounts `request.json`'s `directory` at its `mountpoint` (type
`fuse.labctlnfs`) and counts what really crosses it the way the kernel NFS client would account it:
sequential reads/writes of a file handle become READ/WRITE RPCs of up to rsize/wsize bytes (a seek, fsync
or close sends the rest; op bytes include approximate RPC header sizes),
metadata calls map to their NFSv4 ops (GETATTR, OPEN, CLOSE, CREATE, REMOVE, RENAME, SETATTR, READDIR,
STATFS, ACCESS, COMMIT), RPCs are spread round-robin over `nconnect` transports, and with pNFS granted every
READ/WRITE also counts a pNFS dispatch (one LAYOUTGET per open). `counters.json` and the host's views are
rewritten at least every 0.5 s and once more at unmount. What crosses each file (bytes, ops, time) also goes
to the simulator's I/O counters in batches (`labctl.testlab.io_report`), never holding up the I/O.

Approximations (documented, not hidden): RTT/execute times are the time the passthrough call took on local
disk; there is no page cache accounting beyond what FUSE forwards; with pNFS the data RPCs stay on the
mount's own per-op lines (a real pNFS files layout sends them to data-server clients that mountstats omits).
"""

from __future__ import annotations

import errno
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from labctl.fileops import write_text_atomic
from labctl.testlab import nfsviews, simapi
from labctl.testlab.io_report import POST_TIMEOUT_S, IoReporter

RPC_HEADER_SEND = 132
RPC_HEADER_RECV = 112
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2


class Counters:
    """Thread-safe NFS client counters for one mount."""

    def __init__(self, granted: dict[str, Any]) -> None:
        self.rsize = int(granted["rsize"])
        self.wsize = int(granted["wsize"])
        self.pnfs = bool(granted.get("pnfs"))
        self.data = nfsviews.empty_counters(int(granted.get("nconnect", 1) or 1))
        self._pending: dict[tuple[int, str], list] = {}  # (fh, kind) -> [next offset, bytes, seconds]
        self._next = 0
        self._lock = threading.Lock()

    def rpc(self, op: str, count: int = 1, sent: int = 0, recv: int = 0, seconds: float = 0.0,
            error: bool = False) -> None:
        ms = int(seconds * 1000)
        with self._lock:
            c = self.data["ops"][op]
            c["ops"] += count
            c["ntrans"] += count
            c["bytes_sent"] += sent + RPC_HEADER_SEND * count
            c["bytes_recv"] += recv + RPC_HEADER_RECV * count
            c["rtt"] += ms
            c["execute"] += ms
            c["errors"] += count if error else 0
            xprts = self.data["xprt"]
            now = time.time()
            for _ in range(count):
                x = xprts[self._next % len(xprts)]
                self._next += 1
                x["sends"] += 1
                x["recvs"] += 1
                x["req_u"] += 1
                x["last"] = now

    def event(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.data["events"][name] += n

    def io(self, kind: str, nbytes: int, seconds: float, fh: int = -1, offset: int = -1) -> None:
        """Count `nbytes` read or written at `offset` of `fh`.

        FUSE hands over at most 128 KiB per request, the NFS client sends rsize/wsize RPCs: sequential
        requests of one file handle are coalesced into RPCs of up to rsize/wsize bytes; a seek, an fsync or
        the close sends what is pending as one shorter RPC.
        """
        size = self.rsize if kind == "read" else self.wsize
        op = "READ" if kind == "read" else "WRITE"
        with self._lock:
            b = self.data["bytes"]
            b[f"normal{kind}bytes"] += nbytes
            b[f"server{kind}bytes"] += nbytes
            b[f"{kind}pages"] += -(-nbytes // 4096)
            c = self.data["ops"][op]
            c["bytes_recv" if kind == "read" else "bytes_sent"] += nbytes
            state = self._pending.get((fh, kind))
            rpcs, spent = 0, 0.0
            if state is None or offset != state[0]:
                if state is not None and state[1] > 0:
                    rpcs, spent = 1, state[2]
                state = [offset, 0, 0.0]
            state[0], state[1], state[2] = offset + nbytes, state[1] + nbytes, state[2] + seconds
            while state[1] >= size:
                rpcs += 1
                state[1] -= size
                spent, state[2] = spent + state[2], 0.0
            self._pending[(fh, kind)] = state
        if rpcs:
            self._count_rpcs(op, kind, rpcs, spent)

    def _count_rpcs(self, op: str, kind: str, rpcs: int, seconds: float) -> None:
        self.rpc(op, rpcs, seconds=seconds)
        if self.pnfs:
            self.event(f"pnfs_{kind}", rpcs)

    def settle(self, fh: int) -> None:
        """Send what is pending on `fh` (fsync, close) as one RPC per direction."""
        for kind, op in (("read", "READ"), ("write", "WRITE")):
            with self._lock:
                state = self._pending.pop((fh, kind), None)
            if state is not None and state[1] > 0:
                self._count_rpcs(op, kind, 1, state[2])

    def snapshot(self) -> str:
        with self._lock:
            return json.dumps(self.data)


def _passthrough_class():
    import mfusepy as fuse

    class Passthrough(fuse.Operations):
        """Passthrough to `source`, counting like an NFS client."""

        use_ns = True

        def __init__(self, source: str, counters: Counters, report: IoReporter) -> None:
            self.source = source
            self.c = counters
            self.report = report
            self.dirty: set[int] = set()

        def _p(self, path: str) -> str:
            return os.path.join(self.source, path.lstrip("/"))

        def _call(self, op: str, path: str, func, *args, **kwargs):
            start = time.monotonic()
            try:
                result = func(*args, **kwargs)
            except OSError as exc:
                self.c.rpc(op, seconds=time.monotonic() - start, error=True)
                self.report.other(path, time.monotonic() - start)
                raise fuse.FuseOSError(exc.errno or errno.EIO) from exc
            seconds = time.monotonic() - start
            self.c.rpc(op, seconds=seconds)
            self.report.other(path, seconds)
            return result

        def getattr(self, path, fh=None):
            self.c.event("inoderevalidates")
            st = self._call("GETATTR", path, os.lstat, self._p(path))
            attrs = {k: getattr(st, k) for k in ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size",
                                                 "st_ino", "st_blocks")}
            attrs.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
            return attrs

        def access(self, path, amode):
            self.c.event("vfsaccess")
            if not self._call("ACCESS", path, os.access, self._p(path), amode):
                raise fuse.FuseOSError(errno.EACCES)
            return 0

        def readdir(self, path, fh):
            self.c.event("vfsgetdents")
            return [".", "..", *self._call("READDIR", path, os.listdir, self._p(path))]

        def readlink(self, path):
            return self._call("READLINK", path, os.readlink, self._p(path))

        def mkdir(self, path, mode):
            return self._call("CREATE", path, os.mkdir, self._p(path), mode)

        def rmdir(self, path):
            return self._call("REMOVE", path, os.rmdir, self._p(path))

        def unlink(self, path):
            return self._call("REMOVE", path, os.unlink, self._p(path))

        def symlink(self, target, source):
            return self._call("SYMLINK", target, os.symlink, source, self._p(target))

        def link(self, target, source):
            return self._call("LINK", target, os.link, self._p(source), self._p(target))

        def rename(self, old, new):
            return self._call("RENAME", old, os.rename, self._p(old), self._p(new))

        def chmod(self, path, mode):
            self.c.event("vfssetattr")
            return self._call("SETATTR", path, os.chmod, self._p(path), mode)

        def chown(self, path, uid, gid):
            self.c.event("vfssetattr")
            return self._call("SETATTR", path, os.lchown, self._p(path), uid, gid)

        def truncate(self, path, length, fh=None):
            self.c.event("vfssetattr")
            self.c.event("setattrtrunc")
            if fh is not None:
                return self._call("SETATTR", path, os.ftruncate, fh, length)
            return self._call("SETATTR", path, os.truncate, self._p(path), length)

        def utimens(self, path, times=None):
            self.c.event("vfssetattr")
            if times is None:
                return self._call("SETATTR", path, os.utime, self._p(path), follow_symlinks=False)
            st = os.lstat(self._p(path))
            now = time.time_ns()
            ns = tuple(now if t == UTIME_NOW else cur if t == UTIME_OMIT else t
                       for t, cur in zip(times, (st.st_atime_ns, st.st_mtime_ns), strict=True))
            return self._call("SETATTR", path, os.utime, self._p(path), ns=ns, follow_symlinks=False)

        def statfs(self, path):
            st = self._call("STATFS", path, os.statvfs, self._p(path))
            return {k: getattr(st, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
                                                "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

        def _opened(self):
            self.c.event("vfsopen")
            if self.c.pnfs:
                self.c.rpc("LAYOUTGET")

        def open(self, path, flags):
            self.c.event("vfslookup")
            fh = self._call("OPEN", path, os.open, self._p(path), flags)
            self._opened()
            return fh

        def create(self, path, mode, fi=None):
            # FUSE does not pass the caller's flags here: open for reading too, as NFS does, so a file created
            # O_RDWR (sqlite's database, LLM Studio's charts.db) can be read back through the same handle
            self.c.event("vfslookup")
            fh = self._call("OPEN", path, os.open, self._p(path), os.O_RDWR | os.O_CREAT | os.O_TRUNC, mode)
            self._opened()
            return fh

        def read(self, path, size, offset, fh):
            start = time.monotonic()
            data = os.pread(fh, size, offset)
            seconds = time.monotonic() - start
            self.c.io("read", len(data), seconds, fh, offset)
            self.report.data(path, "read", len(data), seconds)
            self.c.event("vfsreadpages")
            if len(data) < size:
                self.c.event("shortreads")
            return data

        def write(self, path, data, offset, fh):
            start = time.monotonic()
            written = os.pwrite(fh, data, offset)
            seconds = time.monotonic() - start
            self.c.io("write", written, seconds, fh, offset)
            self.report.data(path, "write", written, seconds)
            self.c.event("vfswritepages")
            self.dirty.add(fh)
            return written

        def flush(self, path, fh):
            self.c.event("vfsflush")
            return 0

        def fsync(self, path, datasync, fh):
            self.c.event("vfsfsync")
            self._commit(path, fh)
            return 0

        def _commit(self, path: str, fh: int) -> None:
            self.c.settle(fh)
            if fh in self.dirty:
                self.dirty.discard(fh)
                self._call("COMMIT", path, os.fsync, fh)
                if self.c.pnfs:
                    self.c.rpc("LAYOUTCOMMIT")

        def release(self, path, fh):
            self.c.event("vfsrelease")
            self._commit(path, fh)
            if self.c.pnfs:
                self.c.rpc("LAYOUTRETURN")
            return self._call("CLOSE", path, os.close, fh)

    return Passthrough, fuse


def serve(state_dir: Path) -> int:
    """Mount and serve until unmounted; returns the exit status."""
    request = json.loads((state_dir / "request.json").read_text(encoding="utf-8"))
    host_root = Path(request["host_root"])
    counters = Counters(request["granted"])
    report = _reporter(request, host_root)
    passthrough, fuse = _passthrough_class()
    ops = passthrough(request["directory"], counters, report)
    stop = threading.Event()
    mountpoint = request["mountpoint"]

    def writer() -> None:
        shown = False
        while not stop.is_set():
            _write_counters(state_dir, counters)
            mounted = nfsviews.is_fuse_mounted(mountpoint)
            if mounted or shown:  # a lazy unmount (umount -l) leaves the table at once, as a real one does
                nfsviews.refresh(host_root)
            shown = mounted
            stop.wait(0.5)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    report.start()
    (state_dir / "daemon.pid").write_text(f"{os.getpid()}\n", encoding="utf-8")
    try:
        fuse.FUSE(ops, mountpoint, foreground=True, nothreads=False, allow_other=True,
                  fsname=request["spec"], subtype="labctlnfs", default_permissions=True)
    finally:
        stop.set()
        thread.join(timeout=2)
        report.stop()
        _write_counters(state_dir, counters)
        nfsviews.forget(state_dir)
        nfsviews.refresh(host_root)
    return 0


def _reporter(request: dict[str, Any], host_root: Path) -> IoReporter:
    """The reporter that sends this mount's per-file I/O to the simulator that granted the mount."""
    try:
        info = json.loads((host_root / "host.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = {}
    granted = request["granted"]

    def post(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if "ontap_url" not in info:
            raise OSError(f"{host_root / 'host.json'} names no simulator (ontap_url)")
        return simapi.post(info, "/_sim/nfs/io", body, timeout=POST_TIMEOUT_S)

    mount = {"directory": request["directory"], "server": request["server"], "client": request["client"],
             "vers": str(granted.get("vers", "")), "pnfs": bool(granted.get("pnfs"))}
    return IoReporter(post, mount, int(granted["rsize"]), int(granted["wsize"]))


def _write_counters(state_dir: Path, counters: Counters) -> None:
    write_text_atomic(state_dir / "counters.json", counters.snapshot())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m labctl.testlab.nfsfuse STATE_DIR", file=sys.stderr)
        return 2
    return serve(Path(args[0]))


if __name__ == "__main__":
    sys.exit(main())
