"""Bulk uploads (Arrow IPC and Parquet) over HTTP into the historian, with device credentials."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from kiln.connectors.http.bulk import ARROW_STREAM, PARQUET

PREFIX = "acme/site1/utilities/water/cell1/p1"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T0_US = int(T0.timestamp()) * 1_000_000


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def arrow_stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def upload(client: TestClient, device: dict[str, str], body: bytes, content_type: str) -> object:
    return client.post(
        "/api/v1/ingest/bulk", content=body, headers={**device, "Content-Type": content_type}
    )


def stored(client: TestClient, tag: str) -> list[object]:
    r = client.get(
        "/api/v1/history/raw",
        params={"tag": tag, "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
    )
    assert r.status_code == 200, r.text
    return [p["value"] for p in r.json()["values"]]


def test_a_parquet_backfill_is_durable_before_the_answer(
    client: TestClient, device: dict[str, str]
) -> None:
    n = 1_000
    table = pa.table({
        "path": [f"{PREFIX}/flow"] * n + [f"{PREFIX}/pressure"] * n,
        "ts": pa.array([T0_US // 1000 + i * 1000 for i in range(n)] * 2, pa.timestamp("ms", "UTC")),
        "value": [float(i) for i in range(n)] + [float(-i) for i in range(n)],
    })  # fmt: skip
    r = upload(client, device, parquet(table), PARQUET)
    assert r.status_code == 200, r.text  # type: ignore[attr-defined]
    assert r.json() == {"accepted": 2 * n, "rejected": [], "created_tags": [f"{PREFIX}/pressure"]}  # type: ignore[attr-defined]
    assert stored(client, f"{PREFIX}/flow")[:3] == [0.0, 1.0, 2.0]
    counted = client.get(
        "/api/v1/history/summary",
        params={"tag": [f"{PREFIX}/flow", f"{PREFIX}/pressure"], "start": "2026-01-01T00:00:00Z",
                "end": "2026-01-02T00:00:00Z", "interval": "1d", "agg": "count,last"},
    ).json()["tags"]  # fmt: skip
    assert [t["values"] for t in counted] == [
        {"count": [n], "last": [999.0]},
        {"count": [n], "last": [-999.0]},
    ]


def test_an_arrow_stream_with_microseconds_quality_and_a_refused_path(
    client: TestClient, device: dict[str, str]
) -> None:
    table = pa.table({
        "path": [f"{PREFIX}/count", f"{PREFIX}/count", "globex/plant1/x/y/z/count"],
        "ts": pa.array([T0_US, T0_US + 1_000_000, T0_US], pa.int64()),
        "value": pa.array([1, 2, 3], pa.int64()),
        "quality": pa.array([0, 0x80000000, 0], pa.uint32()),
    })  # fmt: skip
    r = upload(client, device, arrow_stream(table), ARROW_STREAM)
    assert r.status_code == 207  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert body["accepted"] == 2
    assert body["rejected"] == [
        {"path": "globex/plant1/x/y/z/count", "error": "device gateway-acme may publish only under acme", "points": 1}
    ]  # fmt: skip
    raw = client.get(
        "/api/v1/history/raw",
        params={"tag": f"{PREFIX}/count", "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
    ).json()["values"]  # fmt: skip
    assert [(p["value"], p["quality"]) for p in raw] == [(1, "good"), (2, "bad")]


def test_bad_uploads_say_what_is_wrong(client: TestClient, device: dict[str, str]) -> None:
    no_value = pa.table({"path": [f"{PREFIX}/flow"], "ts": pa.array([T0_US], pa.int64())})
    r = upload(client, device, parquet(no_value), PARQUET)
    assert r.status_code == 400 and "value missing" in r.json()["detail"]  # type: ignore[attr-defined]
    r = upload(client, device, b"not parquet at all", PARQUET)
    assert r.status_code == 400 and "not a valid" in r.json()["detail"]  # type: ignore[attr-defined]
    r = upload(client, device, b"path,ts,value\n", "text/csv")
    assert r.status_code == 415  # type: ignore[attr-defined]
    nulls = pa.table(
        {
            "path": [f"{PREFIX}/flow"],
            "ts": pa.array([T0_US]),
            "value": pa.array([None], pa.float64()),
        }
    )
    r = upload(client, device, parquet(nulls), PARQUET)
    assert r.status_code == 400 and "column value has 1 nulls" in r.json()["detail"]  # type: ignore[attr-defined]
    r = client.post(
        "/api/v1/ingest/bulk", content=parquet(nulls), headers={"Content-Type": PARQUET}
    )
    assert r.status_code == 401
