"""The simulator's building blocks without HTTP: query semantics, bodies, seeds."""

from __future__ import annotations

import pytest
import yaml

from labctl.sim import OntapSimulator
from labctl.sim.exceptions import InvalidValue
from labctl.sim.models import MountRefused
from labctl.sim.query import as_bool, as_size, expand_body, matches, select


def test_expand_body_merges_dotted_and_nested_keys():
    body = {"svm.name": "s", "nas": {"path": "/x"}, "nas.export_policy.name": "p", "guarantee.type": "none"}
    assert expand_body(body) == {"svm": {"name": "s"}, "guarantee": {"type": "none"},
                                 "nas": {"path": "/x", "export_policy": {"name": "p"}}}


def test_coercions():
    assert as_bool("True", "f") is True and as_bool("false", "f") is False
    assert as_size("10TB") == 10 * (1 << 40) and as_size(5) == 5 and as_size("1.5g") == 3 << 29
    with pytest.raises(InvalidValue):
        as_bool("yes", "f")


@pytest.mark.parametrize(("field", "expr", "expected"), [
    ("name", "fg*", True), ("name", "!fg*", False), ("name", "x|fg_llm", True), ("size", ">=100", True),
    ("size", "<100", False), ("size", "50..150", True), ("nas.path", "null", False),
    ("comment", "null", True), ("clients.match", "10.0.0.0/24", True),
    ("clients.match", "10.1.0.0/24", False), ("online", "TRUE", True),
])
def test_query_operators(field, expr, expected):
    record = {"name": "fg_llm", "size": 100, "nas": {"path": "/fg"}, "online": True,
              "clients": [{"match": "1.2.3.4"}, {"match": "10.0.0.0/24"}]}
    assert matches(record, field, expr) is expected


def test_select_keeps_the_nested_shape():
    record = {"a": {"b": 1, "c": 2}, "l": [{"x": 1, "y": 2}], "z": 3}
    assert select(record, ["a.b", "l.x", "missing"]) == {"a": {"b": 1}, "l": [{"x": 1}]}
    assert select(record, ["a.*"]) == {"a": {"b": 1, "c": 2}}


def test_seed_file_overrides_lifs(tmp_path):
    seed = tmp_path / "seed.yaml"
    seed.write_text(yaml.safe_dump({"svms": [{"name": "llm-lab", "nfs": {"v41_enabled": True},
                                              "interfaces": [{"name": "d1", "node": "cluster1-02",
                                                              "address": "127.0.0.9"}]}]}))
    with OntapSimulator(seed=seed) as sim:
        state = sim.state()
        lifs = [(i["name"], i["ip"]["address"]) for i in state["interfaces"].values()]
        assert lifs == [("d1", "127.0.0.9")]
        service = next(iter(state["nfs_services"].values()))
        assert service["protocol"]["v41_enabled"] is True
        assert [a["name"] for a in state["aggregates"].values()] == ["aggr1", "aggr2"]
        with pytest.raises(MountRefused, match="access denied"):  # LIF and v4.1 fine; `default` has no rule
            sim.backend.nfs_mount("127.0.0.9", "/", "127.0.0.1", "vers=4.1")
    bad = tmp_path / "bad.json"
    bad.write_text('{"clusters": {}}')
    with pytest.raises(ValueError, match="unknown seed keys"):
        OntapSimulator(seed=bad)


def test_reset_removes_only_volume_directories(tmp_path):
    data = tmp_path / "data"
    (data / "unrelated").mkdir(parents=True)
    (data / "unrelated" / "keep.txt").write_text("mine")
    with OntapSimulator(data_dir=data) as sim:
        (data / "llm-lab" / "llm_lab_root" / "f").write_text("x")
        sim.reset()
        assert (data / "unrelated" / "keep.txt").read_text() == "mine"
        assert list((data / "llm-lab" / "llm_lab_root").iterdir()) == []
