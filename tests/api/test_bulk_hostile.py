"""Hostile and awkward bulk uploads: each gets its status and a message that says what to fix,
the server keeps answering, and nothing refused reaches the historian (issue 12)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from api_helpers import make_app_client, make_settings
from fastapi.testclient import TestClient

from kiln.connectors.http.bulk import ARROW_FILE, ARROW_STREAM, PARQUET
from kiln.connectors.http.settings import IngestSettings
from kiln.testing.auth import admin_headers, device_headers

ROOT = "acme/hostile"
MAX_I64 = 2**63 - 1
# Limits small enough that the cases over them are cheap to build.
LIMITS = IngestSettings(bulk_max_rows=100_000, bulk_max_bytes=4 << 20, max_inflated_bytes=4 << 20)


def now_us() -> int:
    return time.time_ns() // 1000


def parquet(table: pa.Table, **options: object) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)  # type: ignore[arg-type]
    return sink.getvalue()


def stream(table: pa.Table, compression: str | None = None) -> bytes:
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        for batch in table.to_batches(max_chunksize=10_000):
            writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def arrow_file(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def points(name: str, n: int = 3, **columns: object) -> pa.Table:
    """`n` points of the path `ROOT/name/x`, a second apart ending a minute ago."""
    t = now_us() - 60_000_000
    base: dict[str, object] = {
        "path": [f"{ROOT}/{name}/x"] * n,
        "ts": pa.array([t - (n - i) * 1_000_000 for i in range(n)], pa.int64()),
        "value": pa.array([float(i) for i in range(n)]),
    }
    base.update(columns)
    return pa.table(base)


@dataclass(frozen=True)
class Case:
    name: str
    body: Callable[[], bytes]
    content_type: str
    status: int
    fragment: str  # in the answer's detail or its first rejected path's error


def _ts(name: str, values: list[int], type_: pa.DataType) -> bytes:
    return parquet(points(name, len(values), ts=pa.array(values, type_)))


CASES = [
    # Timestamps: any unit, Kiln keeps microseconds (floored); outside the window is a 422.
    Case("ts_ns_sub_micro", lambda: _ts("ns", [time.time_ns() - 5_000_000_123 + i * 1001 for i in range(3)],
         pa.timestamp("ns")), PARQUET, 200, ""),
    Case("ts_ns_zone", lambda: _ts("nsz", [time.time_ns() - 9_000_000_999],
         pa.timestamp("ns", "Europe/Berlin")), PARQUET, 200, ""),
    Case("ts_s", lambda: _ts("s", [now_us() // 1_000_000 - 30], pa.timestamp("s")), PARQUET,
         200, ""),
    Case("ts_ms_zone", lambda: _ts("ms", [now_us() // 1000 - 30], pa.timestamp("ms", "UTC")),
         PARQUET, 200, ""),
    Case("ts_ns_max", lambda: _ts("nsmax", [MAX_I64], pa.timestamp("ns")), PARQUET, 422,
         "row 0: timestamp 2262-04-11T23:47:16.854775Z is more than 600 s ahead"),
    Case("ts_us_max", lambda: _ts("usmax", [MAX_I64], pa.int64()), PARQUET, 422,
         "row 0: timestamp 9223372036854775807 µs since the epoch is more than 600 s ahead"),
    Case("ts_s_max", lambda: stream(points("smax", 1, ts=pa.array([MAX_I64], pa.timestamp("s")))),
         ARROW_STREAM, 422,
         "row 0: timestamp 9223372036854775807000000 µs since the epoch is more than"),
    Case("ts_u64_max", lambda: _ts("u64", [2**64 - 1], pa.uint64()), PARQUET, 422,
         "is more than 600 s ahead"),
    Case("ts_min", lambda: _ts("min", [-MAX_I64 - 1], pa.int64()), PARQUET, 422,
         "before 1970-01-01T00:00:00Z"),
    Case("ts_year_1", lambda: _ts("y1", [-62135596800], pa.timestamp("s")), PARQUET, 422,
         "timestamp 0001-01-01T00:00:00Z is before 1970"),
    Case("ts_2099", lambda: _ts("y2099", [now_us(), 4070908800_000_000, 4070908800_000_000],
         pa.int64()), PARQUET, 422, "row 1: timestamp 2099-01-01T00:00:00Z is more than 600 s"),
    Case("ts_float", lambda: _ts("tsf", [1.5], pa.float64()), PARQUET, 400,  # type: ignore[list-item]
         "column ts must be a timestamp"),
    # Values: finite, or an explicit Bad quality.
    Case("nan_good", lambda: parquet(points("nan", 3, value=[1.0, float("nan"), 2.0])), PARQUET,
         422, "row 1: value nan is not a finite number"),
    Case("inf_good", lambda: stream(points("inf", 1, value=[float("inf")])), ARROW_STREAM, 422,
         "value inf is not a finite number"),
    Case("minus_inf_uncertain", lambda: parquet(points("minf", 1, value=[float("-inf")],
         quality=pa.array([0x40000000], pa.uint32()))), PARQUET, 422, "value -inf is not"),
    Case("nan_bad", lambda: parquet(points("nanbad", 1, value=[float("nan")],
         quality=pa.array([0x80000000], pa.uint32()))), PARQUET, 200, ""),
    # Column encodings pandas and Arrow produce.
    Case("path_dictionary", lambda: parquet(points("dict", 3,
         path=pa.array([f"{ROOT}/dict/x"] * 3).dictionary_encode())), PARQUET, 200, ""),
    Case("path_dictionary_stream", lambda: stream(points("dicts", 3,
         path=pa.array([f"{ROOT}/dicts/x"] * 3).dictionary_encode())), ARROW_STREAM, 200, ""),
    Case("path_large_string", lambda: stream(points("large", 3,
         path=pa.array([f"{ROOT}/large/x"] * 3, pa.large_string()))), ARROW_STREAM, 200, ""),
    Case("path_string_view", lambda: stream(points("view", 3,
         path=pa.array([f"{ROOT}/view/x"] * 3, pa.string_view()))), ARROW_STREAM, 200, ""),
    Case("value_dictionary", lambda: parquet(points("vdict", 3,
         value=pa.array(["on", "off", "on"]).dictionary_encode())), PARQUET, 200, ""),
    Case("value_string_view", lambda: stream(points("vview", 2,
         value=pa.array(["on", "off"], pa.string_view()))), ARROW_STREAM, 200, ""),
    Case("arrow_file", lambda: arrow_file(points("file", 2)), ARROW_FILE, 200, ""),
    # Limits, checked before the table is read.
    Case("rows_parquet", lambda: parquet(points("rows", 100_001)), PARQUET, 413,
         "100001 rows; at most 100000 per upload (ingest.bulk_max_rows)"),
    Case("rows_stream", lambda: stream(points("rowss", 100_001,
         path=pa.array([f"{ROOT}/rowss/x"] * 100_001).dictionary_encode())), ARROW_STREAM, 413,
         "at most 100000 per upload (ingest.bulk_max_rows)"),
    Case("inflated_parquet", lambda: parquet(points("infl", 90_000,
         value=pa.array([f"{i:0100d}" for i in range(90_000)])), compression="zstd"), PARQUET, 413,
         "ingest.max_inflated_bytes and ingest.bulk_max_bytes"),
    Case("inflated_stream", lambda: stream(points("infls", 90_000,
         value=pa.array(["x" * 100] * 90_000)), compression="zstd"), ARROW_STREAM, 413,
         "ingest.max_inflated_bytes and ingest.bulk_max_bytes"),
    Case("body_too_large", lambda: b"\0" * (5 << 20), PARQUET, 413, "request body over"),
    # Not a table of points.
    Case("garbage", lambda: b"not parquet at all", PARQUET, 400, "not a valid"),
    Case("empty", lambda: b"", ARROW_STREAM, 400, "not a valid"),
    Case("truncated", lambda: parquet(points("trunc", 100))[:-100], PARQUET, 400, "not a valid"),
    Case("truncated_stream", lambda: stream(points("truncs", 100))[:-50], ARROW_STREAM, 400,
         "not a valid"),
    Case("path_int", lambda: parquet(points("pint", 1, path=[1])), PARQUET, 400,
         "column path must be strings"),
    Case("value_list", lambda: parquet(points("vlist", 1, value=[[1.0]])), PARQUET, 400,
         "column value must be double"),
    Case("quality_nulls", lambda: parquet(points("qnull", 1,
         quality=pa.array([None], pa.uint32()))), PARQUET, 400, "column quality"),
    Case("quality_negative", lambda: parquet(points("qneg", 1,
         quality=pa.array([-1], pa.int64()))), PARQUET, 400, "column quality"),
    Case("value_u64", lambda: parquet(points("u64v", 1, value=pa.array([2**64 - 1], pa.uint64()))),
         PARQUET, 400, "beyond the int64 range"),
    Case("text_too_long", lambda: parquet(points("long", 2, value=["on", "x" * 4097])), PARQUET,
         422, "row 1: a text of 4097 characters: string values are limited to 4096 characters"),
    Case("text_too_long_dictionary", lambda: parquet(points("longd", 2,
         value=pa.array(["x" * 5000] * 2).dictionary_encode())), PARQUET, 422,
         "row 0: a text of 5000 characters"),
    Case("bad_path", lambda: parquet(points("p", 1, path=["acme/../etc"])), PARQUET, 422,
         "acme/../etc"),
    Case("csv", lambda: b"path,ts,value\n", "text/csv", 415, "send the table as one of"),
]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict]]:  # type: ignore[type-arg]
    data = Path(tmp_path_factory.mktemp("hostile")) / "data"
    with make_app_client(make_settings(data, ingest=LIMITS)) as client:
        client.headers.update(admin_headers(client, data))
        device = device_headers(client, dict(client.headers), "gw-hostile", "acme")
        yield client, device


def stored_under(client: TestClient, prefix: str) -> list[tuple[int, object]]:
    r = client.get("/api/v1/tags", params={"prefix": prefix})
    assert r.status_code == 200, r.text
    found: list[tuple[int, object]] = []
    for tag in r.json()["tags"]:
        raw = client.get(
            "/api/v1/history/raw",
            params={"tag": tag["path"], "start": "1970-01-01T00:00:00Z", "end": "2300-01-01T00:00:00Z", "limit": 500},
        )  # fmt: skip
        assert raw.status_code == 200, raw.text
        found += [(p["ts"], p["value"]) for p in raw.json()["values"]]
    return found


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_upload(server: tuple[TestClient, dict], case: Case) -> None:  # type: ignore[type-arg]
    client, device = server
    before = stored_under(client, ROOT)
    r = client.post(
        "/api/v1/ingest/bulk",
        content=case.body(),
        headers={**device, "Content-Type": case.content_type},
    )
    assert r.status_code == case.status, r.text
    body = r.json()
    said = body["detail"] if "detail" in body else str(body.get("rejected"))
    assert case.fragment in said, said
    assert client.get("/api/v1/health").status_code == 200
    after = stored_under(client, ROOT)
    if case.status == 200:
        assert body["rejected"] == [] and body["accepted"] > 0
        assert len(after) == len(before) + body["accepted"]
    else:
        assert after == before, "a refused upload stored nothing"


def test_nanoseconds_are_floored_to_microseconds(server: tuple[TestClient, dict]) -> None:  # type: ignore[type-arg]
    """Kiln's resolution is the microsecond; finer digits are dropped (floor, as line protocol)."""
    client, device = server
    ns = (time.time_ns() // 1_000_000_000 - 100) * 1_000_000_000 + 123_456_789
    table = points("floor", 1, ts=pa.array([ns], pa.timestamp("ns")))
    r = client.post(
        "/api/v1/ingest/bulk",
        content=parquet(table),
        headers={**device, "Content-Type": PARQUET},
    )
    assert r.status_code == 200, r.text
    raw = client.get(
        "/api/v1/history/raw",
        params={"tag": f"{ROOT}/floor/x", "start": "-1h", "end": "now"},
    ).json()["values"]
    assert [p["ts"][-8:] for p in raw] == [".123456Z"]


def test_a_refused_row_leaves_out_its_path_only(server: tuple[TestClient, dict]) -> None:  # type: ignore[type-arg]
    client, device = server
    t = now_us() - 10_000_000
    table = pa.table({
        "path": [f"{ROOT}/mixed/good", f"{ROOT}/mixed/bad", f"{ROOT}/mixed/bad", f"{ROOT}/mixed/bad"],
        "ts": pa.array([t, t, t + 1, MAX_I64], pa.int64()),
        "value": [1.0, 2.0, float("nan"), 3.0],
    })  # fmt: skip
    r = client.post(
        "/api/v1/ingest/bulk", content=parquet(table), headers={**device, "Content-Type": PARQUET}
    )
    assert r.status_code == 207, r.text
    (rejected,) = r.json()["rejected"]
    assert rejected["path"] == f"{ROOT}/mixed/bad" and rejected["points"] == 3
    assert rejected["error"].startswith("row 2: value nan is not a finite number"), rejected
    assert "2 of its 3 rows are refused" in rejected["error"], rejected
    assert [v for _, v in stored_under(client, f"{ROOT}/mixed")] == [1.0]
