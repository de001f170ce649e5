#!/usr/bin/python
"""Ansible module: what a GPU host must have before labctl mounts the FlexGroup and trains on it."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: labctl_prechecks
short_description: Check a GPU host (privilege, OS family, kernel, NFS client, GPUs, bpftrace, time sync)
description:
  - Runs every check, returns one record per check (ok, value, message) and fails listing the failed ones.
    Checks named in I(warn_only) only warn.
options:
  min_kernel: {description: Oldest kernel that supports nconnect., type: str, default: "5.3"}
  min_gpus: {description: Fewest GPUs accepted., type: int, default: 1}
  nfs_client_install: {description: The mount playbook installs the NFS client when missing., type: bool,
                       default: true}
  warn_only: {description: Checks that only warn., type: list, elements: str, default: []}
"""

RETURN = r"""
checks: {description: "name -> {ok, warn, value, message}", type: dict, returned: always}
failed_checks: {description: Names of failed checks., type: list, returned: always}
"""

import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

FAMILIES = {"debian": "Debian", "ubuntu": "Debian", "rhel": "RedHat", "centos": "RedHat", "fedora": "RedHat",
            "rocky": "RedHat", "almalinux": "RedHat", "ol": "RedHat"}


def os_family():
    info = {}
    try:
        with open("/etc/os-release", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.strip().partition("=")
                info[key] = value.strip('"')
    except OSError:
        return None, "no /etc/os-release"
    for name in [info.get("ID", "")] + info.get("ID_LIKE", "").split():
        if name in FAMILIES:
            return FAMILIES[name], f"{info.get('PRETTY_NAME', name)} ({FAMILIES[name]} family)"
    return None, info.get("PRETTY_NAME", "unknown")


def version_tuple(text):
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def run(module, argv):
    if not shutil.which(argv[0]):
        return None, ""
    rc, out, err = module.run_command(argv)
    return rc, (out or "") + (err or "")


def main():
    module = AnsibleModule(argument_spec={
        "min_kernel": {"type": "str", "default": "5.3"}, "min_gpus": {"type": "int", "default": 1},
        "nfs_client_install": {"type": "bool", "default": True},
        "warn_only": {"type": "list", "elements": "str", "default": []},
    }, supports_check_mode=True)
    p = module.params
    checks = {}

    def record(name, ok, value, message):
        checks[name] = {"ok": bool(ok), "warn": not ok and name in p["warn_only"], "value": value,
                        "message": message}

    uid = os.geteuid()
    record("privilege", uid == 0, f"uid {uid}", "become works (root)" if uid == 0 else
           "become did not give root: check sudo rights of the SSH user (become_method, become_user)")
    family, text = os_family()
    record("os_family", family is not None, family or "unsupported", text if family else
           f"{text}: only Debian/Ubuntu and RHEL family hosts are supported")
    kernel = platform.release()
    ok = version_tuple(kernel) >= version_tuple(p["min_kernel"])
    too_old = (f"kernel {kernel} is older than {p['min_kernel']}: nconnect=16 would be ignored; "
               "upgrade the kernel")
    record("kernel", ok, kernel, f"{kernel} supports nconnect" if ok else too_old)

    package = "nfs-common" if family == "Debian" else "nfs-utils"
    installed = False
    if family == "Debian":
        rc, out = run(module, ["dpkg-query", "-W", "-f=${Status}", package])
        installed = rc == 0 and "install ok installed" in out
    elif family == "RedHat":
        rc, _ = run(module, ["rpm", "-q", package])
        installed = rc == 0
    helper = next((h for h in ("/sbin/mount.nfs4", "/usr/sbin/mount.nfs4", "/sbin/mount.nfs")
                   if os.path.exists(h)), None)
    if installed:
        record("nfs_client", True, package, f"{package} installed")
    elif helper:
        record("nfs_client", True, helper, f"{package} not installed, but the NFS mount helper {helper} is")
    else:
        record("nfs_client", p["nfs_client_install"], "missing",
               f"{package} is missing; the mount playbook installs it" if p["nfs_client_install"]
               else f"{package} is missing and labctl_nfs_client_install is false: install {package}")

    rc, out = run(module, ["nvidia-smi", "-L"])
    gpus = len([line for line in out.splitlines() if line.startswith("GPU ")]) if rc == 0 else 0
    if rc is None:
        record("gpus", False, 0, "nvidia-smi not found: install the NVIDIA driver")
    else:
        record("gpus", gpus >= p["min_gpus"], gpus, f"{gpus} GPU(s) listed by nvidia-smi -L" if rc == 0
               else f"nvidia-smi -L failed: {out.strip()[:200]}")

    rc, out = run(module, ["bpftrace", "--version"])
    version = (re.search(r"v?(\d+\.\d+(\.\d+)?)", out) or [None, None])[1] if rc == 0 else None
    record("bpftrace", bool(version), version or "missing",
           f"bpftrace {version}" if version else "bpftrace not found: install it (apt install bpftrace)")

    sync, how = False, "no time synchronisation service found"
    rc, out = run(module, ["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    if rc == 0 and out.strip() == "yes":
        sync, how = True, "timedatectl: NTPSynchronized=yes"
    else:
        rc2, out2 = run(module, ["chronyc", "tracking"])
        if rc2 == 0 and "Normal" in out2:
            sync, how = True, "chronyc tracking: Leap status Normal"
        elif rc == 0:
            how = f"timedatectl: NTPSynchronized={out.strip() or 'unknown'}"
        elif rc is not None:
            how = "timedatectl cannot reach systemd (no systemd?) and chronyc is absent"
    record("time_sync", sync, "active" if sync else "inactive",
           how if sync else f"{how}: enable chrony or systemd-timesyncd (clock offsets skew the timeline)")

    failed = [name for name, c in checks.items() if not c["ok"] and not c["warn"]]
    if failed:
        module.fail_json(msg="prechecks failed: " + "; ".join(f"{n}: {checks[n]['message']}" for n in failed),
                         checks=checks, failed_checks=failed)
    module.exit_json(changed=False, checks=checks, failed_checks=[])


if __name__ == "__main__":
    main()
