"""The lab's settings: the `labctl_*` keys of the inventory's `all` group, validated before anything is
touched.

    from labctl.config.lab import load_lab_config
    cfg = load_lab_config(inventory_dir)          # raises ConfigError naming the file, the key and the fix
    cfg.mount.path, cfg.mount.options, cfg.hosts, cfg.flexgroup.size, cfg.ontap.password.get_secret_value()

Keys and defaults are defined once in `labctl.config.keys` (docs/configuration.md is generated from it);
inventories/sample documents each one.
"""

from __future__ import annotations

import difflib
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from labctl.config import keys
from labctl.config.clients import client_text, covers_everything, parse_client
from labctl.config.inventory import LAB_GROUP, InventoryData, InventoryHost, read_inventory
from labctl.config.keys import KNOWN_KEYS, MAX_CONSTITUENTS, LabVars, LifSpec, parse_size
from labctl.config.secrets import PasswordSource, resolve_password
from labctl.errors import ConfigError
from labctl.redact import register_secret

log = logging.getLogger(__name__)


class OntapSettings(BaseModel):
    """How to reach the cluster (the password is a SecretStr: it never prints)."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int
    username: str
    password: SecretStr | None
    password_source: PasswordSource
    ca_file: Path | None
    insecure_skip_verify: bool
    timeout: float
    job_timeout: int
    retries: int
    retry_backoff: float

    @property
    def endpoint(self) -> str:
        """`host:port` for messages."""
        return f"{self.host}:{self.port}"


class NfsSettings(BaseModel):
    """The SVM's NFS service settings labctl ensures."""

    model_config = ConfigDict(frozen=True)

    v41: bool
    pnfs: bool
    tcp_max_xfer_size: int


class ExportSettings(BaseModel):
    """The export policy and its one rule."""

    model_config = ConfigDict(frozen=True)

    policy: str
    clients: list[str]
    rw_rule: list[str]
    ro_rule: list[str]
    superuser: list[str]


class FlexGroupSettings(BaseModel):
    """The FlexGroup volume; `aggregates` None means one per node, discovered on the cluster."""

    model_config = ConfigDict(frozen=True)

    name: str
    size: int
    aggregates: list[str] | None
    constituents_per_aggregate: int
    junction: str


class MountSettings(BaseModel):
    """How the GPU hosts mount the FlexGroup."""

    model_config = ConfigDict(frozen=True)

    path: str
    options: str
    fstab: bool
    proc_mounts: str
    proc_mountstats: str


class LabConfig(BaseModel):
    """Everything labctl knows about one lab, validated. `vars` keeps every `labctl_*` key as resolved."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    inventory: Path
    ontap: OntapSettings
    svm: str
    nfs: NfsSettings
    export: ExportSettings
    flexgroup: FlexGroupSettings
    data_lifs: list[LifSpec] | None
    nfs_server: str | None
    mount: MountSettings
    hosts: list[InventoryHost]
    dataset_dir: str
    host_workdir: str
    vars: dict[str, Any]
    origins: dict[str, str]

    def where(self, key: str) -> str:
        """`<file>: <key>` for error messages about a setting."""
        return f"{self.origins.get(key, self.inventory / 'group_vars' / 'all.yml')}: {key}"


_FIXES: dict[str, str] = {
    "labctl_ontap_host": "set it to the cluster management address, e.g. `labctl_ontap_host: 10.0.0.10`",
    "labctl_flexgroup_size": "write a size such as 10TB",
    "labctl_export_clients": "list client addresses or subnets, e.g. [10.0.0.11, 10.0.0.0/24]",
    "labctl_data_lifs": "each entry needs name, node and address (netmask, home_port optional)",
}


def _format_errors(exc: ValidationError, inv: InventoryData) -> ConfigError:
    lines: list[tuple[str, str, str]] = []
    for err in exc.errors():
        key = str(err["loc"][0]) if err["loc"] else "?"
        sub = ".".join(str(p) for p in err["loc"][1:])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "is required"
        fix = _FIXES.get(key, "see inventories/sample/group_vars/all.yml for the expected form")
        lines.append((f"{inv.where(key)}: {key}{'.' + sub if sub else ''}", msg, fix))
    if len(lines) == 1:
        where, msg, fix = lines[0]
        return ConfigError(msg, where=where, fix=fix)
    body = "invalid lab settings:\n" + "\n".join(f"  {w}: {m}" for w, m, _ in lines)
    return ConfigError(body, fix="; ".join(dict.fromkeys(f for _, _, f in lines)))


_SHORT_KEYS = [k.removeprefix("labctl_") for k in KNOWN_KEYS]  # the shared prefix would match anything


def _check_unknown(inv: InventoryData) -> None:
    """A near-certain typo of a key is an error; another unknown `labctl_*` key a warning (as in Ansible)."""
    for key in inv.lab_vars:
        if key.startswith("labctl_") and key not in KNOWN_KEYS:
            close = difflib.get_close_matches(key, KNOWN_KEYS, n=1, cutoff=0.85)
            if close:
                raise ConfigError(
                    f"unknown key (did you mean {close[0]}?)",
                    where=f"{inv.where(key)}: {key}",
                    fix=f"rename it to {close[0]}",
                )
            near = difflib.get_close_matches(key.removeprefix("labctl_"), _SHORT_KEYS, n=1, cutoff=0.6)
            hint = f" (did you mean labctl_{near[0]}?)" if near else ""
            log.warning("%s: unknown key %s is ignored%s", inv.where(key), key, hint)


def _password_source(v: LabVars, inv: InventoryData) -> PasswordSource:
    given = [
        k
        for k in ("labctl_ontap_password_env", "labctl_ontap_password_file", "labctl_ontap_password")
        if getattr(v, k) is not None
    ]
    if not given:
        raise ConfigError(
            "no ONTAP password source",
            where=f"{inv.where('labctl_ontap_password_file')}",
            fix="set labctl_ontap_password_file (a 0600 file), labctl_ontap_password_env (a variable "
            "name), or a vault-encrypted labctl_ontap_password",
        )
    if len(given) > 1:
        raise ConfigError(
            f"more than one password source: {', '.join(given)}",
            where=inv.where(given[0]),
            fix="keep exactly one of them",
        )
    key = given[0]
    where = inv.where(key)
    if key == "labctl_ontap_password_env":
        return PasswordSource("env", key, where, env=v.labctl_ontap_password_env)
    if key == "labctl_ontap_password_file":
        path = Path(v.labctl_ontap_password_file or "").expanduser()
        return PasswordSource("file", key, where, path=path if path.is_absolute() else inv.path / path)
    register_secret(v.labctl_ontap_password)  # masked from here on, even when refused
    if key in inv.vaulted:
        return PasswordSource("vault", key, where, value=v.labctl_ontap_password)
    if not v.labctl_allow_plaintext_password:
        raise ConfigError(
            "a plain-text password in the inventory is refused",
            where=f"{where}: {key}",
            fix="encrypt it (ansible-vault encrypt_string), or use labctl_ontap_password_file / "
            "_env; only if you must, set labctl_allow_plaintext_password: true",
        )
    return PasswordSource("plaintext", key, where, value=v.labctl_ontap_password)


def _ca_file(v: LabVars, inv: InventoryData) -> Path | None:
    if v.labctl_ontap_ca_file:
        path = Path(v.labctl_ontap_ca_file).expanduser()
        path = path if path.is_absolute() else inv.path / path
        if not path.is_file():
            raise ConfigError(
                f"CA file {path} does not exist",
                where=f"{inv.where('labctl_ontap_ca_file')}: labctl_ontap_ca_file",
                fix="point it at the PEM bundle that signed the cluster's "
                "certificate (e.g. fetched with `openssl s_client -showcerts`)",
            )
        return path
    if not v.labctl_ontap_insecure_skip_verify:
        raise ConfigError(
            "no CA file: TLS to ONTAP is always verified",
            where=f"{inv.where('labctl_ontap_ca_file')}: labctl_ontap_ca_file",
            fix="set labctl_ontap_ca_file to the cluster's CA bundle (opt out only with "
            "labctl_ontap_insecure_skip_verify: true)",
        )
    return None


def _clients(v: LabVars, hosts: list[InventoryHost], inv: InventoryData) -> list[str]:
    """The export rule's client matches, validated as addresses, networks or names (never everyone, unless
    `labctl_export_allow_any`)."""
    where = f"{inv.where('labctl_export_clients')}: labctl_export_clients"
    clients = v.labctl_export_clients if v.labctl_export_clients is not None else [h.address for h in hosts]
    if not clients:
        raise ConfigError(
            f"no export clients: the {LAB_GROUP} group is empty and labctl_export_clients is unset",
            where=where,
            fix=f"add hosts to {LAB_GROUP} in hosts.yml or list labctl_export_clients",
        )
    parsed = []
    for text in clients:
        try:
            parsed.append(parse_client(text))
        except ValueError as exc:
            origin = "" if v.labctl_export_clients is not None else f" (the address of a {LAB_GROUP} host)"
            raise ConfigError(f"{exc}{origin}", where=where, fix=_FIXES["labctl_export_clients"]) from None
    if covers_everything(parsed) and not v.labctl_export_allow_any:
        raise ConfigError(
            "together these clients cover every address: exporting to every address (0.0.0.0/0) is refused",
            where=where,
            fix="list the GPU hosts' addresses, or set labctl_export_allow_any: true",
        )
    return list(dict.fromkeys(client_text(c) for c in parsed))


def _check_constituents(v: LabVars, inv: InventoryData) -> None:
    """Listed aggregates × constituents per aggregate within ONTAP's FlexGroup limit (discovered aggregates
    are checked by provision before it changes anything)."""
    aggrs, per = v.labctl_flexgroup_aggregates, v.labctl_flexgroup_constituents_per_aggregate
    if aggrs and len(aggrs) * per > MAX_CONSTITUENTS:
        key = "labctl_flexgroup_constituents_per_aggregate"
        raise ConfigError(
            f"{len(aggrs)} aggregates × {per} = {len(aggrs) * per} constituents; a FlexGroup has at most "
            f"{MAX_CONSTITUENTS}",
            where=f"{inv.where(key)}: {key}",
            fix=f"lower it to at most {MAX_CONSTITUENTS // len(aggrs)} (8 is the usual choice)",
        )


def build_lab_config(inv: InventoryData, *, resolve_secrets: bool = True) -> LabConfig:
    """Validate the inventory's lab vars into a LabConfig.

    Raises:
        ConfigError: naming the file, the key and the fix.
    """
    _check_unknown(inv)
    try:
        v = LabVars.model_validate(inv.lab_vars)
    except ValidationError as exc:
        raise _format_errors(exc, inv) from None
    _check_constituents(v, inv)
    hosts = inv.groups.get(LAB_GROUP, [])
    source = _password_source(v, inv)
    password = resolve_password(source) if resolve_secrets else None
    ontap = OntapSettings(
        host=v.labctl_ontap_host,
        port=v.labctl_ontap_port,
        username=v.labctl_ontap_username,
        password=password,
        password_source=source,
        ca_file=_ca_file(v, inv),
        insecure_skip_verify=v.labctl_ontap_insecure_skip_verify,
        timeout=v.labctl_ontap_timeout,
        job_timeout=v.labctl_ontap_job_timeout,
        retries=v.labctl_ontap_retries,
        retry_backoff=v.labctl_ontap_retry_backoff,
    )
    resolved = v.model_dump()
    resolved.pop("labctl_ontap_password", None)
    dataset_dir = keys.resolve_dataset_dir(v.labctl_dataset_dir, v.labctl_mount_path)
    resolved["labctl_dataset_dir"] = dataset_dir
    return LabConfig(
        inventory=inv.path,
        ontap=ontap,
        svm=v.labctl_svm,
        nfs=NfsSettings(
            v41=v.labctl_nfs_v41, pnfs=v.labctl_nfs_pnfs, tcp_max_xfer_size=v.labctl_nfs_tcp_max_xfer_size
        ),
        export=ExportSettings(
            policy=v.labctl_export_policy,
            clients=_clients(v, hosts, inv),
            rw_rule=v.labctl_export_rw_rule,
            ro_rule=v.labctl_export_ro_rule,
            superuser=v.labctl_export_superuser,
        ),
        flexgroup=FlexGroupSettings(
            name=v.labctl_flexgroup_name,
            size=parse_size(v.labctl_flexgroup_size),
            aggregates=v.labctl_flexgroup_aggregates,
            constituents_per_aggregate=v.labctl_flexgroup_constituents_per_aggregate,
            junction=v.labctl_flexgroup_junction,
        ),
        data_lifs=v.labctl_data_lifs,
        nfs_server=v.labctl_nfs_server,
        mount=MountSettings(
            path=v.labctl_mount_path,
            options=v.labctl_mount_options,
            fstab=v.labctl_mount_fstab,
            proc_mounts=v.labctl_proc_mounts,
            proc_mountstats=v.labctl_proc_mountstats,
        ),
        hosts=hosts,
        dataset_dir=dataset_dir,
        host_workdir=v.labctl_host_workdir,
        vars=resolved,
        origins=dict(inv.origins),
    )


def load_lab_config(inventory: Path, *, resolve_secrets: bool = True) -> LabConfig:
    """Read and validate an inventory directory (see the module docstring).

    `resolve_secrets=False` skips reading the ONTAP password (for host-only commands).

    Raises:
        ConfigError: the inventory is missing or invalid (message names the file, the key and the fix).
    """
    return build_lab_config(read_inventory(Path(inventory)), resolve_secrets=resolve_secrets)
