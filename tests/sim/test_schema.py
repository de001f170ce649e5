"""The simulator's records against the API's own schema (the netapp-ontap SDK's) and the fields they carry."""

from __future__ import annotations

from typing import Any

import pytest
from netapp_ontap.resources import Volume
from netapp_ontap.resources.volume import VolumeSchema

from labctl.sim.schema import ApiField, field_set, lookup, schema_for, value_fits
from labctl.sim.urls import API_ROUTES

FG = {"name": "fg_new", "svm.name": "llm-lab", "aggregates": [{"name": "aggr1"}, {"name": "aggr2"}],
      "constituents_per_aggregate": 2, "size": "1TB", "guarantee.type": "none", "nas.path": "/fg_new"}
SERVED = [t for t, methods in API_ROUTES if "{" not in t and "GET" in methods and schema_for(t) is not None]


def mismatches(schema: Any, record: dict[str, Any], prefix: str = "") -> list[str]:
    """Every returned field the schema lacks, or whose value has another JSON type than the schema's."""
    found = []
    for key, value in record.items():
        dotted = prefix + key
        field: ApiField | None = lookup(schema, dotted)
        if field is None:
            found.append(f"{dotted}: not in the schema")
        elif not value_fits(field, value):
            found.append(f"{dotted}: {value!r} is not {'a list of ' if field.many else ''}{field.kind}")
        elif field.kind == "object":
            for item in value if field.many else [value]:
                if isinstance(item, dict):
                    found.extend(mismatches(schema, item, dotted + "."))
    return found


def test_field_set_comes_from_the_sdk_schema():
    fields = field_set(schema_for("/api/storage/volumes/{uuid}"))
    assert schema_for("/api/storage/volumes") is VolumeSchema
    assert fields["nas.unix_permissions"].kind == "integer"
    assert fields["svm.name"].kind == "string" and fields["aggregates"].many
    assert fields["statistics.throughput_raw.read"].kind == "integer"
    assert "volume-count" in field_set(schema_for("/api/storage/aggregates"))
    assert schema_for("/api/private/cli/volume/recovery-queue") is None


@pytest.mark.parametrize("path", SERVED)
def test_every_returned_field_exists_in_the_schema_with_its_type(raw, path):
    assert raw("POST", "/api/storage/volumes?return_timeout=30", json=FG).status_code == 201
    qtree = {"name": "q", "volume": {"name": FG["name"]}, "svm": {"name": "llm-lab"}}
    assert raw("POST", "/api/storage/qtrees?return_timeout=10", json=qtree).status_code == 201
    rule = {"svm": {"name": "llm-lab"}, "volume": {"name": FG["name"]}, "type": "user",
            "users": [{"name": "u"}], "qtree": {"name": "q"}, "space": {"hard_limit": "1GB"},
            "user_mapping": False}
    assert raw("POST", "/api/storage/quota/rules?return_timeout=10", json=rule).status_code == 201
    flexvol = {"name": "v_moved", "svm": {"name": "llm-lab"}, "aggregates": [{"name": "aggr1"}]}
    assert raw("POST", "/api/storage/volumes?return_timeout=10", json=flexvol).status_code == 201
    moved = raw("GET", "/api/storage/volumes?name=v_moved").json()["records"][0]["uuid"]
    move = {"movement": {"destination_aggregate": {"name": "aggr2"}}}
    assert raw("PATCH", f"/api/storage/volumes/{moved}?return_timeout=10", json=move).status_code == 200
    queries = ["fields=*", "fields=**"]
    if path.endswith("volumes"):
        queries.append("fields=**&is_constituent=true")
    schema = schema_for(path)
    seen = 0
    for query in queries:
        answer = raw("GET", f"{path}?{query}")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        records = body.get("records", [body])
        for record in records:
            assert mismatches(schema, record) == []
            href = record.get("_links", {}).get("self", {}).get("href")
            if href and href != path:
                one = raw("GET", href)
                assert one.status_code == 200 and mismatches(schema, one.json()) == []
                seen += 1
    assert seen or path in ("/api/cluster", "/api/network/fc/interfaces")


def test_new_flexgroup_record_carries_autosize_efficiency_and_statistics(raw, ontap):
    assert raw("POST", "/api/storage/volumes?return_timeout=30", json=FG).status_code == 201
    record = raw("GET", "/api/storage/volumes?name=fg_new&fields=*").json()["records"][0]
    assert record["autosize"]["mode"] == "off"
    assert set(record["autosize"]) == {"mode", "maximum", "minimum", "grow_threshold", "shrink_threshold"}
    assert record["efficiency"]["state"] == "enabled"
    assert record["statistics"]["throughput_raw"] == {"read": 0, "write": 0, "other": 0, "total": 0}
    assert record["statistics"]["timestamp"] and record["statistics"]["status"] == "ok"
    assert set(record["metric"]) >= {"iops", "throughput", "latency", "duration", "status", "timestamp"}
    assert record["snapshot_count"] == 0 and record["access_time_enabled"] is True
    assert record["snapshot_directory_access_enabled"] is True
    assert record["clone"] == {"is_flexclone": False} and record["analytics"]["state"] == "off"
    assert "movement" in record
    volume = Volume.find(name="fg_new", fields="autosize,efficiency.state,statistics")
    assert volume.autosize.mode == "off" and volume.efficiency.state == "enabled"
    assert volume.statistics.throughput_raw.total == 0


COUNTED = ["/api/cluster/nodes", "/api/storage/aggregates", "/api/network/ip/interfaces"]


@pytest.mark.parametrize("path", COUNTED)
def test_nodes_aggregates_and_interfaces_carry_statistics_and_metric(raw, path):
    for record in raw("GET", f"{path}?fields=statistics,metric").json()["records"]:
        assert record["statistics"]["status"] == "ok" and record["statistics"]["timestamp"]
        assert record["metric"]["duration"] == "PT15S"


def test_aggregate_volume_count_is_spelled_as_the_schema_says(raw):
    records = raw("GET", "/api/storage/aggregates?fields=volume-count").json()["records"]
    assert all(isinstance(r["volume-count"], int) and "volume_count" not in r for r in records)
    assert raw("GET", "/api/storage/aggregates?fields=volume_count").json()["error"]["code"] == "262197"
