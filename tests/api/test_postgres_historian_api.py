"""The platform with its historian in PostgreSQL: ingest, latest values, raw history and
summaries over the API, as with DuckDB."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kiln.testing.auth import device_headers

PREFIX = "acme/site1/utilities/water/cell1/p1"


def test_history_in_postgresql_over_the_api(pg_client: TestClient) -> None:
    device = device_headers(pg_client, dict(pg_client.headers), "gw", "acme")
    items = [
        {
            "path": f"{PREFIX}/flow",
            "value": float(i),
            "ts": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z",
        }
        for i in range(0, 3600, 10)
    ]
    r = pg_client.post("/api/v1/ingest", json={"values": items}, headers=device)
    assert r.status_code == 200, r.text
    r = pg_client.get("/api/v1/values/latest", params={"tag": f"{PREFIX}/flow"})
    assert r.status_code == 200, r.text
    assert r.json()["values"][0]["value"] == 3590.0
    r = pg_client.get("/api/v1/history/raw", params={
        "tag": f"{PREFIX}/flow", "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:01:00Z",
    })  # fmt: skip
    assert [p["value"] for p in r.json()["values"]] == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    r = pg_client.get("/api/v1/history/summary", params={
        "tag": f"{PREFIX}/flow", "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z",
        "interval": "30min", "agg": "count,avg,twa",
    })  # fmt: skip
    assert r.status_code == 200, r.text
    values = r.json()["tags"][0]["values"]
    assert values["count"] == [180, 180]
    assert values["avg"] == [895.0, 2695.0]
    r = pg_client.get("/api/v1/health")
    assert r.json()["subsystems"]["historian"]["status"] == "ok"
