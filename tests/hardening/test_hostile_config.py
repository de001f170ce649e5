"""Hostile experiment.yaml and inventory vars (hypothesis): a validated model or a ConfigError naming the
place, never another exception; at the CLI a clear message and exit code 2, never a traceback."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from labctl.config.experiment import Experiment, load_experiment, parse_experiment
from labctl.config.inventory import InventoryData, InventoryHost
from labctl.config.keys import KNOWN_KEYS, LabVars
from labctl.config.lab import build_lab_config, load_lab_config
from labctl.errors import ConfigError
from tests.hardening.util import clean_output

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=24)
    | st.sampled_from(["10TB", "1e400TB", "/mnt/x;$(reboot)", "`id`", "0.0.0.0/0", "{{ nope }}", "-1", "nan",
                       ".inf", "sys", "vers=4.1", "a\nb", "\x00", "9" * 40])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=6,
)


def _finite(model: Any) -> None:
    """Every float a validated model holds is finite (an `inf` timeout or lead time would hang a run)."""
    if isinstance(model, BaseModel):
        values = model.model_dump().values()
    elif isinstance(model, dict):
        values = model.values()
    else:
        values = [model]
    for value in values:
        if isinstance(value, float):
            assert math.isfinite(value), model
        elif isinstance(value, dict):
            _finite(list(value.values()))
        elif isinstance(value, list):
            for item in value:
                _finite(item)


# --- experiment.yaml ---------------------------------------------------------------------------------------
def _experiment_shape() -> st.SearchStrategy[dict[str, Any]]:
    """Mappings with the schema's own keys (so that the nested models are reached), values hostile."""
    sections = {
        name: list(field.annotation.model_fields)  # type: ignore[union-attr]
        for name, field in Experiment.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    }
    top = sorted(Experiment.model_fields)
    nested = st.sampled_from(sorted(sections)).flatmap(
        lambda s: st.tuples(st.just(s), st.dictionaries(st.sampled_from(sections[s] + ["bogus"]), VALUES,
                                                        max_size=4))
    )
    flat = st.tuples(st.sampled_from(top), VALUES)
    return st.lists(nested | flat, max_size=5).map(dict)


@settings(max_examples=150, deadline=None)
@given(raw=_experiment_shape())
@example(raw={"monitors": {"lead_s": math.inf}})
@example(raw={"training": {"learning_rate": math.nan}})
@example(raw={"name": "x;$(reboot)"})
@example(raw={"output_dir": "relative/path"})
def test_experiment_mappings_validate_or_name_the_key(raw):
    try:
        exp = parse_experiment(raw, where="experiment.yaml")
    except ConfigError as exc:
        assert exc.where == "experiment.yaml" and exc.message and exc.fix
        return
    _finite(exp)
    assert exp.name[0].isalnum() and not set(exp.name) & set(";$()`|&<> \n")


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
@example(data=b"\xff\xfe not utf-8")
@example(data=b"[" * 5000)  # nested deeper than the YAML parser's recursion
@example(data=b"a: !!python/object/apply:os.system [id]")
@example(data=b"&a [*a, *a]")
def test_experiment_files_load_or_fail_with_a_config_error(data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "experiment.yaml"
        path.write_bytes(data)
        try:
            exp = load_experiment(path)
        except ConfigError as exc:
            assert exc.where == str(path) and exc.message
            return
        _finite(exp)


def test_a_hostile_experiment_file_at_the_cli_exits_2(tmp_path, capsys):
    from labctl.cli import main

    for n, data in enumerate([b"\xff\xfe", b"[" * 5000, b"training: {learning_rate: .inf}", b"- a\n- b"]):
        path = tmp_path / f"e{n}.yaml"
        path.write_bytes(data)
        rc = main(["-i", str(tmp_path / "no-inventory"), "run", str(path), "--runs-dir", str(tmp_path / "r")])
        out, err = capsys.readouterr()
        assert rc == 2, (data[:20], out, err)
        assert str(path) in err
        clean_output(out, err)


# --- inventory vars ----------------------------------------------------------------------------------------
BASE = {"labctl_ontap_host": "10.0.0.10", "labctl_ontap_password_env": "LABCTL_FUZZ_PW",
        "labctl_ontap_insecure_skip_verify": True}
HOSTS = {"gpu_hosts": [InventoryHost("gpu1", "10.0.0.11"), InventoryHost("gpu2", "10.0.0.12")]}
KEYS = sorted(KNOWN_KEYS - set(BASE)) + ["labctl_unknown_keyy", "labctl_ontap_hots"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(overrides=st.dictionaries(st.sampled_from(KEYS + sorted(BASE)), VALUES, max_size=4))
@example(overrides={"labctl_flexgroup_size": "1" + "0" * 400 + "TB"})
@example(overrides={"labctl_ontap_timeout": math.inf})
@example(overrides={"labctl_ontap_retry_backoff": math.nan})
@example(overrides={"labctl_flexgroup_name": "fg;$(reboot)"})
@example(overrides={"labctl_data_lifs": [{"name": "l", "node": "n", "address": "1.2.3.4;id"}]})
@example(overrides={"labctl_export_clients": ["0.0.0.0/0"]})
def test_inventory_vars_validate_or_name_file_and_key(tmp_path, overrides):
    inv = InventoryData(path=tmp_path, lab_vars={**BASE, **overrides}, groups=HOSTS)
    try:
        cfg = build_lab_config(inv, resolve_secrets=False)
    except ConfigError as exc:
        assert exc.message and exc.fix, exc
        assert "all.yml" in str(exc) or "$" in str(exc), exc  # names the file (or the variable) to fix
        return
    _finite(cfg.model_dump(exclude={"vars"}))  # `vars` also carries the host-phase keys, unvalidated here
    assert cfg.flexgroup.size >= 1024**3
    assert not set(cfg.flexgroup.name) & set(";$()`|&<> \n")
    assert "0.0.0.0/0" not in cfg.export.clients or overrides.get("labctl_export_allow_any") is True


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=120) | VALUES.map(lambda v: yaml.safe_dump({**BASE, "labctl_svm": v}).encode())
       | VALUES.map(lambda v: yaml.safe_dump(v).encode()))
@example(data=b"\xff\xfe")
@example(data=b"[" * 5000)
@example(data=b"labctl_ontap_host: [unclosed")
@example(data=b"- just\n- a list")
def test_inventory_files_load_or_fail_with_a_config_error(tmp_path_factory, data):
    inventory = tmp_path_factory.mktemp("inv")
    (inventory / "group_vars").mkdir()
    (inventory / "hosts.yml").write_text(yaml.safe_dump(
        {"all": {"children": {"gpu_hosts": {"hosts": {"gpu1": {"ansible_host": "10.0.0.11"}}}}}}))
    (inventory / "group_vars" / "all.yml").write_bytes(data)
    try:
        cfg = load_lab_config(inventory, resolve_secrets=False)
    except ConfigError as exc:
        assert exc.message and exc.where, exc
        return
    _finite(cfg.model_dump(exclude={"vars"}))


def test_labvars_refuse_non_finite_numbers():
    for key in ("labctl_ontap_timeout", "labctl_ontap_retry_backoff"):
        try:
            LabVars.model_validate({**BASE, key: math.inf})
        except ValueError:
            continue
        raise AssertionError(f"{key}: inf accepted")
