#!/usr/bin/python
"""Ansible module: a venv with a requirements file installed, pip run only when something changed.

The venv is made when its Python is missing or does not run (`python -m venv`, with the system site packages
when asked; `--without-pip` when those packages already bring pip: the venv's `python -m pip` uses it).
The system site packages are those of the interpreter asked for, even when it is itself a venv: `python -m
venv --system-site-packages` run by a venv's python gives the new venv only the base interpreter's, so the
new venv also gets `labctl_site_packages.pth`, which adds that venv's site directories (their .pth files
included) after its own and before the base interpreter's; pip then finds what that venv has installed.
`pip install --requirement FILE` then runs unless the stamp `<venv>/labctl-requirements.stamp` holds the
sha256 of what it would install now: the requirements file, the pip arguments and the venv's interpreter
(version, prefix, base executable). The stamp is removed before pip runs and written only after pip
succeeded, so a changed file, changed arguments, a new interpreter, a missing stamp, a rebuilt venv or an
interrupted install all run pip again. A rerun with nothing changed costs one `python -c` instead of pip.
pip runs with `--no-warn-conflicts`: its after-install scan of every visible distribution only logs a
warning, which a successful install does not show, and costs more than a satisfied install's own work.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: labctl_venv
short_description: Make a venv and pip-install a requirements file into it, skipped when already done
options:
  path: {description: The venv directory., required: true, type: path}
  python: {description: The interpreter that makes the venv., required: true, type: str}
  system_site_packages:
    description: >-
      Give the venv the site packages of C(python): when C(python) is itself a venv, its site directories
      (through C(labctl_site_packages.pth) in the new venv), then its base interpreter's.
    type: bool
    default: false
  requirements: {description: The requirements file to install., required: true, type: path}
  pip_args: {description: "More `pip install` arguments (an index URL, --no-index ...).", type: list,
             elements: str, default: []}
  chdir: {description: Where pip runs (relative paths in the requirements file)., type: path}
"""

RETURN = r"""
created: {description: The venv was made (or remade) now., type: bool, returned: always}
installed: {description: pip ran now (false when the stamp matched)., type: bool, returned: always}
stamp: {description: The stamp file., type: str, returned: always}
stdout: {description: The last lines pip printed (empty when it did not run)., type: str, returned: always}
"""

import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

try:  # playbooks/module_utils/labctl_fileops.py is labctl/fileops.py: the one owner of these helpers
    from ansible.module_utils.labctl_fileops import write_json_atomic, write_text_atomic
except ImportError:  # loaded outside Ansible (tests)
    from labctl.fileops import write_json_atomic, write_text_atomic

IDENTITY = ("import os, sys; print(sys.version); print(sys.prefix); "
            "print(os.path.realpath(getattr(sys, '_base_executable', sys.executable)))")
STAMP = "labctl-requirements.stamp"
# what the interpreter asked for brings: pip, whether it is a venv, its site directories, its version
PROBE = ("import importlib.util, json, site, sys; print(json.dumps({"
         "'pip': importlib.util.find_spec('pip') is not None, 'venv': sys.prefix != sys.base_prefix, "
         "'site': site.getsitepackages(), 'version': '%d.%d' % sys.version_info[:2]}))")
PTH = "labctl_site_packages.pth"


def identity(module, venv_python):
    """The venv interpreter's version, prefix and base executable, or None when it does not run."""
    if not os.path.exists(venv_python):
        return None
    rc, out, _ = module.run_command([venv_python, "-c", IDENTITY])
    return out if rc == 0 else None


def probe(module, python):
    """PROBE's answer from `python` (the interpreter that makes the venv)."""
    rc, out, err = module.run_command([python, "-c", PROBE])
    if rc != 0:
        module.fail_json(msg=f"{python} does not run: {err.strip() or out.strip()}", rc=rc, stderr=err)
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        module.fail_json(msg=f"{python} -c PROBE printed no answer: {out.strip()[-500:]}", stderr=err)


def make_venv(module, p):
    """`python -m venv` (over a broken one too: venv rewrites its interpreter links and pyvenv.cfg), then
    the .pth with the site directories of a `python` that is itself a venv (or none: a stale one goes)."""
    facts = probe(module, p["python"])
    argv = [p["python"], "-m", "venv"]
    if p["system_site_packages"]:
        argv.append("--system-site-packages")
        if facts["pip"]:
            argv.append("--without-pip")
    argv.append(p["path"])
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg=f"{p['python']} -m venv {p['path']} exited {rc}: {err.strip() or out.strip()}",
                         rc=rc, stderr=err, stdout=out)
    own = os.path.join(p["path"], "lib", f"python{facts['version']}", "site-packages")
    pth = os.path.join(own, PTH)
    if not (p["system_site_packages"] and facts["venv"]):
        if os.path.lexists(pth):
            os.unlink(pth)
        return
    if not os.path.isdir(own):
        module.fail_json(msg=f"the venv {p['path']} has no {own} to give the site packages of {p['python']}")
    # site.addsitedir: each directory's own .pth files count too (an editable install, for one)
    lines = [f"# labctl_venv: the site packages of {p['python']}, a venv: --system-site-packages gives only "
             "its base interpreter's"]
    lines += [f"import site; site.addsitedir({d!r})" for d in facts["site"]]
    write_text_atomic(pth, "\n".join(lines) + "\n")


def digest(requirements, pip_argv, interpreter):
    """sha256 of what a pip install would install now."""
    h = hashlib.sha256()
    with open(requirements, "rb") as fh:
        h.update(fh.read())
    h.update(b"\0" + json.dumps(pip_argv).encode() + b"\0" + interpreter.encode())
    return h.hexdigest()


def read_stamp(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh).get("sha256")
    except (OSError, ValueError, AttributeError):
        return None


def write_stamp(path, sha):
    write_json_atomic(path, {"sha256": sha, "by": "labctl_venv"}, indent=None)


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "python": {"type": "str", "required": True},
            "system_site_packages": {"type": "bool", "default": False},
            "requirements": {"type": "path", "required": True},
            "pip_args": {"type": "list", "elements": "str", "default": []},
            "chdir": {"type": "path"},
        },
    )
    p = module.params
    venv_python = os.path.join(p["path"], "bin", "python")
    stamp = os.path.join(p["path"], STAMP)
    interpreter = identity(module, venv_python)
    created = interpreter is None
    if created:
        make_venv(module, p)
        interpreter = identity(module, venv_python)
        if interpreter is None:
            module.fail_json(msg=f"the venv {p['path']} was made, but its {venv_python} does not run")
    # --no-warn-conflicts: pip's after-install check parses the requirements of every distribution the venv
    # sees (system site packages included: ~1 CPU-s here, more than the rest of a satisfied install), only
    # to log a warning to stderr, which is not shown on success; what pip installs is unchanged
    pip_argv = [venv_python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
                "--no-warn-conflicts", *p["pip_args"], "--requirement", p["requirements"]]
    try:
        sha = digest(p["requirements"], pip_argv, interpreter)
    except OSError as exc:
        module.fail_json(msg=f"cannot read the requirements {p['requirements']}: {exc.strerror}")
    if not created and read_stamp(stamp) == sha:
        module.exit_json(changed=False, created=False, installed=False, stamp=stamp, stdout="")
    if os.path.exists(stamp):
        os.unlink(stamp)
    rc, out, err = module.run_command(pip_argv, cwd=p["chdir"])
    tail = "\n".join(out.splitlines()[-20:])
    if rc != 0:
        module.fail_json(msg=f"pip install exited {rc}: {' '.join(err.strip().splitlines()[-5:])}", rc=rc,
                         stdout=tail, stderr=err[-4000:])
    write_stamp(stamp, sha)
    module.exit_json(changed=created or "Successfully installed" in out, created=created, installed=True,
                     stamp=stamp, stdout=tail)


if __name__ == "__main__":
    main()
