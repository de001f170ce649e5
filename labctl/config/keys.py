"""The inventory keys: every `labctl_*` setting with its type and default, exactly as the inventory names
them (docs/design.md, "Inventory contract"), plus size parsing. `labctl.config.lab` turns them into a
LabConfig."""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_MOUNT_OPTIONS = "vers=4.1,proto=tcp,rsize=1048576,wsize=1048576,hard,nconnect=16"
SECURITY_FLAVORS = ("any", "none", "never", "krb5", "krb5i", "krb5p", "ntlm", "sys")
# ONTAP reads `* | ! < > ..` (and `{ }`, `=`, `,`) in a query value as operators, so a name fed into a query
# is a plain name: letters, digits, `_`, `.`, `-` (no `..`).
ONTAP_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,255}")
JUNCTION = re.compile(r"/(?:[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*)?")
# a key of labctl_llmstudio_requirement_overrides: a requirement's name, or a pip option line such as `-i`
REQUIREMENT_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*|--?[a-z][a-z-]*")
NAME_RULE = "letters, digits, _ . - only (ONTAP reads * | ! < > .. in a query as operators)"
MAX_CONSTITUENTS = 200  # ONTAP's maximum number of constituents of one FlexGroup
_UNITS = {
    "": 1,
    "B": 1,
    "K": 1024,
    "KB": 1024,
    "KIB": 1024,
    "M": 1024**2,
    "MB": 1024**2,
    "MIB": 1024**2,
    "G": 1024**3,
    "GB": 1024**3,
    "GIB": 1024**3,
    "T": 1024**4,
    "TB": 1024**4,
    "TIB": 1024**4,
    "P": 1024**5,
    "PB": 1024**5,
    "PIB": 1024**5,
}


def parse_size(value: int | str) -> int:
    """Bytes from an int or a string such as `10TB` / `640 GiB` (powers of 1024, as ONTAP counts)."""
    if isinstance(value, bool):
        raise ValueError("must be a size such as 10TB")
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(value))
    if not match or match.group(2).upper() not in _UNITS:
        raise ValueError(f"{value!r} is not a size; write e.g. 10TB, 500GB or a number of bytes")
    size = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if not math.isfinite(size) or size > 2**63:
        raise ValueError(f"{value!r} is too large")
    return int(size)


def ontap_name(value: str) -> str:
    """`value` when it is a plain ONTAP name (safe inside a REST query); ValueError otherwise."""
    if not ONTAP_NAME.fullmatch(value) or ".." in value:
        raise ValueError(f"{value!r} is not a plain ONTAP name: {NAME_RULE}")
    return value


def junction_path(value: str) -> str:
    """`value` when it is a plain junction path such as `/fg_llm`; ValueError otherwise."""
    if not JUNCTION.fullmatch(value) or ".." in value:
        raise ValueError(f"{value!r} is not a junction path such as /fg_llm: {NAME_RULE}")
    return value


def format_size(value: int) -> str:
    """`10995116277760` → `10 TiB` (exact when possible)."""
    for unit, factor in (
        ("PiB", 1024**5),
        ("TiB", 1024**4),
        ("GiB", 1024**3),
        ("MiB", 1024**2),
        ("KiB", 1024),
    ):
        if value >= factor and value % factor == 0:
            return f"{value // factor} {unit}"
    return f"{value} B"


class LifSpec(BaseModel):
    """A data LIF labctl creates (or reuses when one of that name exists) in the SVM."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    node: str = Field(min_length=1)
    address: str
    netmask: str = "24"
    home_port: str = "e0d"
    service_policy: str = "default-data-files"

    @field_validator("name", "node", "home_port", "service_policy")
    @classmethod
    def _names(cls, value: str) -> str:
        return ontap_name(value)

    @field_validator("address")
    @classmethod
    def _ip(cls, value: str) -> str:
        ipaddress.ip_address(value)
        return value


class LabVars(BaseModel):
    """The raw keys, named exactly as in the inventory (validation errors point at these names)."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    labctl_ontap_host: str = Field(min_length=1)
    labctl_ontap_port: int = Field(443, ge=1, le=65535)
    labctl_ontap_username: str = Field("admin", min_length=1)
    labctl_ontap_password_env: str | None = None
    labctl_ontap_password_file: str | None = None
    labctl_ontap_password: str | None = None
    labctl_allow_plaintext_password: bool = False
    labctl_ontap_ca_file: str | None = None
    labctl_ontap_insecure_skip_verify: bool = False
    labctl_ontap_timeout: float = Field(45.0, gt=0)
    labctl_ontap_job_timeout: int = Field(900, gt=0)
    labctl_ontap_retries: int = Field(5, ge=0, le=20)
    labctl_ontap_retry_backoff: float = Field(1.0, ge=0)
    labctl_svm: str = Field("llm-lab", min_length=1)
    labctl_nfs_v41: bool = True
    labctl_nfs_pnfs: bool = True
    labctl_nfs_tcp_max_xfer_size: int = Field(1048576, ge=8192, le=1048576)
    labctl_export_policy: str = Field("labctl_fg_llm", min_length=1)
    labctl_export_clients: list[str] | None = None
    labctl_export_allow_any: bool = False
    labctl_export_rw_rule: list[str] = ["sys"]
    labctl_export_ro_rule: list[str] = ["sys"]
    labctl_export_superuser: list[str] = ["sys"]
    labctl_flexgroup_name: str = Field("fg_llm", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,196}$")
    labctl_flexgroup_size: int | str = "10TB"
    labctl_flexgroup_aggregates: list[str] | None = None
    labctl_flexgroup_constituents_per_aggregate: int = Field(8, ge=1, le=MAX_CONSTITUENTS)
    labctl_flexgroup_junction: str = "/fg_llm"
    labctl_data_lifs: list[LifSpec] | None = None
    labctl_nfs_server: str | None = None
    labctl_mount_path: str = Field("/mnt/fg_llm", pattern=r"^/\S*$")
    labctl_mount_options: str = DEFAULT_MOUNT_OPTIONS
    labctl_mount_fstab: bool = False
    labctl_proc_mounts: str = "/proc/mounts"
    labctl_proc_mountstats: str = "/proc/self/mountstats"
    labctl_llmstudio_repo: str = "https://github.com/h2oai/h2o-llmstudio.git"
    labctl_llmstudio_version: str = "v1.2.0"
    labctl_llmstudio_dir: str = "/opt/labctl/h2o-llmstudio"
    labctl_llmstudio_venv: str = "/opt/labctl/h2o-llmstudio/.venv"
    labctl_llmstudio_python: str | None = None  # the trainer's interpreter; default: the venv's bin/python
    labctl_model_cache: str = "/var/tmp/labctl/hf-cache"
    # an air-gapped or mirror-only lab (docs/design.md, "Inventory contract")
    labctl_llmstudio_requirement_overrides: dict[str, str | None] = {}
    labctl_llmstudio_pip_args: list[str] = []
    labctl_llmstudio_backbone_dir: str | None = Field(None, pattern=r"^/\S*$")
    labctl_llmstudio_backbone_script: str | None = None
    labctl_dataset_source: str | None = None
    labctl_hf_offline: bool = False
    labctl_triton_cache: str = Field("/var/tmp/labctl/triton-cache", pattern=r"^/\S*$")
    labctl_dataset_dir: str | None = None
    labctl_host_workdir: str = "/var/tmp/labctl"
    # read by the host playbooks only (playbooks/roles/labctl/defaults/main.yml is held equal to these)
    labctl_host_state_dir: str = Field("/var/lib/labctl", pattern=r"^/\S*$")
    labctl_nfs_client_install: bool = True
    labctl_llmstudio_base_python: str = "python3.10"
    labctl_llmstudio_system_site_packages: bool = False
    labctl_prechecks_min_kernel: str = "5.3"
    labctl_prechecks_min_gpus: int = Field(1, ge=0)
    labctl_prechecks_warn_only: list[str] = []
    labctl_teardown_force: bool = False
    labctl_teardown_remove_install: bool = False

    @field_validator("labctl_export_rw_rule", "labctl_export_ro_rule", "labctl_export_superuser")
    @classmethod
    def _flavors(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if v not in SECURITY_FLAVORS]
        if bad or not value:
            raise ValueError(f"each entry must be one of {', '.join(SECURITY_FLAVORS)} (got {bad or value})")
        return value

    @field_validator("labctl_svm", "labctl_export_policy")
    @classmethod
    def _ontap_name(cls, value: str) -> str:
        return ontap_name(value)

    @field_validator("labctl_flexgroup_aggregates")
    @classmethod
    def _aggregates(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("list at least one aggregate, or leave the key out (one per node)")
        return [ontap_name(v) for v in value] if value is not None else None

    @field_validator("labctl_flexgroup_junction")
    @classmethod
    def _junction(cls, value: str) -> str:
        return junction_path(value)

    @field_validator("labctl_nfs_tcp_max_xfer_size")
    @classmethod
    def _xfer(cls, value: int) -> int:
        if value % 4096:
            raise ValueError("must be a multiple of 4096 (ONTAP's rule), e.g. 1048576 or 262144")
        return value

    @field_validator("labctl_flexgroup_size")
    @classmethod
    def _size(cls, value: int | str) -> int | str:
        if parse_size(value) < 1024**3:
            raise ValueError("must be at least 1GB")
        return value

    @field_validator("labctl_llmstudio_requirement_overrides")
    @classmethod
    def _overrides(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        for name, line in value.items():
            if not REQUIREMENT_KEY.fullmatch(name):
                raise ValueError(f"{name!r} is neither a requirement name (e.g. torch) nor a pip option "
                                 "(e.g. --extra-index-url)")
            if line is not None and (not line.strip() or "\n" in line):
                raise ValueError(f"{name}: the replacement is one requirements.txt line, or null to drop it")
        return value

    @field_validator("labctl_mount_options")
    @classmethod
    def _options(cls, value: str) -> str:
        if not value or " " in value.strip():
            raise ValueError("must be one comma-separated option string, e.g. " + DEFAULT_MOUNT_OPTIONS)
        return value.strip()


KNOWN_KEYS = set(LabVars.model_fields)


def default_of(key: str) -> Any:
    """The default of inventory key `key` as LabVars defines it; None for a required or unknown key."""
    spec = LabVars.model_fields.get(key)
    if spec is None or spec.is_required():
        return None
    return spec.get_default(call_default_factory=True)


def resolve_dataset_dir(dataset_dir: str | None, mount_path: str) -> str:
    """Where `train_full.pq` lives: `labctl_dataset_dir`, else `<labctl_mount_path>/data/oasst` (on the
    FlexGroup)."""
    return dataset_dir or f"{mount_path.rstrip('/')}/data/oasst"


def var_or_default(variables: dict[str, Any], key: str) -> Any:
    """`variables[key]` (a host's resolved variables), else LabVars' default for it."""
    value = variables.get(key)
    return default_of(key) if value is None else value
