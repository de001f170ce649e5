"""One simulated GPU host: a real `sshd` on its own loopback address, in its own mount namespace when root.

Layout of a host's private root `DIR/hosts/<name>/`:

    ssh/        sshd_config, host key, authorized_keys, sshd.log
    sbin/       mount.nfs, mount.nfs4 (overlaid onto /usr/sbin inside the host's namespace)
    bin/        nvidia-smi, nfsiostat (overlaid onto /usr/local/bin inside the host's namespace)
    proc/       the shim views: proc/mounts and proc/self/mountstats
    nfs/        one state directory per NFS "mount" (FUSE counter daemon pid, granted options, counters)
    gpu/        count (GPUs of this host) and activity.json (written by the emulated trainer)
    mnt/        bind-mounted onto /mnt in the namespace (so /mnt/fg_llm is per host)
    opt/        the upper layers of overlays on /opt and /var/lib in the namespace: the host sees this
    var-lib/    machine's /opt and /var/lib, and what it writes there stays its own (LLM Studio in
                /opt/labctl, labctl's record of what it made on the host in /var/lib/labctl, by default)
    var-tmp/    bind-mounted onto /var/tmp in the namespace (host-local disk: LLM Studio, monitors)
    etc/fstab   bind-mounted onto /etc/fstab in the namespace (fstab persistence stays per host)
    etc/bashrc  bind-mounted onto the SSH user's ~/.bashrc in the namespace: a fresh host's, not the
                controller's (bash sources ~/.bashrc for every command sshd runs; a controller's pyenv or
                conda init there would cost every simulated SSH command ~0.1 CPU-second)
    host.json   what the shims need: name, address, simulator URL, CA, password file
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from labctl.fileops import pid_alive

SSHD = "/usr/sbin/sshd"
NAMESPACE_BINDS = (("mnt", "/mnt"), ("var-tmp", "/var/tmp"), ("etc/fstab", "/etc/fstab"))
NAMESPACE_OVERLAYS = (("opt", "/opt"), ("var-lib", "/var/lib"))  # this machine's below, the host's own above
# Debian's default ~/.bashrc starts so: a non-interactive shell (each SSH command) reads nothing further
HOST_BASHRC = """# labctl simulated host: its own ~/.bashrc (the controller's is hidden in its namespace)
case $- in *i*) ;; *) return;; esac
"""


@dataclass
class SimHost:
    """A started (or prepared) simulated host, as recorded in lab.json."""

    name: str
    address: str
    port: int
    root: str
    pid: int | None = None
    namespace: bool = False

    def as_json(self) -> dict:
        return asdict(self)


def host_address(index: int) -> str:
    """The loopback address of host number `index` (1-based): 127.0.0.11, 127.0.0.12, …"""
    return f"127.0.0.{10 + index}"


def free_port(address: str) -> int:
    """A TCP port that is free on `address` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def _keygen(path: Path, comment: str) -> None:
    if not path.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                       check=True, capture_output=True)


def ensure_client_key(lab_dir: Path) -> Path:
    """The controller's SSH key for the simulated hosts (DIR/ssh/id_ed25519)."""
    ssh_dir = lab_dir / "ssh"
    ssh_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ssh_dir / "id_ed25519"
    _keygen(key, "labctl-sim-controller")
    return key


def _sshd_config(root: Path, address: str, port: int, name: str, user: str) -> str:
    ssh = root / "ssh"
    env = {"LABCTL_SIM_HOST_ROOT": str(root), "LABCTL_SIM_HOST_NAME": name,
           "LABCTL_SIM_HOST_ADDRESS": address, "PIP_CACHE_DIR": str(root / "cache" / "pip")}
    setenv = " ".join(f"{k}={v}" for k, v in env.items())
    return "\n".join([
        f"ListenAddress {address}:{port}",
        f"HostKey {ssh / 'ssh_host_ed25519_key'}",
        f"PidFile {ssh / 'sshd.pid'}",
        f"AuthorizedKeysFile {ssh / 'authorized_keys'}",
        f"AllowUsers {user}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "UsePAM no",
        "StrictModes no",
        "X11Forwarding no",
        "PrintMotd no",
        "MaxSessions 50",
        "MaxStartups 50:30:100",
        f"SetEnv {setenv}",
        "Subsystem sftp internal-sftp",
        "LogLevel INFO",
        "",
    ])


def prepare_host(lab_dir: Path, index: int, client_pub: str, sim_info: dict) -> SimHost:
    """Create host number `index`'s private root, keys, sshd_config, shims and host.json."""
    from labctl.testlab.shims import install_shims

    name = f"gpu{index}"
    address = host_address(index)
    root = (lab_dir / "hosts" / name).resolve()
    for sub in ("ssh", "sbin", "bin", "proc/self", "nfs", "gpu", "mnt", "var-tmp", "etc", "cache/pip",
                "opt", "overlay-work/opt", "var-lib", "overlay-work/var-lib"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "ssh").chmod(0o700)
    fstab = root / "etc" / "fstab"
    if not fstab.exists():
        real = Path("/etc/fstab")
        fstab.write_text(real.read_text(encoding="utf-8") if real.exists() else "", encoding="utf-8")
    for view in (root / "proc" / "mounts", root / "proc" / "self" / "mountstats"):
        if not view.exists():
            view.write_text("", encoding="utf-8")
    count = root / "gpu" / "count"
    if not count.exists():
        count.write_text("8\n", encoding="utf-8")
    _keygen(root / "ssh" / "ssh_host_ed25519_key", name)
    (root / "ssh" / "authorized_keys").write_text(client_pub.strip() + "\n", encoding="utf-8")
    port = free_port(address)
    user = _user()
    (root / "ssh" / "sshd_config").write_text(_sshd_config(root, address, port, name, user), encoding="utf-8")
    info = {"name": name, "address": address, "root": str(root), "python": sys.executable,
            "pythonpath": str(Path(__file__).resolve().parents[2]), **sim_info}
    (root / "host.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    install_shims(root, sys.executable, info["pythonpath"])
    return SimHost(name=name, address=address, port=port, root=str(root))


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def can_namespace() -> bool:
    """Whether hosts get their own mount namespace (root and `unshare` present)."""
    return os.geteuid() == 0 and Path("/usr/bin/unshare").exists()


def _namespace_script(root: Path, config: Path, log: Path) -> str:
    q = shlex.quote
    lines = ["set -e",
             f"mount -t overlay labctl-sbin -o lowerdir={q(str(root / 'sbin'))}:/usr/sbin /usr/sbin",
             f"mount -t overlay labctl-bin -o lowerdir={q(str(root / 'bin'))}:/usr/local/bin /usr/local/bin"]
    for sub, target in NAMESPACE_OVERLAYS:
        lines.append(f"mount -t overlay labctl-{sub} -o lowerdir={target},upperdir={q(str(root / sub))},"
                     f"workdir={q(str(root / 'overlay-work' / sub))} {target}")
    for sub, target in NAMESPACE_BINDS:
        lines.append(f"mount --bind {q(str(root / sub))} {q(target)}")
    bashrc = Path.home() / ".bashrc"
    if bashrc.is_file():
        (root / "etc" / "bashrc").write_text(HOST_BASHRC, encoding="utf-8")
        lines.append(f"mount --bind {q(str(root / 'etc' / 'bashrc'))} {q(str(bashrc))}")
    lines.append(f"exec {SSHD} -D -f {q(str(config))} -E {q(str(log))}")
    return "\n".join(lines)


def start_host(host: SimHost, timeout: float = 15.0) -> SimHost:
    """Start the host's sshd (detached) and wait until it accepts connections."""
    root = Path(host.root)
    config = root / "ssh" / "sshd_config"
    log = root / "ssh" / "sshd.log"
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    for parent in root.parents:
        if str(parent) in ("/mnt", "/var/tmp"):
            raise RuntimeError(f"the lab directory must not lie under {parent}: each host "
                               f"mounts its own {parent} over it")
    host.namespace = can_namespace()
    if host.namespace:
        argv = ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                _namespace_script(root, config, log)]
    else:
        argv = [SSHD, "-D", "-f", str(config), "-E", str(log)]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(root / "ssh" / "start.log", "wb"),  # noqa: SIM115
                            start_new_session=True, close_fds=True)
    host.pid = proc.pid
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            detail = (root / "ssh" / "start.log").read_text(errors="replace")
            if log.exists():
                detail += log.read_text(errors="replace")
            raise RuntimeError(f"sshd for {host.name} exited ({proc.returncode}): {detail.strip()[-800:]}")
        try:
            with socket.create_connection((host.address, host.port), timeout=0.5) as sock:
                sock.settimeout(2)
                if sock.recv(64).startswith(b"SSH-"):
                    return host
        except OSError:
            time.sleep(0.1)
    stop_pid(host.pid)
    raise RuntimeError(f"sshd for {host.name} did not answer on {host.address}:{host.port} within {timeout}s")


def known_hosts_line(host: SimHost) -> str:
    """The known_hosts entry that pins this host's key at its address and port."""
    pub = (Path(host.root) / "ssh" / "ssh_host_ed25519_key.pub").read_text(encoding="utf-8").split()
    where = host.address if host.port == 22 else f"[{host.address}]:{host.port}"
    return f"{where} {pub[0]} {pub[1]}"


def stop_pid(pid: int | None, timeout: float = 5.0) -> bool:
    """SIGTERM `pid`, then SIGKILL after `timeout`; True if it was running."""
    if not pid or not pid_alive(pid):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
    if pid_alive(pid):
        _kill(pid)
    return True


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def namespace_of(pid: int) -> str | None:
    """The mount-namespace id of `pid` (e.g. 'mnt:[4026532]'), or None when it is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def processes_in_namespace(ns: str) -> list[int]:
    """Every process whose mount namespace is `ns`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and namespace_of(int(entry.name)) == ns:
            pids.append(int(entry.name))
    return pids


def belongs_to(pid: int, root: str) -> bool:
    """Whether process `pid` is one of this host's: its command line or environment names the host's root
    (sshd's config lives there; every SSH session and what it starts carries `LABCTL_SIM_HOST_ROOT`). A
    namespace id alone is not proof: the kernel reuses it once a namespace is gone."""
    needle = root.encode()
    for part in ("cmdline", "environ"):
        try:
            if needle in Path(f"/proc/{pid}/{part}").read_bytes():
                return True
        except OSError:
            continue
    return False


def stop_host(host: dict) -> bool:
    """Stop a host: its sshd and every process of it left in its mount namespace (FUSE daemons, trainers)."""
    pid = host.get("pid")
    ns = host.get("mount_ns")
    was_running = False
    if ns and host.get("namespace") and ns != namespace_of(os.getpid()):
        members = [m for m in processes_in_namespace(ns) if belongs_to(m, str(host["root"]))]
        for member in members:
            if member != pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(member, signal.SIGTERM)
        time.sleep(0.3 if members else 0)
        for member in processes_in_namespace(ns):
            if member != pid and belongs_to(member, str(host["root"])):
                _kill(member)
        was_running = bool(members)
    own_pid = bool(pid) and belongs_to(pid, str(host["root"]))  # a reused pid is not ours
    return (own_pid and stop_pid(pid)) or was_running
