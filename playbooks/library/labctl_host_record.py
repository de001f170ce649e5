#!/usr/bin/python
"""Ansible module: the host's own record of what labctl made on it (the hosts' ledger).

One JSON file, `<dir>/host.json` (dir root-owned, 0700; file 0600, written atomically), kept on the host so
that teardown knows what is labctl's even when the controller's ledger is empty or lost:

    {"version": 1,
     "mounts": {"/mnt/fg_llm": "10.0.0.5:/fg_llm"},   mount point -> the source labctl mounted there
     "fstab":  {"/mnt/fg_llm": "10.0.0.5:/fg_llm"},   fstab lines labctl added (mount point -> source)
     "dirs":   ["/mnt/fg_llm"],                       directories labctl created (removed only when empty)
     "installs": ["/opt/labctl/h2o-llmstudio", …]}    install directories labctl created (--remove-install)

Like the cluster's ledger, an entry is added before the change it describes (an interrupted run leaves a
trace), and forgotten once teardown has undone it. Without `add`, `claim` or `forget` it only reads.
`claim` adds only the paths that do not exist yet (what labctl is about to create), and `create` then makes
directories (0755) that are missing: a look, a record and a mkdir in one module call.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: labctl_host_record
short_description: Read, add to or forget entries of labctl's record of what it made on this host
options:
  dir: {description: The root-owned directory holding host.json., required: true, type: path}
  add: {description: "Entries to add: {mounts|fstab: {path: source}, dirs|installs: [path]}.", type: dict}
  forget: {description: "Entries to forget: {mounts|fstab|dirs|installs: [path]}.", type: dict}
  claim: {description: "Entries to add for paths that do not exist yet: {dirs|installs: [path]}.", type: dict}
  create: {description: "Directories to make (0755) after the record is saved, when missing.", type: list,
           elements: path}
"""

RETURN = r"""
record: {description: The record after the change, type: dict, returned: always}
path: {description: The record file, type: str, returned: always}
"""

import json  # noqa: E402
import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

try:  # playbooks/module_utils/labctl_fileops.py is labctl/fileops.py: the one owner of these helpers
    from ansible.module_utils.labctl_fileops import write_json_atomic
except ImportError:  # loaded outside Ansible (tests)
    from labctl.fileops import write_json_atomic

VERSION = 1
MAPS = ("mounts", "fstab")
LISTS = ("dirs", "installs")


def empty():
    return {"version": VERSION, **{k: {} for k in MAPS}, **{k: [] for k in LISTS}}


def load(path):
    """The record at `path` (an empty one when there is none); ValueError when it is not labctl's JSON."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return empty()
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise ValueError("not a version-1 labctl host record")
    record = empty()
    for key in MAPS:
        record[key] = {str(k): str(v) for k, v in (data.get(key) or {}).items()}
    for key in LISTS:
        record[key] = [str(p) for p in data.get(key) or []]
    return record


def save(directory, path, record):
    """Write `record` to `path` (0600, atomic, fsync'd) in `directory` (made root-only, 0700)."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    write_json_atomic(path, record, mode=0o600, sort_keys=True, durable=True)


def apply(record, add, forget):
    """`record` with `add` merged in and `forget` taken out (a new dict)."""
    out = json.loads(json.dumps(record))
    for key, value in (add or {}).items():
        if key in MAPS:
            out[key].update({str(k): str(v) for k, v in (value or {}).items()})
        elif key in LISTS:
            out[key] += [str(p) for p in value or [] if str(p) not in out[key]]
    for key, value in (forget or {}).items():
        for item in value or []:
            if key in MAPS:
                out[key].pop(str(item), None)
            elif key in LISTS and str(item) in out[key]:
                out[key].remove(str(item))
    return out


def main():
    module = AnsibleModule(argument_spec={"dir": {"type": "path", "required": True},
                                          "add": {"type": "dict"}, "forget": {"type": "dict"},
                                          "claim": {"type": "dict"},
                                          "create": {"type": "list", "elements": "path", "default": []}},
                           supports_check_mode=True)
    directory = module.params["dir"]
    path = os.path.join(directory, "host.json")
    claim = module.params["claim"] or {}
    unknown = set(module.params["add"] or {}) | set(module.params["forget"] or {}) | set(claim)
    unknown -= set(MAPS) | set(LISTS)
    if unknown or set(claim) & set(MAPS):
        module.fail_json(msg=f"unknown record kinds {sorted(unknown)}; known: {', '.join(MAPS + LISTS)} "
                             f"(claim: {', '.join(LISTS)})")
    try:
        record = load(path)
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"labctl's record of this host {path} is unreadable ({exc}): restore it, or "
                             "move it aside after checking by hand what labctl made here", path=path)
    add = dict(module.params["add"] or {})
    for key, paths in claim.items():
        add[key] = list(add.get(key) or []) + [p for p in paths or [] if not os.path.lexists(str(p))]
    new = apply(record, add, module.params["forget"])
    changed = new != record
    if changed and not module.check_mode:
        try:
            save(directory, path, new)
        except OSError as exc:
            module.fail_json(msg=f"cannot write labctl's record of this host {path}: {exc}", path=path)
    missing = [d for d in module.params["create"] if not os.path.isdir(d)]
    if missing and not module.check_mode:
        for d in missing:
            try:
                os.makedirs(d, mode=0o755, exist_ok=True)
                os.chmod(d, 0o755)
            except OSError as exc:
                module.fail_json(msg=f"cannot create {d}: {exc.strerror}", path=path, record=new)
    module.exit_json(changed=changed or bool(missing), record=new, path=path, created=missing)


if __name__ == "__main__":
    main()
