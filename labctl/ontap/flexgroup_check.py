"""Checks on the FlexGroup after provisioning (layout, size, junction, policy) and the ONTAP volume
recovery queue for teardown's leftovers report."""

from __future__ import annotations

from collections import Counter
from typing import Any

from netapp_ontap.resources import CLI

from labctl.config.keys import format_size
from labctl.errors import LabctlError, OntapError
from labctl.ontap.flexgroup import SIZE_TOLERANCE, VolumeState, aggregates, constituents, find_volume
from labctl.ontap.session import Ontap


def verify_flexgroup(ontap: Ontap, vol: VolumeState | None = None) -> dict[str, Any]:
    """Check the FlexGroup is exactly as configured (`vol`: as this command last read it, else read now);
    returns a summary.

    Raises:
        OntapError: any mismatch (constituent count or spread, size, junction, export policy).
    """
    fg = ontap.cfg.flexgroup
    vol = vol or find_volume(ontap)
    if vol is None:
        raise OntapError(f"FlexGroup {fg.name} is missing after provisioning", fix="rerun labctl provision")
    parts = constituents(ontap)
    aggrs = aggregates(ontap)
    per = Counter(p["aggregate"] for p in parts)
    problems = []
    if vol.style and vol.style != "flexgroup":
        problems.append(f"style is {vol.style}, not flexgroup")
    if len(parts) != len(aggrs) * fg.constituents_per_aggregate:
        problems.append(f"{len(parts)} constituents, expected {len(aggrs) * fg.constituents_per_aggregate}")
    if dict(per) != {a: fg.constituents_per_aggregate for a in aggrs}:
        problems.append(
            f"constituents per aggregate {dict(per)}, expected {fg.constituents_per_aggregate} on each "
            f"of {', '.join(aggrs)}"
        )
    if abs(vol.size - fg.size) > SIZE_TOLERANCE * fg.size:
        problems.append(f"size {format_size(vol.size)}, expected {format_size(fg.size)}")
    if vol.junction != fg.junction:
        problems.append(f"junction {vol.junction or '(none)'}, expected {fg.junction}")
    if vol.policy != ontap.cfg.export.policy:
        problems.append(f"export policy {vol.policy or '(none)'}, expected {ontap.cfg.export.policy}")
    if problems:
        raise OntapError(
            f"FlexGroup {fg.name} does not match the configuration: " + "; ".join(problems),
            fix="run `labctl teardown` and provision again (a FlexGroup's layout cannot be changed in place)",
        )
    return {
        "name": fg.name,
        "uuid": vol.uuid,
        "size": vol.size,
        "junction": vol.junction,
        "policy": vol.policy,
        "constituents": len(parts),
        "per_aggregate": dict(per),
    }


def recovery_queue(ontap: Ontap) -> list[str] | None:
    """Volumes of the SVM in ONTAP's recovery queue (deleted, still holding space), or None if unknown."""
    try:
        response = ontap.call(
            "read the volume recovery queue",
            lambda: CLI().execute(
                "volume recovery-queue show",
                privilege_level="advanced",
                vserver=ontap.cfg.svm,
                fields="volume",
            ),
        )
    except LabctlError:
        return None
    body = response.http_response.json() if response.http_response.content else {}
    return [str(r.get("volume")) for r in body.get("records", [])]
