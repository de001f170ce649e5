"""Shared fixtures for every test directory."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis: CI (CI set) draws the same examples every run, within each test's own max_examples, and keeps
# no example database; locally the "dev" profile draws new examples each run and replays the failures it saw.
# HYPOTHESIS_PROFILE=ci reproduces CI's draw anywhere.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))

# The tests run the environment's own commands (ansible-playbook, ruff) as an activated venv would have them.
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", os.defpath)])


def pytest_collection_modifyitems(config, items) -> None:
    """The files that start a simulated lab (marked slow or root, or using sim_lab) run first, each file's
    tests in their own order: with `--dist loadfile` the longest files start at once, not last and alone."""
    heavy = {item.path for item in items
             if item.get_closest_marker("slow") or item.get_closest_marker("root")
             or "sim_lab" in getattr(item, "fixturenames", ())}
    items.sort(key=lambda item: item.path not in heavy)


# --- ONTAP simulator (see docs/simulated-lab.md) ---------------------------------------------------
@pytest.fixture(scope="session")
def _ontap_sim_server() -> Iterator[object]:
    from labctl.sim import OntapSimulator

    with OntapSimulator(password="sim-Passw0rd") as sim:
        yield sim


@pytest.fixture
def ontap_sim(_ontap_sim_server):
    """A running ONTAP simulator (HTTPS, seeded 2-node cluster), reset to its seed for each test.

    Attributes: url, host, port, ca_file (str), username, password, data_dir (Path); methods: reset(),
    requests() (the /api call log), state() (dump without jobs), set_job_mode(mode, **params),
    add_fault(**spec).
    """
    _ontap_sim_server.reset()
    yield _ontap_sim_server
    _ontap_sim_server.reset()


# --- simulated lab (see docs/simulated-lab.md) -------------------------------------------------------
@pytest.fixture(scope="session")
def sim_lab(tmp_path_factory) -> Iterator[dict]:
    """`labctl sim up --hosts 2` into a temp dir; `sim down` at the end (root only, else skipped).

    Yields DIR/lab.json's data: {"version", "dir", "ontap": {url, host, port, ca_file, username,
    password_file, pid, state_file, data_dir}, "hosts": [{name, address, port, pid, root, namespace,
    mount_ns}], "inventory", "experiment", "nfs_server", "known_hosts", "ssh_key", "llmstudio_repo"}.
    Not provisioned.
    """
    from tests.hosts.simlab import start_lab

    yield from start_lab(tmp_path_factory.mktemp("simlab"), hosts=2)


@pytest.fixture(scope="session")
def mounted_lab(sim_lab) -> dict:
    """`sim_lab` with the FlexGroup made and mounted on every host, as `labctl run` needs it
    (tests/run/simprep.py; skipped where simulated NFS mounts cannot work). One per pytest worker, shared by
    the run tests of every file: they add runs, never undo this. A test that tears the lab down, provisions
    it from scratch or takes a host off the network starts a lab of its own (start_lab)."""
    from tests.hosts.simlab import fuse_reason
    from tests.run.simprep import provision_and_mount

    reason = fuse_reason()
    if reason:
        pytest.skip(reason)
    provision_and_mount(sim_lab)
    return sim_lab
