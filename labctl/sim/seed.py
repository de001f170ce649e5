"""The seeded lab: a 2-node HA ONTAP 9.14.1 cluster with SVM `llm-lab`; overridable from a JSON/YAML file."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

TIB = 1 << 40

DEFAULT_SEED: dict[str, Any] = {
    "cluster": {"name": "cluster1", "version": "9.14.1",
                "version_full": "NetApp Release 9.14.1: Mon Dec 04 12:00:00 UTC 2023"},
    "nodes": [
        {"name": "cluster1-01", "model": "AFF-A400", "ports": ["e0a", "e0b", "e0c", "e0d", "e0e"]},
        {"name": "cluster1-02", "model": "AFF-A400", "ports": ["e0a", "e0b", "e0c", "e0d", "e0e"]},
    ],
    "aggregates": [
        {"name": "aggr1", "node": "cluster1-01", "size": 50 * TIB, "used": 0},
        {"name": "aggr2", "node": "cluster1-02", "size": 50 * TIB, "used": 0},
    ],
    "svms": [
        {"name": "llm-lab",
         "nfs": {"enabled": True, "v3_enabled": True, "v40_enabled": False, "v41_enabled": False,
                 "pnfs_enabled": False, "v42_enabled": False, "tcp_max_transfer_size": 65536},
         "interfaces": [
             {"name": "lif_n1", "node": "cluster1-01", "port": "e0d", "address": "127.0.0.1", "netmask": "8"},
             {"name": "lif_n2", "node": "cluster1-02", "port": "e0d", "address": "127.0.0.2", "netmask": "8"},
         ]},
    ],
}


def load_seed(path: str | Path | None = None) -> dict[str, Any]:
    """The default seed, with the top-level keys of the JSON or YAML file at `path` replacing its own."""
    seed = copy.deepcopy(DEFAULT_SEED)
    if path is None:
        return seed
    text = Path(path).read_text(encoding="utf-8")
    data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a seed file must hold a mapping")
    unknown = set(data) - set(seed)
    if unknown:
        raise ValueError(f"{path}: unknown seed keys {sorted(unknown)} (known: {sorted(seed)})")
    if isinstance(data.get("cluster"), dict):
        data["cluster"] = {**seed["cluster"], **data["cluster"]}
    seed.update(data)
    return seed
