#!/usr/bin/python
"""Ansible module: an adjusted copy of a release's requirements.txt (the checkout is never edited).

`overrides` maps a requirement's name (compared as pip does: case and `-_.` insensitive) or a pip option
line's option (`-i`, `--extra-index-url`) to its replacement line, or to null to drop the line. A name the
file does not list is added with its replacement line. The copy is written atomically, only when it differs.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: labctl_requirements
short_description: Write requirements.txt with pins adjusted (labctl_llmstudio_requirement_overrides)
options:
  src: {description: The release's requirements.txt., required: true, type: path}
  dest: {description: The adjusted copy pip installs from., required: true, type: path}
  overrides: {description: "name or option -> replacement line, or null to drop it.", type: dict, default: {}}
"""

RETURN = r"""
applied: {description: "The overrides that changed, added or dropped a line.", type: list, returned: always}
"""

import os  # noqa: E402
import re  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

try:  # playbooks/module_utils/labctl_fileops.py is labctl/fileops.py: the one owner of these helpers
    from ansible.module_utils.labctl_fileops import write_text_atomic
except ImportError:  # loaded outside Ansible (tests)
    from labctl.fileops import write_text_atomic

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def canonical(name):
    """pip's comparison of requirement names (PEP 503); options stay as written."""
    return name if name.startswith("-") else re.sub(r"[-_.]+", "-", name).lower()


def line_key(line):
    """The override key a requirements line answers to (None for blanks and comments)."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    if text.startswith("-"):
        return re.split(r"[\s=]", text, maxsplit=1)[0]
    match = NAME.match(text)
    return canonical(match.group(0)) if match else None


def adjust(text, overrides):
    """(adjusted text, sorted keys applied)."""
    wanted = {canonical(k): v for k, v in overrides.items()}
    out, applied = [], set()
    for line in text.splitlines():
        key = line_key(line)
        if key in wanted:
            applied.add(key)
            if wanted[key] is not None:
                out.append(wanted[key])
            continue
        out.append(line)
    for key, line in wanted.items():
        if key not in applied and line is not None and not key.startswith("-"):
            out.append(line)
            applied.add(key)
    return "\n".join(out) + "\n", sorted(applied)


def main():
    module = AnsibleModule(
        argument_spec={
            "src": {"type": "path", "required": True},
            "dest": {"type": "path", "required": True},
            "overrides": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        with open(p["src"], encoding="utf-8") as fh:
            text, applied = adjust(fh.read(), p["overrides"] or {})
    except OSError as exc:
        module.fail_json(msg=f"cannot read {p['src']}: {exc.strerror}")
    try:
        with open(p["dest"], encoding="utf-8") as fh:
            changed = fh.read() != text
    except OSError:
        changed = True
    if changed and not module.check_mode:
        os.makedirs(os.path.dirname(p["dest"]) or ".", mode=0o755, exist_ok=True)
        write_text_atomic(p["dest"], text)
    module.exit_json(changed=changed, applied=applied)


if __name__ == "__main__":
    main()
