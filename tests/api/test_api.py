"""The HTTP API end to end in one process: real DuckDB, real SQLite, real bus."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

FLOW = "acme/site1/utilities/water/cell1/p1/flow"
T0 = "2026-01-01T00:00:00Z"


def ingest(client: TestClient, device: dict[str, str], values: list[dict[str, Any]]) -> Any:
    return client.post("/api/v1/ingest", json={"values": values}, headers=device)


def at(seconds: int) -> str:
    return f"2026-01-01T00:{seconds // 60:02d}:{seconds % 60:02d}Z"


def test_health_lists_every_subsystem(client: TestClient) -> None:
    body = client.get("/api/v1/health").json()
    assert body["status"] == "ok"
    assert {"bus", "model", "historian", "ingest"} <= set(body["subsystems"])


def test_ingest_then_latest_raw_and_aggregate(client: TestClient, device: dict[str, str]) -> None:
    r = ingest(
        client, device, [{"path": FLOW, "value": float(s), "ts": at(s)} for s in range(0, 120, 10)]
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 12, "rejected": [], "created_tags": []}

    latest = client.get("/api/v1/values/latest", params={"tag": FLOW}).json()["values"]
    assert [(v["path"], v["value"], v["quality"]) for v in latest] == [(FLOW, 110.0, "good")]
    assert latest[0]["source_ts"].startswith("2026-01-01T00:01:50")

    raw = client.get(
        "/api/v1/history/raw", params={"tag": FLOW, "start": T0, "end": at(60), "limit": 4}
    ).json()
    assert [p["value"] for p in raw["values"]] == [0.0, 10.0, 20.0, 30.0]
    assert raw["truncated"] is True
    nxt = client.get(
        "/api/v1/history/raw",
        params={"tag": FLOW, "start": raw["next_start"], "end": at(60), "limit": 4},
    ).json()
    assert [p["value"] for p in nxt["values"]] == [40.0, 50.0]
    assert nxt["truncated"] is False

    agg = client.get(
        "/api/v1/history/aggregate",
        params={
            "tag": FLOW,
            "start": T0,
            "end": at(120),
            "interval": "1m",
            "agg": "avg,min,max,count,first,last",
        },
    ).json()
    assert agg["buckets"] == [
        {"ts": "2026-01-01T00:00:00Z", "avg": 25.0, "min": 0.0, "max": 50.0, "count": 6, "first": 0.0, "last": 50.0},
        {"ts": "2026-01-01T00:01:00Z", "avg": 85.0, "min": 60.0, "max": 110.0, "count": 6, "first": 60.0, "last": 110.0},
    ]  # fmt: skip


def test_reingest_is_idempotent_and_late_values_land_in_place(
    client: TestClient, device: dict[str, str]
) -> None:
    body = [{"path": FLOW, "value": 1.0, "ts": at(10)}, {"path": FLOW, "value": 3.0, "ts": at(30)}]
    assert ingest(client, device, body).status_code == 200
    assert ingest(client, device, body).status_code == 200
    assert ingest(client, device, [{"path": FLOW, "value": 2.0, "ts": at(20)}]).status_code == 200
    raw = client.get("/api/v1/history/raw", params={"tag": FLOW, "start": T0, "end": at(60)}).json()
    assert [(p["ts"][14:19], p["value"]) for p in raw["values"]] == [
        ("00:10", 1.0), ("00:20", 2.0), ("00:30", 3.0)
    ]  # fmt: skip
    latest = client.get("/api/v1/values/latest", params={"tag": FLOW}).json()["values"]
    assert latest[0]["value"] == 3.0, "a late value must not replace the newer latest value"


def test_bad_items_are_rejected_one_by_one(client: TestClient, device: dict[str, str]) -> None:
    r = ingest(
        client,
        device,
        [
            {"path": FLOW, "value": 5.0, "ts": at(1)},
            {"path": FLOW, "value": "high", "ts": at(2)},
            {"path": "acme/site1/locked/x/y", "value": 1},
            {"path": "bad", "value": 1},
            {"path": "acme/new/area/sensor/temp", "value": 20},
        ],
    )
    assert r.status_code == 207
    body = r.json()
    assert body["accepted"] == 2
    assert body["created_tags"] == ["acme/new/area/sensor/temp"]
    errors = {e["index"]: e["error"] for e in body["rejected"]}
    assert set(errors) == {1, 2, 3}
    assert "holds float values" in errors[1]
    assert "locked" in errors[2]
    assert "one segment" in errors[3]
    tags = client.get("/api/v1/tags", params={"prefix": "acme/new"}).json()["tags"]
    assert [(t["path"], t["data_type"], t["auto_created"]) for t in tags] == [
        ("acme/new/area/sensor/temp", "int", True)
    ]
    assert ingest(client, device, [{"path": "bad", "value": 1}]).status_code == 422
    assert client.post("/api/v1/ingest", json={"wrong": []}, headers=device).status_code == 422


def test_model_routes(client: TestClient) -> None:
    tree = client.get("/api/v1/assets").json()["assets"]
    assert tree[0]["path"] == "acme" and tree[0]["level"] == "enterprise"
    leaf = tree[0]
    while leaf["children"]:
        leaf = leaf["children"][0]
    assert (leaf["path"], leaf["type"], leaf["level"]) == (
        "acme/site1/utilities/water/cell1/p1",
        "pump",
        "asset",
    )
    tags = client.get("/api/v1/tags", params={"prefix": "acme/site1"}).json()
    flow = next(t for t in tags["tags"] if t["path"] == FLOW)
    assert (flow["unit"], flow["low"], flow["high"], flow["data_type"]) == (
        "m3/h",
        0.0,
        100.0,
        "float",
    )
    assert client.get("/api/v1/tags", params={"limit": 1}).json()["truncated"] is True


def test_an_ingested_tag_gets_its_levels_in_the_tree(
    client: TestClient, device: dict[str, str]
) -> None:
    """Only acme/site1 (and the pump's branch) are assets: the levels between it and an
    ingested tag come back as nodes of the tree, at the ISA-95 level of their depth."""
    assert (
        ingest(client, device, [{"path": "acme/site1/lab/bench1/ph", "value": 7.0}]).status_code
        == 200
    )

    def find(nodes: list[dict[str, Any]], path: str) -> dict[str, Any] | None:
        for node in nodes:
            if node["path"] == path:
                return node
            found = find(node["children"], path)
            if found is not None:
                return found
        return None

    tree = client.get("/api/v1/assets").json()["assets"]
    assert [n["path"] for n in tree] == ["acme"], "no second root for the new levels"
    site = find(tree, "acme/site1")
    assert site is not None
    lab = find(site["children"], "acme/site1/lab")
    assert lab is not None and (lab["name"], lab["level"], lab["type"]) == ("lab", "area", None)
    assert [(c["path"], c["level"]) for c in lab["children"]] == [("acme/site1/lab/bench1", "line")]
    assert find(tree, "acme/site1/utilities/water/cell1/p1") is not None, "assets stay"

    below = client.get("/api/v1/assets", params={"prefix": "acme/site1"}).json()["assets"]
    assert [n["path"] for n in below] == ["acme/site1"]
    assert find(below, "acme/site1/lab/bench1") is not None


def test_queries_are_bounded_and_say_how_to_narrow(client: TestClient) -> None:
    r = client.get(
        "/api/v1/history/raw", params={"tag": FLOW, "start": T0, "end": at(60), "limit": 501}
    )
    assert r.status_code == 400
    assert "exceeds 500" in r.json()["detail"] and "next_start" in r.json()["detail"]
    r = client.get(
        "/api/v1/history/aggregate",
        params={"tag": FLOW, "start": "-1d", "end": "now", "interval": "1m"},
    )
    assert r.status_code == 400
    assert "1440 buckets (limit 100): use interval=15min" in r.json()["detail"]
    r = client.get("/api/v1/history/aggregate", params={"tag": FLOW, "agg": "median"})
    assert r.status_code == 400 and "choose from avg" in r.json()["detail"]
    r = client.get("/api/v1/history/raw", params={"tag": FLOW, "start": "yesterday"})
    assert r.status_code == 400 and "ISO 8601" in r.json()["detail"]
    r = client.get("/api/v1/history/raw", params={"tag": FLOW, "start": at(10), "end": at(5)})
    assert r.status_code == 400 and "must be after start" in r.json()["detail"]


def test_live_websocket_sends_snapshot_then_changes(
    client: TestClient, device: dict[str, str]
) -> None:
    ingest(client, device, [{"path": FLOW, "value": 1.0, "ts": at(1)}])
    with client.websocket_connect("/api/v1/live?prefix=acme/site1") as ws:
        first = ws.receive_json()
        assert first["snapshot"] is True
        assert [(v["path"], v["value"]) for v in first["values"]] == [(FLOW, 1.0)]
        ingest(
            client,
            device,
            [{"path": FLOW, "value": 2.0, "ts": at(2)}, {"path": "acme/other/x", "value": 9}],
        )
        update = ws.receive_json()
        assert [(v["path"], v["value"], v["quality"]) for v in update["values"]] == [
            (FLOW, 2.0, "good")
        ]


def test_metrics_expose_bus_and_historian(client: TestClient, device: dict[str, str]) -> None:
    ingest(client, device, [{"path": FLOW, "value": 1.0, "ts": at(1)}])
    text = client.get("/metrics").text
    assert 'kiln_bus_queue_depth_points{subscriber="historian"}' in text
    assert 'kiln_bus_dropped_points_total{subscriber="historian"} 0.0' in text
    written = [
        line for line in text.splitlines() if line.startswith("kiln_historian_points_written_total")
    ]
    assert written and float(written[0].split()[-1]) >= 1
    assert "kiln_ingest_accepted_points_total 1.0" in text


def test_web_and_docs_are_served_locally(client: TestClient) -> None:
    index = client.get("/")
    assert index.status_code == 200 and "<html" in index.text.lower()
    docs = client.get("/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "Kiln"


def test_oversized_body_is_refused(client: TestClient, device: dict[str, str]) -> None:
    big = (
        b'{"values": ['
        + b'{"path": "a/b", "value": 1},' * 700_000
        + b'{"path": "a/b", "value": 1}]}'
    )
    r = client.post(
        "/api/v1/ingest", content=big, headers={**device, "content-type": "application/json"}
    )
    assert r.status_code == 413
    assert "send smaller batches" in r.json()["detail"]


def test_unknown_tag_is_404_with_a_hint(client: TestClient) -> None:
    r = client.get("/api/v1/history/raw", params={"tag": "acme/site1/nope"})
    assert r.status_code == 404
    assert "/api/v1/tags?prefix=acme/site1" in r.json()["detail"]
    r = client.get("/api/v1/history/aggregate", params={"tag": "acme/site1/nope"})
    assert r.status_code == 404


def test_a_non_finite_number_in_a_json_body_is_a_422_not_a_500(client: TestClient) -> None:
    """Python's JSON reader takes NaN and Infinity; FastAPI's validation answer echoes the
    input, and echoing a NaN made the answer itself invalid JSON (a 500)."""
    for literal in (b"NaN", b"Infinity", b"-Infinity"):
        answer = client.post(
            "/api/v1/users",
            content=b'{"username": "x", "password": ' + literal + b', "roles": []}',
            headers={"content-type": "application/json"},
        )
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert any(e["input"] == literal.decode() for e in detail), detail
    assert client.get("/api/v1/health").status_code == 200
