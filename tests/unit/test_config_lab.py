"""The lab config from an Ansible inventory: defaults, password sources, vault, validation messages."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl.config.keys import parse_size
from labctl.config.lab import load_lab_config
from labctl.errors import ConfigError
from labctl.redact import redact

TIB = 1 << 40


def _inventory(
    tmp_path: Path,
    settings: dict[str, Any] | None = None,
    *,
    hosts: dict | None = None,
    password: str = "s3cret-pw",
    raw: str | None = None,
) -> Path:
    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True)
    gpu = (
        hosts
        if hosts is not None
        else {"gpu1": {"ansible_host": "10.0.0.11"}, "gpu2": {"ansible_host": "10.0.0.12"}}
    )
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"gpu_hosts": {"hosts": gpu}}}}))
    (tmp_path / "pw").write_text(password + "\n")
    (tmp_path / "pw").chmod(0o600)
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    base = {
        "labctl_ontap_host": "cluster1.lab",
        "labctl_ontap_password_file": "../pw",
        "labctl_ontap_ca_file": "../ca.pem",
    }
    text = raw if raw is not None else yaml.safe_dump({**base, **(settings or {})})
    (inv / "group_vars" / "all.yml").write_text(text)
    return inv


def test_defaults_follow_the_inventory_contract(tmp_path):
    cfg = load_lab_config(_inventory(tmp_path))
    assert cfg.ontap.host == "cluster1.lab" and cfg.ontap.port == 443 and cfg.ontap.username == "admin"
    assert cfg.ontap.password.get_secret_value() == "s3cret-pw"
    assert cfg.ontap.ca_file == tmp_path / "inv" / ".." / "ca.pem"
    assert cfg.svm == "llm-lab"
    assert (cfg.nfs.v41, cfg.nfs.pnfs, cfg.nfs.tcp_max_xfer_size) == (True, True, 1048576)
    assert cfg.export.policy == "labctl_fg_llm"
    assert cfg.export.clients == ["10.0.0.11", "10.0.0.12"]  # the gpu_hosts' addresses
    assert cfg.export.rw_rule == cfg.export.ro_rule == cfg.export.superuser == ["sys"]
    fg = cfg.flexgroup
    assert (fg.name, fg.size, fg.aggregates, fg.constituents_per_aggregate, fg.junction) == (
        "fg_llm",
        10 * TIB,
        None,
        8,
        "/fg_llm",
    )
    assert cfg.mount.path == "/mnt/fg_llm"
    assert cfg.mount.options == "vers=4.1,proto=tcp,rsize=1048576,wsize=1048576,hard,nconnect=16"
    assert cfg.dataset_dir == "/mnt/fg_llm/data/oasst"
    assert [h.name for h in cfg.hosts] == ["gpu1", "gpu2"]
    assert cfg.vars["labctl_host_workdir"] == "/var/tmp/labctl"
    assert "labctl_ontap_password" not in cfg.vars
    assert redact("pw is s3cret-pw") == "pw is ********"


def test_settings_are_templated_like_ansible_does(tmp_path):
    cfg = load_lab_config(
        _inventory(
            tmp_path, {"labctl_mount_path": "/mnt/x", "labctl_dataset_dir": "{{ labctl_mount_path }}/data"}
        )
    )
    assert cfg.dataset_dir == "/mnt/x/data"


def test_password_from_the_environment(tmp_path, monkeypatch):
    inv = _inventory(tmp_path, {"labctl_ontap_password_file": None, "labctl_ontap_password_env": "ONTAP_PW"})
    monkeypatch.delenv("ONTAP_PW", raising=False)
    with pytest.raises(ConfigError) as exc:
        load_lab_config(inv)
    assert "environment variable ONTAP_PW is not set" in str(exc.value)
    assert "all.yml: labctl_ontap_password_env" in str(exc.value)
    monkeypatch.setenv("ONTAP_PW", "from-env-pw")
    assert load_lab_config(inv).ontap.password.get_secret_value() == "from-env-pw"


def test_password_from_ansible_vault(tmp_path, monkeypatch):
    vault_pw = tmp_path / "vault-pass"
    vault_pw.write_text("vault-secret\n")
    encrypted = subprocess.run(
        [
            "ansible-vault",
            "encrypt_string",
            "--vault-password-file",
            str(vault_pw),
            "vaulted-pw",
            "--name",
            "labctl_ontap_password",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    raw = yaml.safe_dump({"labctl_ontap_host": "c1", "labctl_ontap_ca_file": "../ca.pem"}) + encrypted
    inv = _inventory(tmp_path, raw=raw)
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    with pytest.raises(ConfigError) as exc:
        load_lab_config(inv)
    assert "ANSIBLE_VAULT_PASSWORD_FILE" in str(exc.value)
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(vault_pw))
    cfg = load_lab_config(inv)
    assert cfg.ontap.password.get_secret_value() == "vaulted-pw"
    assert cfg.ontap.password_source.kind == "vault"


def test_plaintext_password_is_refused_unless_allowed(tmp_path):
    inv = _inventory(tmp_path, {"labctl_ontap_password_file": None, "labctl_ontap_password": "plain-pw"})
    with pytest.raises(ConfigError) as exc:
        load_lab_config(inv)
    text = str(exc.value)
    assert text.startswith(f"{inv}/group_vars/all.yml: labctl_ontap_password: a plain-text password")
    assert "labctl_allow_plaintext_password" in text and exc.value.exit_code == 2
    (inv / "group_vars" / "all.yml").write_text(
        (inv / "group_vars" / "all.yml").read_text() + "labctl_allow_plaintext_password: true\n"
    )
    assert load_lab_config(inv).ontap.password.get_secret_value() == "plain-pw"


def test_one_password_source_only(tmp_path, monkeypatch):
    inv = _inventory(tmp_path, {"labctl_ontap_password_env": "X"})
    with pytest.raises(ConfigError, match="more than one password source"):
        load_lab_config(inv)
    inv2 = _inventory(tmp_path / "b", {"labctl_ontap_password_file": None})
    with pytest.raises(ConfigError, match="no ONTAP password source"):
        load_lab_config(inv2)


def test_missing_password_file_names_the_key(tmp_path):
    inv = _inventory(tmp_path, {"labctl_ontap_password_file": "/nonexistent/pw"})
    with pytest.raises(ConfigError) as exc:
        load_lab_config(inv)
    assert "labctl_ontap_password_file" in str(exc.value) and "/nonexistent/pw does not exist" in str(
        exc.value
    )
    assert load_lab_config(inv, resolve_secrets=False).ontap.password is None


def test_tls_is_verified_unless_loudly_opted_out(tmp_path):
    inv = _inventory(tmp_path, {"labctl_ontap_ca_file": None})
    with pytest.raises(ConfigError) as exc:
        load_lab_config(inv)
    assert "TLS to ONTAP is always verified" in str(exc.value)
    inv2 = _inventory(
        tmp_path / "b", {"labctl_ontap_ca_file": None, "labctl_ontap_insecure_skip_verify": True}
    )
    cfg = load_lab_config(inv2)
    assert cfg.ontap.ca_file is None and cfg.ontap.insecure_skip_verify
    inv3 = _inventory(tmp_path / "c", {"labctl_ontap_ca_file": "missing.pem"})
    with pytest.raises(ConfigError, match="CA file .*missing.pem does not exist"):
        load_lab_config(inv3)


def test_exporting_to_everyone_is_refused_unless_asked(tmp_path):
    inv = _inventory(tmp_path, {"labctl_export_clients": ["0.0.0.0/0"]})
    with pytest.raises(ConfigError, match=r"0\.0\.0\.0/0\) is refused"):
        load_lab_config(inv)
    inv2 = _inventory(
        tmp_path / "b", {"labctl_export_clients": ["0.0.0.0/0"], "labctl_export_allow_any": True}
    )
    assert load_lab_config(inv2).export.clients == ["0.0.0.0/0"]


def test_no_gpu_hosts_and_no_clients_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no export clients"):
        load_lab_config(_inventory(tmp_path, hosts={}))


@pytest.mark.parametrize(
    "settings, key, words",
    [
        ({"labctl_ontap_port": "https"}, "labctl_ontap_port", "valid integer"),
        ({"labctl_ontap_port": 70000}, "labctl_ontap_port", "less than or equal to 65535"),
        ({"labctl_flexgroup_size": "ten"}, "labctl_flexgroup_size", "'ten' is not a size"),
        ({"labctl_flexgroup_junction": "fg"}, "labctl_flexgroup_junction", "is not a junction path"),
        ({"labctl_export_rw_rule": ["unix"]}, "labctl_export_rw_rule", "must be one of"),
        ({"labctl_nfs_tcp_max_xfer_size": 100000}, "labctl_nfs_tcp_max_xfer_size", "multiple of 4096"),
        ({"labctl_export_clients": "10.0.0.1"}, "labctl_export_clients", "valid list"),
        (
            {"labctl_nfs_tcp_max_xfer_size": 4 << 20},
            "labctl_nfs_tcp_max_xfer_size",
            "less than or equal to 1048576",
        ),
        (
            {"labctl_data_lifs": [{"name": "l1", "node": "n1", "address": "nope"}]},
            "labctl_data_lifs.0.address",
            "does not appear to be an IPv4 or IPv6 address",
        ),
        ({"labctl_flexgroup_sise": "10TB"}, "labctl_flexgroup_sise", "did you mean labctl_flexgroup_size"),
        (
            {"labctl_llmstudio_requirement_overrides": {"torch; rm -rf": "torch==2.0.1"}},
            "labctl_llmstudio_requirement_overrides",
            "neither a requirement name",
        ),
        (
            {"labctl_llmstudio_requirement_overrides": {"torch": "torch==2.0.1\nevil"}},
            "labctl_llmstudio_requirement_overrides",
            "one requirements.txt line",
        ),
    ],
)
def test_invalid_settings_name_file_key_and_fix(tmp_path, settings, key, words):
    inv = _inventory(tmp_path, settings)
    with pytest.raises(ConfigError) as exc:
        load_lab_config(inv)
    text = str(exc.value)
    assert f"{inv}/group_vars/all.yml: {key}" in text
    assert words in text and "fix:" in text


def test_required_host_and_several_errors_at_once(tmp_path):
    inv = _inventory(
        tmp_path,
        raw=yaml.safe_dump(
            {
                "labctl_ontap_port": "x",
                "labctl_ontap_password_file": "../pw",
                "labctl_ontap_ca_file": "../ca.pem",
            }
        ),
    )
    with pytest.raises(ConfigError) as exc:
        load_lab_config(inv)
    assert "labctl_ontap_host: is required" in str(exc.value) and "labctl_ontap_port" in str(exc.value)


def test_yaml_errors_name_the_line(tmp_path):
    inv = _inventory(tmp_path, raw="labctl_ontap_host: a\n  bad: [\n")
    with pytest.raises(ConfigError) as exc:
        load_lab_config(inv)
    assert "all.yml" in str(exc.value) and "line" in str(exc.value)


def test_vars_in_hosts_yml_are_read_and_named(tmp_path):
    inv = _inventory(tmp_path)
    data = yaml.safe_load((inv / "hosts.yml").read_text())
    data["all"]["vars"] = {"labctl_svm": "Bad Name!", "labctl_ontap_port": "x"}
    (inv / "hosts.yml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as exc:
        load_lab_config(inv)
    assert f"{inv}/hosts.yml: labctl_ontap_port" in str(exc.value)


def test_missing_inventory(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_lab_config(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no inventory file"):
        load_lab_config(tmp_path / "empty")


def test_sizes():
    assert parse_size("10TB") == 10 * TIB == parse_size("10 TiB") == parse_size(10 * TIB)
    assert parse_size("640GB") == 640 << 30
    with pytest.raises(ValueError):
        parse_size("10 parsecs")


def test_the_sample_inventory_documents_every_key_and_loads(monkeypatch):
    from labctl.config.keys import LabVars

    root = Path(__file__).resolve().parents[2] / "inventories" / "sample"
    text = (root / "group_vars" / "all.yml").read_text()
    missing = [k for k in LabVars.model_fields if k not in text]
    assert missing == []
    monkeypatch.setenv("LABCTL_ONTAP_PASSWORD", "x-from-env")
    from labctl.config.inventory import read_inventory
    from labctl.config.lab import build_lab_config

    inv = read_inventory(root)
    inv.lab_vars["labctl_ontap_ca_file"] = None
    inv.lab_vars["labctl_ontap_insecure_skip_verify"] = True
    cfg = build_lab_config(inv)
    assert cfg.flexgroup.size == 10 * TIB and len(cfg.hosts) >= 1
