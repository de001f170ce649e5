"""`labctl provision --only storage` against the same work as a netapp.ontap Ansible playbook.

    python -m benchmarks --only provision_vs_ansible [--quick]

Each round starts two fresh in-process ONTAP simulators (seeded, job mode `immediate`): one gets
`labctl -i INV provision --only storage` (a `python -m labctl` process, as a user runs it; the in-process
`labctl.cli.main` time is printed too), the other the equivalent playbook (na_ontap_nfs,
na_ontap_export_policy, na_ontap_export_policy_rule, na_ontap_volume FlexGroup with aggr_list ×
aggr_list_multiplier) through ansible-runner with REQUESTS_CA_BUNDLE (TLS verified, as in
tests/sim/test_ansible.py). The order alternates between rounds. REST calls are counted from each
simulator's request log. Then each side runs again on its own simulator: the no-op second provision
(its time, and its POST/PATCH/DELETE count, which must be 0).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.installed import compile_labctl
from tests.ontap.conftest import GPU_HOSTS
from tests.ontap.conftest import write_inventory as tests_inventory

NAME = "provision_vs_ansible"
MUTATING = {"POST", "PATCH", "DELETE"}
SVM = "llm-lab"
GOAL_TIME_RATIO = 0.2

LOGIN = {"hostname": "127.0.0.1", "http_port": "{{ ontap_port }}", "username": "{{ ontap_user }}",
         "password": "{{ lookup('env', 'ONTAP_PASSWORD') }}", "https": True, "validate_certs": True,
         "use_rest": "always"}
# The same objects labctl makes with its defaults (inventory below): NFS v4.1 + pNFS + 1 MiB transfer size,
# export policy labctl_fg_llm with one rule per GPU host, fg_llm = 2 aggregates × 8 constituents, 10 TB,
# thin, unix, junction /fg_llm.
PLAYBOOK_TASKS: list[dict[str, Any]] = [
    {"name": "NFS v4.1 + pNFS", "netapp.ontap.na_ontap_nfs": {
        "vserver": SVM, "nfsv41": "enabled", "nfsv41_pnfs": "enabled", "tcp_max_xfer_size": 1048576,
        "service_state": "started"}},
    {"name": "export policy", "netapp.ontap.na_ontap_export_policy": {
        "vserver": SVM, "name": "labctl_fg_llm"}},
    {"name": "export rule", "netapp.ontap.na_ontap_export_policy_rule": {
        "vserver": SVM, "name": "labctl_fg_llm", "client_match": sorted(GPU_HOSTS.values()),
        "ro_rule": ["sys"], "rw_rule": ["sys"], "super_user_security": ["sys"], "protocol": ["nfs"]}},
    {"name": "FlexGroup", "netapp.ontap.na_ontap_volume": {
        "vserver": SVM, "name": "fg_llm", "aggr_list": ["aggr1", "aggr2"], "aggr_list_multiplier": 8,
        "size": 10, "size_unit": "tb", "junction_path": "/fg_llm", "export_policy": "labctl_fg_llm",
        "space_guarantee": "none", "volume_security_style": "unix", "wait_for_completion": True}},
]


@dataclass
class Side:
    """One side's numbers for one round."""

    seconds: float
    calls: int
    mutating: int
    noop_seconds: float
    noop_calls: int
    noop_mutating: int
    inprocess_seconds: float | None = None
    made: dict[str, Any] | None = None


@contextlib.contextmanager
def _simulator(tls_dir: Path) -> Iterator[Any]:
    from labctl.sim import OntapSimulator

    with OntapSimulator(password="bench-Passw0rd", tls_dir=tls_dir) as sim:
        sim.set_job_mode("immediate")
        yield sim


def _counts(sim: Any, since: int = 0) -> tuple[int, int]:
    calls = sim.requests()[since:]
    return len(calls), sum(1 for c in calls if c["method"] in MUTATING)


def signature(sim: Any) -> dict[str, Any]:
    """What both sides must have made: NFS settings, the policy's rules, the FlexGroup's layout."""
    state = sim.state()
    nfs = next(iter(state["nfs_services"].values()))
    policy = next(p for p in state["export_policies"].values() if p["name"] == "labctl_fg_llm")
    fg = next(v for v in state["volumes"].values() if v["name"] == "fg_llm")
    return {
        "nfs": (nfs["protocol"]["v41_enabled"], nfs["protocol"]["v41_features"]["pnfs_enabled"],
                nfs["transport"]["tcp_max_transfer_size"]),
        "rules": [(sorted(c["match"] for c in r["clients"]), r["ro_rule"], r["rw_rule"], r["superuser"])
                  for r in policy["rules"]],
        "flexgroup": (fg["style"], fg["size"], sorted(a["name"] for a in fg["aggregates"]),
                      fg.get("constituents_per_aggregate"), fg["nas"]["path"],
                      fg["nas"]["export_policy"]["name"], fg["nas"]["security_style"],
                      fg["guarantee"]["type"]),
    }


def write_inventory(root: Path, sim: Any) -> Path:
    """The tests' inventory for `sim` (password in a 0600 file, the sim's CA, two GPU hosts), with labctl's
    default REST timeout and retry backoff, as a user would run it."""
    return tests_inventory(root, sim, labctl_ontap_retry_backoff=None, labctl_ontap_timeout=None)


def _labctl_cli(inventory: Path, state: Path) -> float:
    """`python -m labctl -i INV provision --only storage` in its own process; seconds."""
    env = dict(os.environ, LABCTL_STATE_DIR=str(state), COLUMNS="200")
    env.pop("LABCTL_INVENTORY", None)
    start = time.perf_counter()
    argv = [sys.executable, "-m", "labctl", "-i", str(inventory), "provision", "--only", "storage"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr)[-2000:]
        raise RuntimeError(f"labctl provision failed ({proc.returncode}): {output}")
    return took


def _labctl_inprocess(inventory: Path, state: Path) -> float:
    """`labctl.cli.main([...provision --only storage])` in this process; seconds."""
    from labctl.cli import main

    old = os.environ.get("LABCTL_STATE_DIR")
    os.environ["LABCTL_STATE_DIR"] = str(state)
    try:
        sink = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            rc = main(["-i", str(inventory), "provision", "--only", "storage"])
        took = time.perf_counter() - start
    finally:
        if old is None:
            os.environ.pop("LABCTL_STATE_DIR", None)
        else:
            os.environ["LABCTL_STATE_DIR"] = old
    if rc != 0:
        raise RuntimeError(f"labctl provision (in-process) failed ({rc}): {sink.getvalue()[-2000:]}")
    return took


def _ansible(sim: Any, private: Path) -> tuple[float, dict[str, int]]:
    """The playbook through ansible-runner; (seconds, {changed, ok, failures})."""
    import ansible_runner

    from labctl.hosts.runner import ansible_bin_dir

    project = private / "project"
    project.mkdir(parents=True, exist_ok=True)
    play = [{"hosts": "localhost", "gather_facts": False,
             "module_defaults": {"group/netapp.ontap.netapp_ontap": LOGIN}, "tasks": PLAYBOOK_TASKS}]
    (project / "storage.yml").write_text(yaml.safe_dump(play, sort_keys=False), encoding="utf-8")
    start = time.perf_counter()
    result = ansible_runner.run(
        private_data_dir=str(private), playbook="storage.yml", quiet=True,
        inventory=f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}",
        extravars={"ontap_port": sim.port, "ontap_user": sim.username},
        envvars={"ONTAP_PASSWORD": sim.password, "REQUESTS_CA_BUNDLE": sim.ca_file,
                 "PATH": os.pathsep.join([ansible_bin_dir(), os.environ.get("PATH", os.defpath)]),
                 "ANSIBLE_PIPELINING": "True", "ANSIBLE_NOCOLOR": "1"})
    took = time.perf_counter() - start
    if result.status != "successful":
        failures = [e["event_data"].get("res", {}).get("msg") for e in result.events
                    if e.get("event") == "runner_on_failed"]
        tail = result.stdout.read()[-2000:] if result.stdout else ""
        raise RuntimeError(f"the netapp.ontap playbook failed ({result.status}): {failures}\n{tail}")
    stats = result.stats or {}
    return took, {key: sum(stats.get(key, {}).values()) for key in ("changed", "ok", "failures")}


def labctl_round(work: Path, tls: Path, *, inprocess: bool) -> Side:
    """labctl on a fresh simulator: first provision (CLI process), its no-op second run, and optionally the
    in-process time on another fresh simulator."""
    with _simulator(tls) as sim:
        inventory = write_inventory(work / "labctl", sim)
        state = work / "labctl" / "state"
        first = _labctl_cli(inventory, state)
        calls, mutating = _counts(sim)
        made = signature(sim)
        mark = len(sim.requests())
        second = _labctl_cli(inventory, state)
        noop_calls, noop_mutating = _counts(sim, mark)
    side = Side(first, calls, mutating, second, noop_calls, noop_mutating, made=made)
    if inprocess:
        with _simulator(tls) as sim:
            inventory = write_inventory(work / "labctl-inproc", sim)
            side.inprocess_seconds = _labctl_inprocess(inventory, work / "labctl-inproc" / "state")
    return side


def ansible_round(work: Path, tls: Path) -> Side:
    """The playbook on a fresh simulator, then again (no-op: changed must be 0)."""
    with _simulator(tls) as sim:
        first, stats = _ansible(sim, work / "ansible-1")
        if stats["changed"] != len(PLAYBOOK_TASKS):
            raise RuntimeError(f"the playbook changed {stats['changed']} of {len(PLAYBOOK_TASKS)} objects")
        calls, mutating = _counts(sim)
        made = signature(sim)
        mark = len(sim.requests())
        second, again = _ansible(sim, work / "ansible-2")
        if again["changed"]:
            raise RuntimeError(f"the playbook's second run changed {again['changed']} objects")
        noop_calls, noop_mutating = _counts(sim, mark)
    return Side(first, calls, mutating, second, noop_calls, noop_mutating, made=made)


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def bench(quick: bool = False) -> list[dict[str, Any]]:
    """Run the comparison; returns result records (see benchmarks/__main__.py)."""
    rounds = 1 if quick else 3
    root = Path(tempfile.mkdtemp(prefix="labctl-bench-prov-"))
    tls = root / "tls"  # one CA for every simulator (certificate generation is not what is measured)
    compile_labctl()  # labctl's processes start as an installed labctl's do
    try:
        with _simulator(tls) as sim:  # imports and first-call costs of the in-process timing, untimed
            _labctl_inprocess(write_inventory(root / "warm", sim), root / "warm" / "state")
        ours: list[Side] = []
        theirs: list[Side] = []
        for i in range(rounds):
            work = root / f"round{i}"
            if i % 2 == 0:
                ours.append(labctl_round(work, tls, inprocess=True))
                theirs.append(ansible_round(work, tls))
            else:
                theirs.append(ansible_round(work, tls))
                ours.append(labctl_round(work, tls, inprocess=True))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for o, t in zip(ours, theirs, strict=True):
        if o.made != t.made:
            raise RuntimeError(f"the sides made different objects:\n labctl:  {o.made}\n ansible: {t.made}")

    def med(sides: list[Side], attr: str) -> float:
        return statistics.median(float(getattr(s, attr)) for s in sides)

    a_t, b_t = med(ours, "seconds"), med(theirs, "seconds")
    pair = [_ratio(o.seconds, t.seconds) for o, t in zip(ours, theirs, strict=True)]
    ratio = statistics.median(pair)
    inproc = med(ours, "inprocess_seconds")
    noop_mut = max(s.noop_mutating for s in ours)
    note = f"median of {rounds} round(s); per-round ratios {', '.join(f'{r:.2f}' for r in pair)}"
    return [
        {"name": NAME, "a": a_t, "b": b_t, "unit": "s", "ratio": ratio,
         "goal": f"≤ {GOAL_TIME_RATIO:g}x", "passed": ratio <= GOAL_TIME_RATIO,
         "detail": f"`python -m labctl … provision --only storage` vs ansible-runner playbook; {note}"},
        {"name": NAME + ".inprocess", "a": inproc, "b": b_t, "unit": "s", "ratio": _ratio(inproc, b_t),
         "goal": f"≤ {GOAL_TIME_RATIO:g}x", "passed": _ratio(inproc, b_t) <= GOAL_TIME_RATIO,
         "detail": "labctl.cli.main() in this (warm) process, no interpreter start or imports"},
        {"name": NAME + ".rest_calls", "a": med(ours, "calls"), "b": med(theirs, "calls"), "unit": "calls",
         "ratio": _ratio(med(ours, "calls"), med(theirs, "calls")), "goal": None, "passed": None,
         "detail": f"mutating: {med(ours, 'mutating'):.0f} vs {med(theirs, 'mutating'):.0f} "
                   "(labctl also checks the cluster, data LIFs and verifies the FlexGroup)"},
        {"name": "provision_noop", "a": med(ours, "noop_seconds"), "b": med(theirs, "noop_seconds"),
         "unit": "s",
         "ratio": _ratio(med(ours, "noop_seconds"), med(theirs, "noop_seconds")),
         "goal": "0 mutating REST calls", "passed": noop_mut == 0,
         "detail": f"second run: {noop_mut} POST/PATCH/DELETE from labctl "
                   f"({med(ours, 'noop_calls'):.0f} calls), "
                   f"{max(s.noop_mutating for s in theirs)} from Ansible "
                   f"({med(theirs, 'noop_calls'):.0f} calls)"},
    ]


if __name__ == "__main__":
    from benchmarks.__main__ import main

    sys.exit(main(["--only", NAME, *sys.argv[1:]]))
