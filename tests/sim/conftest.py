"""Fixtures for the simulator's own tests: the seeded simulator, an SDK connection, raw HTTPS calls."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from netapp_ontap import HostConnection

from tests.sim.util import Raw


@pytest.fixture
def sim(ontap_sim):
    """The shared simulator, reset to its seed (same object as `ontap_sim`)."""
    return ontap_sim


@pytest.fixture
def ontap(sim, monkeypatch) -> Iterator[HostConnection]:
    """A netapp_ontap connection verifying TLS against the simulator's CA, set as the current connection.

    REQUESTS_CA_BUNDLE would override `verify=<path>` inside requests, so it points at the same CA.
    """
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sim.ca_file)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    conn = HostConnection("127.0.0.1", port=sim.port, username=sim.username, password=sim.password,
                          verify=sim.ca_file, poll_interval=0.05, poll_timeout=10)
    with conn:
        yield conn


@pytest.fixture
def raw(sim) -> Iterator[Raw]:
    client = Raw(sim)
    yield client
    client.session.close()
