"""The inventory keys: every `labctl_*` setting with its type, default and meaning, exactly as the inventory
names them (docs/configuration.md is generated from LabVars), plus size parsing. `labctl.config.lab` turns
them into a LabConfig."""

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

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False, use_attribute_docstrings=True)

    labctl_ontap_host: str = Field(min_length=1)
    """Cluster management address (name or IP). Required."""
    labctl_ontap_port: int = Field(443, ge=1, le=65535)
    """HTTPS port of the management LIF."""
    labctl_ontap_username: str = Field("admin", min_length=1)
    """REST user; a role with the endpoints in docs/lab.md is enough."""
    labctl_ontap_password_env: str | None = None
    """Password source 1 of 3: the name of an environment variable holding the password (never the
    password)."""
    labctl_ontap_password_file: str | None = None
    """Password source 2 of 3: a file holding only the password (mode 0600; relative to the inventory dir)."""
    labctl_ontap_password: str | None = None
    """Password source 3 of 3: an ansible-vault value (decrypted with $ANSIBLE_VAULT_PASSWORD_FILE); plain
    text is refused."""
    labctl_allow_plaintext_password: bool = False
    """Accept a plain-text labctl_ontap_password (not recommended)."""
    labctl_ontap_ca_file: str | None = None
    """CA bundle (PEM) that signed the cluster's certificate; TLS is always verified. Required unless the
    opt-out is set."""
    labctl_ontap_insecure_skip_verify: bool = False
    """The loud opt-out of TLS verification (a warning on every run)."""
    labctl_ontap_timeout: float = Field(45.0, gt=0)
    """REST read timeout per call (s)."""
    labctl_ontap_job_timeout: int = Field(900, gt=0)
    """How long an async ONTAP job is followed (s)."""
    labctl_ontap_retries: int = Field(5, ge=0, le=20)
    """Retries of a transient failure (5xx, timeout, reset)."""
    labctl_ontap_retry_backoff: float = Field(1.0, ge=0)
    """First backoff between retries (s, doubling each retry)."""
    labctl_svm: str = Field("llm-lab", min_length=1)
    """The SVM that serves NFS; it must exist (labctl does not create SVMs)."""
    labctl_nfs_v41: bool = True
    """Enable NFS v4.1 on the SVM."""
    labctl_nfs_pnfs: bool = True
    """Enable pNFS (a direct path from each host to every constituent's node)."""
    labctl_nfs_tcp_max_xfer_size: int = Field(1048576, ge=8192, le=1048576)
    """TCP max transfer size (bytes, multiple of 4096). ONTAP's default is 65536 and the smaller side wins:
    without it an rsize=1048576 mount silently gets 64 KiB."""
    labctl_export_policy: str = Field("labctl_fg_llm", min_length=1)
    """Export policy labctl creates (with one rule) and attaches to the FlexGroup."""
    labctl_export_clients: list[str] | None = None
    """Client matches allowed to mount: addresses, networks (CIDR or netmask), host names, .domain,
    @netgroup, sent in canonical form. Default: the ansible_host of every gpu_hosts host."""
    labctl_export_allow_any: bool = False
    """Accept clients that together cover every address (0.0.0.0/0)."""
    labctl_export_rw_rule: list[str] = ["sys"]
    """Security flavors for read-write access (any, none, never, krb5, krb5i, krb5p, ntlm, sys)."""
    labctl_export_ro_rule: list[str] = ["sys"]
    """Security flavors for read-only access."""
    labctl_export_superuser: list[str] = ["sys"]
    """Security flavors granted superuser access."""
    labctl_flexgroup_name: str = Field("fg_llm", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,196}$")
    """Name of the FlexGroup volume."""
    labctl_flexgroup_size: int | str = "10TB"
    """Size, powers of 1024 (10TB = 10 TiB); thin provisioned, security style unix."""
    labctl_flexgroup_aggregates: list[str] | None = None
    """Aggregates to spread the constituents over. Default: one per node (the online one with most free
    space)."""
    labctl_flexgroup_constituents_per_aggregate: int = Field(8, ge=1, le=MAX_CONSTITUENTS)
    """Constituents per aggregate (2 aggregates x 8 = 16 constituents; at most 200 in all)."""
    labctl_flexgroup_junction: str = "/fg_llm"
    """Junction path of the FlexGroup in the SVM's namespace."""
    labctl_data_lifs: list[LifSpec] | None = None
    """Data LIFs (name, node, address; netmask, home_port, service_policy optional) labctl creates and
    removes. Default: reuse the SVM's data LIFs, one per node (pNFS needs one on every node)."""
    labctl_nfs_server: str | None = None
    """The address the GPU hosts mount from. Default: the first data LIF's address."""
    labctl_mount_path: str = Field("/mnt/fg_llm", pattern=r"^/\S*$")
    """Mount point on the GPU hosts."""
    labctl_mount_options: str = DEFAULT_MOUNT_OPTIONS
    """Mount options (one comma-separated string)."""
    labctl_mount_fstab: bool = False
    """Persist the mount in /etc/fstab."""
    labctl_proc_mounts: str = "/proc/mounts"
    """Where the mount verification reads the kernel's mount table (the simulated lab points it at its
    shim)."""
    labctl_proc_mountstats: str = "/proc/self/mountstats"
    """Where the mount verification and the run read mountstats (the simulated lab points it at its shim)."""
    labctl_llmstudio_repo: str = "https://github.com/h2oai/h2o-llmstudio.git"
    """H2O LLM Studio git repository provision clones."""
    labctl_llmstudio_version: str = "v1.2.0"
    """LLM Studio release (tag) provision installs: the last before the 2024 key renames, so every
    reference setting is accepted."""
    labctl_llmstudio_dir: str = "/opt/labctl/h2o-llmstudio"
    """Host-local LLM Studio checkout; provision installs there and `labctl run` starts the trainer there."""
    labctl_llmstudio_venv: str = "/opt/labctl/h2o-llmstudio/.venv"
    """LLM Studio's virtual environment on the hosts."""
    labctl_llmstudio_python: str | None = None
    """The trainer's interpreter. Default: the venv's bin/python."""
    labctl_model_cache: str = "/var/tmp/labctl/hf-cache"
    """Hugging Face cache (HF_HOME of the trainer), host-local."""
    labctl_llmstudio_requirement_overrides: dict[str, str | None] = {}
    """Adjust requirements.txt: a requirement name or pip option line (-i, --extra-index-url) ->
    replacement line, or null to drop it; installed from an adjusted copy, the checkout is never edited.
    PyPI-only v1.2.0: cmake==3.28.1, torch==2.0.1, torchvision==0.15.2, drop -i/--extra-index-url;
    v1.9.0: torch==2.3.1."""
    labctl_llmstudio_pip_args: list[str] = []
    """More `pip install` arguments: a mirror (--index-url URL) or a wheelhouse (--no-index --find-links
    DIR)."""
    labctl_llmstudio_backbone_dir: str | None = Field(None, pattern=r"^/\S*$")
    """A pre-staged model directory on each host, rendered as llm_backbone in place of a hub download."""
    labctl_llmstudio_backbone_script: str | None = None
    """A controller-side script provision runs with the venv's Python (SCRIPT BACKBONE_DIR TRAIN_FULL_PQ)
    when the backbone directory is missing."""
    labctl_dataset_source: str | None = None
    """A controller-side train_full.pq copied to labctl_dataset_dir instead of LLM Studio's hub download."""
    labctl_hf_offline: bool = False
    """Run the trainer with HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1."""
    labctl_triton_cache: str = Field("/var/tmp/labctl/triton-cache", pattern=r"^/\S*$")
    """TRITON_CACHE_DIR of the trainer, host-local (deepspeed writes ~/.triton otherwise)."""
    labctl_dataset_dir: str | None = None
    """Where train_full.pq lives, on the FlexGroup. Default: <labctl_mount_path>/data/oasst."""
    labctl_host_workdir: str = "/var/tmp/labctl"
    """Host-local monitor output and agent files (never on the measured mount)."""
    labctl_host_state_dir: str = Field("/var/lib/labctl", pattern=r"^/\S*$")
    """Root-owned (0700) home of each host's record host.json of what labctl made there; teardown undoes
    only that."""
    labctl_nfs_client_install: bool = True
    """Install the NFS client package (nfs-common / nfs-utils) when missing."""
    labctl_llmstudio_base_python: str = "python3.10"
    """Python that builds the LLM Studio venv."""
    labctl_llmstudio_system_site_packages: bool = False
    """Let the venv see the site-packages of labctl_llmstudio_base_python: a venv's own, then its base's."""
    labctl_prechecks_min_kernel: str = "5.3"
    """Minimum kernel (nconnect needs 5.3)."""
    labctl_prechecks_min_gpus: int = Field(1, ge=0)
    """Minimum GPUs per host."""
    labctl_prechecks_warn_only: list[str] = []
    """Prechecks that only warn, e.g. [time_sync]."""
    labctl_teardown_force: bool = False
    """Lazy-unmount a busy mount (`teardown --force`)."""
    labctl_teardown_remove_install: bool = False
    """Also remove the LLM Studio install and model cache (`teardown --remove-install`)."""

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
