"""ONTAP REST conventions: HAL envelope, fields, filters, paging, dotted bodies, slashes, Location."""

from __future__ import annotations

from netapp_ontap.resources import Volume

FG = {"name": "fg_llm", "svm.name": "llm-lab", "aggregates": [{"name": "aggr1"}, {"name": "aggr2"}],
      "constituents_per_aggregate": "8", "size": "10TB", "guarantee.type": "none", "nas.path": "/fg_llm"}


def names(answer) -> list[str]:
    return [r["name"] for r in answer.json()["records"]]


def test_collection_envelope_and_default_fields(raw):
    body = raw("GET", "/api/storage/aggregates").json()
    assert body["num_records"] == 2 and body["_links"]["self"]["href"] == "/api/storage/aggregates"
    record = body["records"][0]
    assert set(record) == {"uuid", "name", "_links"}
    assert record["_links"]["self"]["href"] == f"/api/storage/aggregates/{record['uuid']}"


def test_fields_star_nested_and_trailing_comma(raw):
    full = raw("GET", "/api/storage/aggregates?fields=*").json()["records"][0]
    assert {"state", "node", "space", "block_storage"} <= set(full)
    some = raw("GET", "/api/storage/aggregates?name=aggr1&fields=space.block_storage.size,node.name,").json()
    record = some["records"][0]
    assert record["space"] == {"block_storage": {"size": 50 * (1 << 40)}}
    assert record["node"] == {"name": "cluster1-01"} and record["name"] == "aggr1"
    nfs = raw("GET", "/api/protocols/nfs/services?fields=protocol.v41_features.*").json()["records"][0]
    assert set(nfs["protocol"]) == {"v41_features"} and "pnfs_enabled" in nfs["protocol"]["v41_features"]
    assert "uuid" in nfs["svm"]


def test_query_operators(raw):
    assert names(raw("GET", "/api/storage/aggregates?name=aggr*")) == ["aggr1", "aggr2"]
    assert names(raw("GET", "/api/storage/aggregates?name=!aggr1")) == ["aggr2"]
    assert names(raw("GET", "/api/storage/aggregates?name=aggr2|aggr1")) == ["aggr1", "aggr2"]
    assert names(raw("GET", "/api/network/ip/interfaces?ip.address=127.0.0.2")) == ["lif_n2"]
    raw("POST", "/api/storage/volumes", json=FG)
    raw("POST", "/api/storage/volumes", json={"name": "small", "svm.name": "llm-lab", "size": "1GB"})
    assert names(raw("GET", "/api/storage/volumes?size=>2GB")) == ["fg_llm"]
    assert names(raw("GET", "/api/storage/volumes?size=100MB..2000000000")) == ["llm_lab_root", "small"]
    echoed = raw("GET", "/api/storage/volumes?is_svm_root=false&svm.name=llm-lab").json()["records"]
    assert [(r["name"], r["is_svm_root"], r["svm"]["name"]) for r in echoed] == [
        ("fg_llm", False, "llm-lab"), ("small", False, "llm-lab")]
    assert names(raw("GET", "/api/storage/volumes?is_constituent=True&aggregates.name=aggr2&name=*__000*")) \
        == [f"fg_llm__{i:04d}" for i in (2, 4, 6, 8)]


def test_paging_with_next_links(raw, ontap):
    raw("POST", "/api/storage/volumes", json=FG)
    first = raw("GET", "/api/storage/volumes?is_constituent=true&max_records=5&fields=size").json()
    assert first["num_records"] == 5 and "next" in first["_links"]
    seen, page = [], first
    while True:
        seen += [r["name"] for r in page["records"]]
        if "next" not in page["_links"]:
            break
        page = raw("GET", page["_links"]["next"]["href"]).json()
    assert seen == [f"fg_llm__{i:04d}" for i in range(1, 17)]
    sdk = list(Volume.get_collection(is_constituent=True, max_records=3, fields="name"))
    assert [v.name for v in sdk] == seen
    count = raw("GET", "/api/storage/volumes?is_constituent=true&return_records=false").json()
    assert count["num_records"] == 16 and "records" not in count


def test_dotted_keys_string_booleans_and_return_timeout(raw):
    created = raw("POST", "/api/storage/volumes/?return_timeout=30", json=FG)
    assert created.status_code == 201 and created.headers["Location"] == "/api/storage/volumes/?name=fg_llm"
    assert created.json()["job"]["_links"]["self"]["href"].startswith("/api/cluster/jobs/")
    volume = raw("GET", "/api/storage/volumes/?name=fg_llm&fields=guarantee,nas,size").json()["records"][0]
    assert volume["guarantee"]["type"] == "none" and volume["nas"]["path"] == "/fg_llm"
    svm = raw("GET", "/api/svm/svms?name=llm-lab").json()["records"][0]["uuid"]
    patched = raw("PATCH", f"/api/protocols/nfs/services/{svm}/?return_timeout=30",
                  json={"protocol.v41_enabled": "true", "protocol.v41_features.pnfs_enabled": "True"})
    assert patched.status_code == 200 and patched.json() == {}
    service = raw("GET", f"/api/protocols/nfs/services/{svm}").json()
    assert service["protocol"]["v41_enabled"] is True and service["protocol"]["v41_features"]["pnfs_enabled"]


def test_create_returns_records_and_location(raw):
    policy = raw("POST", "/api/protocols/nfs/export-policies?return_records=true",
                 json={"name": "p", "svm.name": "llm-lab"})
    assert policy.status_code == 201
    pid = policy.json()["records"][0]["id"]
    assert policy.headers["Location"] == f"/api/protocols/nfs/export-policies/{pid}"
    rules = f"/api/protocols/nfs/export-policies/{pid}/rules"
    rule = raw("POST", f"{rules}?return_records=true&return_timeout=30",
               json={"clients": [{"match": "127.0.0.0/8"}], "ro_rule": ["sys"], "rw_rule": ["sys"]})
    assert rule.json()["num_records"] == 1 and rule.json()["records"][0]["index"] == 1
    assert rule.headers["Location"].endswith(f"/export-policies/{pid}/rules/1")
    lif = raw("POST", "/api/network/ip/interfaces?return_records=true",
              json={"name": "lif_x", "svm.name": "llm-lab", "service_policy": "default-data-files",
                    "ip": {"address": "127.0.0.3", "netmask": "255.0.0.0"},
                    "location": {"home_port": {"name": "e0d", "node": {"name": "cluster1-02"}}}})
    record = lif.json()["records"][0]
    assert record["ip"]["netmask"] == "8" and record["location"]["node"]["name"] == "cluster1-02"
    assert record["service_policy"]["name"] == "default-data-files" and "data_nfs" in record["services"]
    assert lif.headers["Location"] == f"/api/network/ip/interfaces/{record['uuid']}"


def test_jobs_are_kept_and_listed(raw):
    job = raw("POST", "/api/storage/volumes", json=FG).json()["job"]["uuid"]
    one = raw("GET", f"/api/cluster/jobs/{job}").json()
    assert one["state"] == "success" and one["code"] == 0 and one["description"].startswith("POST /api/")
    assert job in [r["uuid"] for r in raw("GET", "/api/cluster/jobs?state=success").json()["records"]]


def test_private_cli_recovery_queue_is_empty(ontap):
    from netapp_ontap.resources import CLI

    response = CLI().execute("volume recovery-queue show", privilege_level="advanced", vserver="llm-lab",
                             fields="volume")
    assert response.http_response.json() == {"num_records": 0, "records": []}


def test_plain_json_accept_drops_hal_links_but_next(raw):
    page = raw("GET", "/api/storage/aggregates?max_records=1", headers={"Accept": "application/json"})
    assert page.headers["Content-Type"] == "application/json"
    body = page.json()
    assert set(body["_links"]) == {"next"} and "_links" not in body["records"][0]
    hal = raw("GET", "/api/storage/aggregates", headers={"Accept": "application/hal+json, application/json"})
    assert "_links" in hal.json()["records"][0]
    job = raw("POST", "/api/storage/volumes", headers={"Accept": "application/json"},
              json={"name": "v", "svm.name": "llm-lab", "size": "1GB"}).json()["job"]
    assert job["_links"]["self"]["href"] == f"/api/cluster/jobs/{job['uuid']}"
