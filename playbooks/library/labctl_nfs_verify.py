#!/usr/bin/python
"""Ansible module: prove what an NFS mount really got, from /proc/mounts and /proc/self/mountstats."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: labctl_nfs_verify
short_description: Verify the effective state of an NFS mount (version, rsize/wsize, nconnect, pNFS)
description:
  - Reads the mount table and mountstats (paths configurable, so a simulated host can point at its views)
    and compares what the kernel shows with what was asked. A mismatch fails with the likely cause.
options:
  path: {description: Mount point., required: true, type: str}
  source: {description: "Expected SERVER:/EXPORT.", type: str}
  options: {description: Requested mount options (comma separated)., type: str, default: ""}
  pnfs: {description: pNFS must be active., type: bool, default: true}
  proc_mounts: {description: Mount table to read., type: str, default: /proc/mounts}
  proc_mountstats: {description: Mountstats to read., type: str, default: /proc/self/mountstats}
  svm: {description: SVM name used in hints., type: str, default: llm-lab}
  state:
    description: C(verified) checks the mount; C(report) only reports; C(absent) waits until it is gone.
    type: str
    choices: [verified, report, absent]
    default: verified
  timeout: {description: Seconds to wait for the mount to appear or disappear., type: float, default: 10}
"""

RETURN = r"""
mounted: {description: Whether the path is an NFS mount., type: bool, returned: always}
effective:
  description: "source, fstype, vers, rsize, wsize, nconnect, transports, pnfs, proto, options"
  type: dict
  returned: when mounted
problems: {description: Mismatches with their likely cause., type: list, returned: always}
"""

import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

try:  # playbooks/module_utils/labctl_formats is labctl/formats: the one reader of these files
    from ansible.module_utils.labctl_formats import mountstats, procmounts
except ImportError:  # loaded outside Ansible (tests)
    from labctl.formats import mountstats, procmounts


parse_options = procmounts.options  # "rw,vers=4.1" -> {"rw": "", "vers": "4.1"}


def find_mount(mounts_text, path):
    """The last mount-table entry on `path`: (source, fstype, options dict) or None."""
    found = procmounts.find(mounts_text, path)
    return (found[-1].device, found[-1].fstype, procmounts.options(found[-1].options)) if found else None


def find_stats(stats_text, path):
    """The last mountstats entry on `path`: {opts, pnfs, transports}, or None."""
    entries = [e for e in mountstats.parse_entries(stats_text.splitlines()) if e.mount == path]
    if not entries:
        return None
    last = entries[-1]
    return {"opts": last.opts, "pnfs": last.nfsv4.get("pnfs"), "transports": len(last.xprts)}


def check(mount, stats, requested, want_pnfs, svm, source):
    """(effective, problems) of a mount against the request."""
    src, fstype, opts = mount
    stats = stats or {"opts": {}, "pnfs": None, "transports": 0}
    eff_opts = {**opts, **stats["opts"]}
    effective = {
        "source": src, "fstype": fstype, "vers": eff_opts.get("vers", ""),
        "rsize": int(eff_opts["rsize"]) if eff_opts.get("rsize", "").isdigit() else None,
        "wsize": int(eff_opts["wsize"]) if eff_opts.get("wsize", "").isdigit() else None,
        "nconnect": int(eff_opts.get("nconnect") or 1), "transports": stats["transports"],
        "pnfs": stats["pnfs"], "proto": eff_opts.get("proto", ""),
        "hard": "hard" in eff_opts,
        "options": ",".join(k if v == "" else f"{k}={v}" for k, v in opts.items()),
    }
    problems = []
    if fstype not in ("nfs", "nfs4"):
        problems.append(f"{fstype} is mounted on the path, not NFS")
        return effective, problems
    if source and src != source:
        problems.append(f"the mount comes from {src}, not {source}; another file system is mounted there")
    want_vers = requested.get("vers") or requested.get("nfsvers")
    if want_vers and effective["vers"] != want_vers:
        problems.append(f"vers={effective['vers']} instead of vers={want_vers}: the server refused "
                        f"NFS v{want_vers} and the client fell back (likely cause: NFS v{want_vers} disabled "
                        f"on SVM {svm}: vserver nfs modify -vserver {svm} -v{want_vers} enabled)")
    for key in ("rsize", "wsize"):
        asked = requested.get(key, "")
        got = effective[key]
        if asked.isdigit() and got is not None and got < int(asked):
            problems.append(f"{key}={got} granted, {asked} asked: the server capped it (likely cause: "
                            f"SVM {svm}'s NFS TCP maximum transfer size is {got}; raise it with "
                            f"vserver nfs modify -vserver {svm} -tcp-max-xfer-size {asked}, labctl setting "
                            f"labctl_nfs_tcp_max_xfer_size)")
    asked_nc = requested.get("nconnect", "")
    if asked_nc.isdigit() and int(asked_nc) > 1:
        if effective["nconnect"] != int(asked_nc):
            problems.append(f"nconnect={effective['nconnect']} in effect, {asked_nc} asked (likely cause: a "
                            "kernel before 5.3 ignores nconnect, or an existing mount of the same server "
                            "without nconnect is shared)")
        elif stats["transports"] and stats["transports"] < int(asked_nc):
            problems.append(f"only {stats['transports']} of {asked_nc} transports (xprt) are established")
        elif not stats["transports"]:
            problems.append("mountstats shows no transport for this mount")
    asked_proto = requested.get("proto")
    if asked_proto and effective["proto"] != asked_proto:
        problems.append(f"proto={effective['proto']} instead of {asked_proto}")
    if "hard" in requested and not effective["hard"]:
        problems.append("the mount is soft, hard was asked")
    pnfs_inactive = not effective["pnfs"] or effective["pnfs"] == "not configured"
    if want_pnfs and effective["vers"] in ("4.1", "4.2") and pnfs_inactive:
        problems.append(f"pNFS is not active (pnfs={effective['pnfs'] or 'absent'}; likely cause: pNFS "
                        f"disabled on SVM {svm}: vserver nfs modify -vserver {svm} -v4.1-pnfs enabled)")
    return effective, problems


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def main():
    module = AnsibleModule(argument_spec={
        "path": {"type": "str", "required": True}, "source": {"type": "str"},
        "options": {"type": "str", "default": ""}, "pnfs": {"type": "bool", "default": True},
        "proc_mounts": {"type": "str", "default": "/proc/mounts"},
        "proc_mountstats": {"type": "str", "default": "/proc/self/mountstats"},
        "svm": {"type": "str", "default": "llm-lab"},
        "state": {"type": "str", "default": "verified", "choices": ["verified", "report", "absent"]},
        "timeout": {"type": "float", "default": 10.0},
    }, supports_check_mode=True)
    p = module.params
    path = p["path"].rstrip("/") or "/"
    deadline = time.monotonic() + p["timeout"]
    while True:
        mount = find_mount(_read(p["proc_mounts"]), path)
        nfs = mount is not None and mount[1] in ("nfs", "nfs4")
        if p["state"] == "absent":
            if not nfs:
                module.exit_json(changed=False, mounted=False, problems=[])
        elif nfs or p["state"] == "report" and mount is None:
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if p["state"] == "absent":
        module.fail_json(msg=f"{path} is still mounted after {p['timeout']}s", mounted=True, problems=[])
    if mount is None:
        if p["state"] == "report":
            module.exit_json(changed=False, mounted=False, problems=[f"{path} is not mounted"])
        module.fail_json(msg=f"{path} is not mounted (no entry in {p['proc_mounts']})", mounted=False,
                         problems=[f"{path} is not mounted"])
    stats = find_stats(_read(p["proc_mountstats"]), path)
    requested = parse_options(p["options"])
    effective, problems = check(mount, stats, requested, p["pnfs"], p["svm"], p["source"])
    if problems and p["state"] == "verified":
        module.fail_json(msg=f"{path}: " + "; ".join(problems), mounted=True, effective=effective,
                         problems=problems)
    module.exit_json(changed=False, mounted=True, effective=effective, problems=problems)


if __name__ == "__main__":
    main()
