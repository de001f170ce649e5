"""`labctl sim up/down`: the whole simulated lab (ONTAP simulator + N sshd GPU hosts) in one directory.

    DIR/lab.json          what is running (format in docs/design.md), read by `down`, tests and the demo
    DIR/inventory/        a ready Ansible inventory (hosts.yml + group_vars/all.yml); no secret inside
    DIR/secrets/          ontap_password (owner-only)
    DIR/tls/              the simulator's CA and certificate
    DIR/sim/              simulator state file, volume data, log
    DIR/ssh/              controller key, known_hosts (every host key pinned)
    DIR/hosts/<name>/     each host's private root (see `sshhost`)
    DIR/llmstudio-repo/   the LLM Studio fixture repository (tag = the pinned version)
    DIR/experiment.yaml   copy of templates/experiment.sim.yaml when the repository ships one

With `llmstudio_repo` (`sim up --llmstudio-repo SRC`) the hosts install the real LLM Studio from SRC instead
of the fixture (see `real_llmstudio_vars`), and DIR/experiment.llmstudio.yaml is the reference experiment as a
CPU can run it; DIR/llmstudio-data/train_full.pq is the OASST-format data set provision stages.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from labctl.fileops import pid_alive, write_json_atomic
from labctl.paths import repo_data
from labctl.testlab import sshhost, tiny_llama
from labctl.testlab.fixture_repo import FIXTURE_TAG, SOURCE, make_fixture_repo

# What a PyPI-only install of each release needs (../shared/research/llmstudio.md §8): PyPI has no
# `+cu118`/`+cu121` torch builds and no cmake 3.28.0, and the release's own index lines point elsewhere.
_NO_INDEX_LINES: dict[str, str | None] = {"-i": None, "--index-url": None, "--extra-index-url": None}
PYPI_ONLY_OVERRIDES: dict[str, dict[str, str | None]] = {
    "v1.2.0": {"cmake": "cmake==3.28.1", "torch": "torch==2.0.1", "torchvision": "torchvision==0.15.2",
               **_NO_INDEX_LINES},
    "v1.9.0": {"torch": "torch==2.3.1", **_NO_INDEX_LINES},
    # torch 2.8.0 from PyPI brings its own CUDA 12 wheels; the release's pins of them conflict with it
    "v1.14.9": {"torch": "torch==2.8.0", **_NO_INDEX_LINES, **{f"nvidia-{lib}-cu12": None for lib in (
        "cublas", "cuda-cupti", "cuda-nvrtc", "cuda-runtime", "cudnn", "cufft", "cufile", "curand",
        "cusolver", "cusparse", "cusparselt", "nccl", "nvjitlink", "nvtx")}},
}
# where provision makes the tiny Llama on each host (host-local disk, the host's own /var/tmp)
TINY_BACKBONE_DIR = "/var/tmp/labctl/models/tiny-llama"


class LabError(Exception):
    """The simulated lab could not be started or stopped."""


def _pid_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def read_lab(lab_dir: Path) -> dict[str, Any] | None:
    """DIR/lab.json, or None when there is none."""
    path = lab_dir / "lab.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def is_running(lab: dict[str, Any]) -> bool:
    """Whether any process of the lab is still alive."""
    pids = [lab.get("ontap", {}).get("pid")] + [h.get("pid") for h in lab.get("hosts", [])]
    return any(pid_alive(pid) for pid in pids)


def start_ontap(lab_dir: Path, password_file: Path, seed: Path | None, timeout: float = 60) -> dict[str, Any]:
    """Start `labctl sim ontap` detached; returns the lab.json `ontap` record once its URL is printed."""
    sim_dir = lab_dir / "sim"
    sim_dir.mkdir(parents=True, exist_ok=True)
    port = sshhost.free_port("127.0.0.1")
    state_file, data_dir, tls_dir = sim_dir / "state.json", sim_dir / "data", lab_dir / "tls"
    argv = [sys.executable, "-m", "labctl", "sim", "ontap", "--listen", f"127.0.0.1:{port}",
            "--tls-dir", str(tls_dir), "--password-file", str(password_file),
            "--state-file", str(state_file), "--data-dir", str(data_dir)]
    if seed:
        argv += ["--seed", str(seed)]
    log_path = sim_dir / "ontap.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, cwd=str(lab_dir))
    deadline = time.monotonic() + timeout
    url = None
    while time.monotonic() < deadline and url is None:
        text = log_path.read_text(encoding="utf-8", errors="replace")
        url = next((w for w in text.split() if w.startswith("https://")), None)
        if url is None:
            if proc.poll() is not None:
                raise LabError(f"the ONTAP simulator exited ({proc.returncode}): {text.strip()[-1500:]}")
            time.sleep(0.1)
    if url is None:
        sshhost.stop_pid(proc.pid)
        raise LabError(f"the ONTAP simulator printed no URL within {timeout}s; see {log_path}")
    url = url.rstrip("/.,")
    return {"url": url, "host": "127.0.0.1", "port": port, "ca_file": str(tls_dir / "ca.pem"),
            "username": "admin", "password_file": str(password_file), "pid": proc.pid,
            "state_file": str(state_file), "data_dir": str(data_dir), "log": str(log_path)}


def _rest_get(ontap: dict[str, Any], path: str) -> dict[str, Any]:
    ctx = ssl.create_default_context(cafile=ontap["ca_file"])
    token = f"{ontap['username']}:{Path(ontap['password_file']).read_text().strip()}"
    req = urllib.request.Request(ontap["url"] + path, headers={
        "Authorization": "Basic " + base64.b64encode(token.encode()).decode(), "Accept": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        return json.loads(resp.read())


def first_data_lif(ontap: dict[str, Any]) -> str:
    """The address hosts mount from: the first NFS data LIF the simulator lists (127.0.0.1 if none)."""
    try:
        records = _rest_get(ontap, "/api/network/ip/interfaces?fields=ip,services,name")["records"]
    except (OSError, ValueError, KeyError):
        return "127.0.0.1"
    for rec in records:
        services = rec.get("services") or []
        if "data_nfs" in services or not services:
            address = rec.get("ip", {}).get("address")
            if address:
                return address
    return "127.0.0.1"


def inventory_vars(lab_dir: Path, ontap: dict[str, Any], nfs_server: str, repo: Path) -> dict[str, Any]:
    """group_vars/all.yml of the simulated lab."""
    ssh = lab_dir / "ssh"
    warn_only = ["time_sync"]
    if not shutil.which("bpftrace"):
        warn_only.append("bpftrace")
    return {
        "labctl_ontap_host": ontap["host"],
        "labctl_ontap_port": ontap["port"],
        "labctl_ontap_username": ontap["username"],
        "labctl_ontap_password_file": ontap["password_file"],
        "labctl_ontap_ca_file": ontap["ca_file"],
        "labctl_nfs_server": nfs_server,
        # No path key is set: each host has its own /opt, /mnt, /var/tmp and /etc/fstab (sshhost), so the
        # lab runs on the inventory defaults, as a real lab does. What only a simulated host needs:
        "labctl_nfs_client_install": False,  # its NFS client is the mount.nfs shim; no package to install
        "labctl_llmstudio_repo": str(repo),  # the local fixture repository (tagged like the pinned release)
        "labctl_llmstudio_base_python": sys.executable,  # this machine's Python, not the release's 3.10
        # the fixture's few imports (pyarrow, PyYAML) come from this Python's site packages, its venv's
        # included (labctl_venv's .pth): pip finds them installed and installs nothing
        "labctl_llmstudio_system_site_packages": True,
        "labctl_prechecks_warn_only": warn_only,  # no time sync daemon (and bpftrace only where installed)
        "ansible_user": sshhost._user(),
        "ansible_ssh_private_key_file": str(ssh / "id_ed25519"),
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={ssh / 'known_hosts'} "
                                   "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes",
        "ansible_python_interpreter": sys.executable,
        "ansible_remote_tmp": "/var/tmp/.ansible-tmp",
        "ansible_pipelining": True,
    }


def stage_dataset(lab_dir: Path) -> Path:
    """DIR/llmstudio-data/train_full.pq: the OASST-format data set (instruction, output, id, parent_id) from
    the fixture's bundled sample, written by the fixture's own preparation code, without any download."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "labctl_fixture_default_datasets", SOURCE / "llm_studio" / "app_utils" / "default_datasets.py")
    if spec is None or spec.loader is None:
        raise LabError("the LLM Studio fixture's data set preparation is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Path(module.prepare_default_dataset_causal_language_modeling(str(lab_dir / "llmstudio-data")))


def llmstudio_source(lab_dir: Path, src: str) -> str:
    """What the hosts clone: a git URL or repository as given; a git bundle (a file) through a mirror of it in
    DIR/llmstudio-mirror.git, because Ansible's git module reaches a local path as file://, which git cannot
    read a bundle through."""
    local = Path(src).expanduser()
    if not local.is_file():
        return str(local.resolve()) if local.exists() else src
    mirror = lab_dir / "llmstudio-mirror.git"
    if not mirror.exists():
        proc = subprocess.run(["git", "clone", "-q", "--mirror", str(local.resolve()), str(mirror)],
                              capture_output=True, text=True)
        if proc.returncode:
            raise LabError(f"{src} is not a git bundle git can clone: {proc.stderr.strip()[-500:]}")
    return str(mirror)


def real_llmstudio_vars(lab_dir: Path, repo: str, version: str) -> dict[str, Any]:
    """The inventory keys for the real LLM Studio: what an air-gapped lab sets (docs/design.md)."""
    return {
        "labctl_llmstudio_repo": repo,
        "labctl_llmstudio_version": version,
        "labctl_llmstudio_base_python": sys.executable,  # this machine's Python, not the release's 3.10
        "labctl_llmstudio_system_site_packages": False,  # a real venv: the release's own pinned packages
        "labctl_llmstudio_requirement_overrides": PYPI_ONLY_OVERRIDES.get(version, dict(_NO_INDEX_LINES)),
        "labctl_hf_offline": True,  # nothing is downloaded from the hub: the model and data are made here
        "labctl_llmstudio_backbone_dir": TINY_BACKBONE_DIR,
        "labctl_llmstudio_backbone_script": str(Path(tiny_llama.__file__).resolve()),
        "labctl_dataset_source": str(stage_dataset(lab_dir)),
    }


def write_inventory(lab_dir: Path, hosts: list[sshhost.SimHost], group_vars: dict[str, Any]) -> Path:
    """DIR/inventory/{hosts.yml,group_vars/all.yml}."""
    inv = lab_dir / "inventory"
    (inv / "group_vars").mkdir(parents=True, exist_ok=True)
    members = {}
    for host in hosts:
        root = Path(host.root)
        members[host.name] = {
            "ansible_host": host.address, "ansible_port": host.port,
            "labctl_proc_mounts": str(root / "proc" / "mounts"),
            "labctl_proc_mountstats": str(root / "proc" / "self" / "mountstats"),
            "labctl_sim_host_root": str(root)}
    doc = {"all": {"children": {"gpu_hosts": {"hosts": members}}}}
    if not hosts:  # ONTAP only (`--hosts 0`): export to this machine; `provision --only storage` works as is
        group_vars = {**group_vars, "labctl_export_clients": ["127.0.0.1"]}
    header = "# Written by `labctl sim up`: the simulated GPU hosts (real sshd on loopback addresses).\n"
    (inv / "hosts.yml").write_text(header + yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    (inv / "group_vars" / "all.yml").write_text(
        "# Written by `labctl sim up`. No secret here: the password is in labctl_ontap_password_file.\n"
        + yaml.safe_dump(group_vars, sort_keys=False), encoding="utf-8")
    return inv


def sim_up(lab_dir: Path, n_hosts: int, *, seed: Path | None = None, gpus: int = 8,
           llmstudio_repo: str | None = None, llmstudio_version: str | None = None) -> dict[str, Any]:
    """Start the simulator and `n_hosts` hosts, write the inventory and lab.json; returns lab.json's data.
    With `llmstudio_repo` (a git URL or bundle) the hosts install the real LLM Studio at `llmstudio_version`
    (default the pinned v1.2.0) instead of the fixture."""
    lab_dir = lab_dir.resolve()
    if llmstudio_version and not llmstudio_repo:
        raise LabError(f"--llmstudio-version needs --llmstudio-repo (the fixture is only {FIXTURE_TAG})")
    if n_hosts and not sshhost.can_namespace():
        raise LabError("simulated GPU hosts need root (each gets its own mount namespace, so their "
                       "mounts, /mnt, /var/tmp and /etc/fstab never touch this machine); run as root or "
                       "use --hosts 0")
    lab_dir.mkdir(parents=True, exist_ok=True)
    existing = read_lab(lab_dir)
    if existing and is_running(existing):
        raise LabError(f"a simulated lab is already running in {lab_dir}; "
                       f"run `labctl sim down --dir {lab_dir}` first")
    secrets_dir = lab_dir / "secrets"
    secrets_dir.mkdir(mode=0o700, exist_ok=True)
    secrets_dir.chmod(0o700)
    password_file = secrets_dir / "ontap_password"
    if not password_file.exists():
        password_file.write_text(secrets.token_urlsafe(18) + "\n", encoding="utf-8")
    password_file.chmod(0o600)
    lab: dict[str, Any] = {"version": 1, "dir": str(lab_dir), "ontap": {}, "hosts": [],
                           "inventory": str(lab_dir / "inventory"), "experiment": None}
    try:
        lab["ontap"] = start_ontap(lab_dir, password_file, seed)
        write_json_atomic(lab_dir / "lab.json", lab)
        key = sshhost.ensure_client_key(lab_dir)
        client_pub = key.with_suffix(".pub").read_text(encoding="utf-8")
        repo = make_fixture_repo(lab_dir / "llmstudio-repo")
        sim_info = {k: lab["ontap"][k] for k in ("url", "ca_file", "username", "password_file")}
        sim_info["ontap_url"] = sim_info.pop("url")
        hosts = []
        for index in range(1, n_hosts + 1):
            host = sshhost.prepare_host(lab_dir, index, client_pub, sim_info)
            (Path(host.root) / "gpu" / "count").write_text(f"{gpus}\n", encoding="utf-8")
            sshhost.start_host(host)
            record = host.as_json()
            record["mount_ns"] = sshhost.namespace_of(host.pid) if host.pid else None
            lab["hosts"].append(record)
            write_json_atomic(lab_dir / "lab.json", lab)
            hosts.append(host)
        (lab_dir / "ssh" / "known_hosts").write_text(
            "".join(sshhost.known_hosts_line(h) + "\n" for h in hosts), encoding="utf-8")
        nfs_server = first_data_lif(lab["ontap"])
        group_vars = inventory_vars(lab_dir, lab["ontap"], nfs_server, repo)
        if llmstudio_repo:
            source = llmstudio_source(lab_dir, llmstudio_repo)
            group_vars.update(real_llmstudio_vars(lab_dir, source, llmstudio_version or FIXTURE_TAG))
            shutil.copyfile(repo_data("templates", "experiment.llmstudio.sim.yaml"),
                            lab_dir / "experiment.llmstudio.yaml")
            lab["experiment_llmstudio"] = str(lab_dir / "experiment.llmstudio.yaml")
        write_inventory(lab_dir, hosts, group_vars)
        template = repo_data("templates", "experiment.sim.yaml")
        if template.exists():
            shutil.copyfile(template, lab_dir / "experiment.yaml")
            lab["experiment"] = str(lab_dir / "experiment.yaml")
        lab["nfs_server"] = nfs_server
        lab["known_hosts"] = str(lab_dir / "ssh" / "known_hosts")
        lab["ssh_key"] = str(key)
        lab["llmstudio_repo"] = group_vars["labctl_llmstudio_repo"]
        write_json_atomic(lab_dir / "lab.json", lab)
    except BaseException:
        sim_down(lab_dir)
        raise
    return lab


def sim_down(lab_dir: Path) -> list[str]:
    """Stop everything `sim_up` started in `lab_dir` (idempotent); returns what was stopped."""
    lab = read_lab(lab_dir.resolve())
    if lab is None:
        return []
    stopped = []
    for host in lab.get("hosts", []):
        if sshhost.stop_host(host):
            stopped.append(host["name"])
    pid = lab.get("ontap", {}).get("pid")
    if pid and "sim" in _pid_cmdline(pid) and sshhost.stop_pid(pid):
        stopped.append("ontap")
    return stopped
