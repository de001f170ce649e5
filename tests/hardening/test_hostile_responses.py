"""Hostile ONTAP answers (malformed JSON, missing fields, wrong types, empty bodies) on any call of provision
or teardown, sent through the real HTTPS stack to labctl's ONTAP client: labctl fails with a LabctlError (a
clear message and an exit code) or copes, never an unexpected exception or a traceback."""

from __future__ import annotations

import fnmatch
import json
import random
import threading
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from labctl.config.lab import load_lab_config
from labctl.errors import LabctlError
from labctl.lab.provision import provision_storage
from labctl.lab.teardown import teardown_storage
from labctl.sim import server
from tests.hardening.util import clean_output, distinct_calls, quiet

RAW = [b"", b"not json", b"{", b'{"records": [', b"null", b"[]", b'"text"', b"\xff\xfe", b"42",
       b'{"records": null, "num_records": 3}', b'{"records": [null, 1, "x"]}', b'{"error": "flat"}',
       b'{"job": {"uuid": 7}}', b'{"job": "x"}']
WRONG = [None, 1, -1.5, "x", "", [], {}, True, [None], {"a": None}, "\x00", 2**70]


class Corruptor:
    """Which answer to spoil and how; installed as the simulator handler's `_send`."""

    def __init__(self) -> None:
        self.plan: dict[str, Any] | None = None
        self.hits = 0
        self.lock = threading.Lock()

    def spoil(self, method: str, path: str, body: Any) -> bytes | None:
        plan = self.plan
        if plan is None or method != plan["method"] or not fnmatch.fnmatchcase(path, plan["path"]):
            return None
        with self.lock:
            if plan["once"] and self.hits:
                return None
            self.hits += 1
        if plan["kind"] == "raw":
            return plan["raw"]
        body = json.loads(json.dumps(body)) if body is not None else {}
        rng = random.Random(plan["seed"])
        slots = list(_slots(body))
        if not slots:
            return json.dumps(rng.choice(WRONG)).encode()
        container, key = rng.choice(slots)
        if plan["kind"] == "drop":
            del container[key]
        else:
            container[key] = rng.choice(WRONG)
        return json.dumps(body).encode()


def _slots(node: Any):
    if isinstance(node, dict):
        for key, value in node.items():
            yield node, key
            yield from _slots(value)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield node, index
            yield from _slots(value)


@pytest.fixture
def corrupt(lab, monkeypatch) -> Corruptor:
    corruptor = Corruptor()
    real = server._Handler._send

    def send(handler: Any, response: Any) -> None:
        data = corruptor.spoil(handler.command, urlsplit(handler.path).path, response.body)
        if data is None:
            return real(handler, response)
        handler.send_response(response.status)
        handler.send_header("Content-Type", "application/hal+json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    monkeypatch.setattr(server._Handler, "_send", send)
    return corruptor


@pytest.fixture
def setup(lab, corrupt) -> dict[str, Any]:
    """The config (fast retries), the calls of a provision and of a teardown, and the provisioned state."""
    lab.configure(labctl_ontap_retries=1, labctl_ontap_retry_backoff=0.01, labctl_ontap_job_timeout=5)
    cfg = load_lab_config(lab.inventory)
    provision_storage(cfg, lab.root / "ref", plan=False, console=quiet())
    provision = distinct_calls(lab.sim.requests())
    provisioned, ledger = lab.sim.state(), (lab.root / "ref" / "ledger.json").read_text()
    mark = len(lab.sim.requests())
    teardown_storage(cfg, lab.root / "ref", console=quiet())
    teardown = distinct_calls(lab.sim.requests()[mark:])
    return {"cfg": cfg, "provision": provision, "teardown": teardown, "provisioned": provisioned,
            "ledger": ledger, "n": 0}


PLANS = st.fixed_dictionaries({
    "kind": st.sampled_from(["raw", "drop", "retype"]),
    "raw": st.sampled_from(RAW) | st.binary(max_size=40),
    "seed": st.integers(0, 2**32),
    "once": st.booleans(),
})


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(command=st.sampled_from(["provision", "teardown"]), call=st.integers(0, 10**6), plan=PLANS)
@example(command="provision", call=0, plan={"kind": "raw", "raw": b"not json", "seed": 0, "once": False})
@example(command="provision", call=1, plan={"kind": "raw", "raw": b'{"records": [null, 1, "x"]}', "seed": 0,
                                            "once": False})
def test_garbage_answers_are_labctl_errors(lab, corrupt, setup, command, call, plan):
    calls = setup[command]
    method, path = calls[call % len(calls)]
    lab.sim.reset()
    setup["n"] += 1
    state_dir = lab.root / f"h-{setup['n']}"
    state_dir.mkdir(mode=0o700)
    if command == "teardown":
        lab.sim.backend.load(setup["provisioned"])
        (state_dir / "ledger.json").write_text(setup["ledger"])
    corrupt.hits = 0
    corrupt.plan = {**plan, "method": method, "path": path}
    try:
        if command == "provision":
            provision_storage(setup["cfg"], state_dir, plan=False, console=quiet())
        else:
            teardown_storage(setup["cfg"], state_dir, console=quiet())
    except LabctlError as exc:
        assert exc.message
    finally:
        corrupt.plan = None


def test_garbage_at_the_cli_is_a_clear_error_not_a_traceback(lab, corrupt, setup):
    for raw in (b"not json", b'{"records": [null]}', b"\xff"):
        lab.sim.reset()
        corrupt.hits = 0
        corrupt.plan = {"kind": "raw", "raw": raw, "seed": 0, "once": False, "method": "GET",
                        "path": "/api/storage/volumes"}
        rc, out, err = lab.run("provision", "--only", "storage")
        corrupt.plan = None
        assert corrupt.hits
        assert rc == 1, (raw, out, err)
        assert "error: cannot look up volume fg_llm" in err and "fix:" in err, err
        clean_output(out, err)
