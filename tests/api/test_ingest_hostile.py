"""JSON ingest and InfluxDB line protocol under hostile input (issue 12, findings 1, 3, 4 and 5).

Each case of the corpus is a request, the status and a fragment of the message it must get; after
each, the server still answers and the stored data is unchanged: no tag created, no value
written. The limits are small here so that "over the limit" is cheap to send.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from api_helpers import make_app_client, make_settings
from fastapi.testclient import TestClient

from kiln.api.settings import HttpSettings
from kiln.connectors.http.settings import IngestSettings
from kiln.testing.auth import admin_headers, device_headers

MAX_ITEMS = 50
MAX_BODY = 256 * 1024
MAX_INFLATED = 2 * 1024 * 1024
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SENTINEL = "acme/site1/hostile/m1/temp"
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Case:
    """One hostile request to `url` with the bytes `body` (or `chunks`, sent chunked)."""

    name: str
    url: str
    body: bytes
    status: int
    fragment: str
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False


def items(*docs: dict[str, Any]) -> bytes:
    return json.dumps({"values": list(docs)}).encode()


def item(path: str = "acme/site1/hostile/m2/v", **more: Any) -> dict[str, Any]:
    return {"path": path, "value": 1.5, "ts": T0_MS, **more}


def nested(depth: int) -> bytes:
    return b'{"values": [{"path": "acme/a/b", "value": ' + b"[" * depth + b"]" * depth + b"}]}"


INGEST = "/api/v1/ingest"
WRITE = "/api/v2/write?bucket=acme/site1&precision=ms"
GZ = {"Content-Encoding": "gzip"}
line = f"pump,line=l1 flow=1.5 {T0_MS}\n".encode()

JSON_CASES = [
    Case("invalid UTF-8", INGEST, b'{"values": [{"path": "acme/a/b", "value": "\xff"}]}', 400,
         "not valid UTF-8: the byte at offset 43"),
    Case("truncated UTF-8", INGEST, b'{"values": []}\xe2\x82', 400, "offset 14"),
    Case("deep nesting", INGEST, nested(100_000), 400, "nested too deeply"),
    Case("not JSON", INGEST, b'{"values": [1,}', 400, "not valid JSON: Expecting value at line 1"),
    Case("not JSON at all", INGEST, b"hello", 400, "not valid JSON"),
    Case("truncated JSON", INGEST, b'{"values": [{"path": "a', 400, "not valid JSON"),
    Case("trailing data", INGEST, b'{"values": []} {}', 400, "Extra data"),
    Case("an integer of 5000 digits", INGEST,
         b'{"values": [{"path": "acme/a/b", "value": ' + b"1" * 5000 + b"}]}", 400,
         "not valid JSON"),
    Case("an item holding a large array", INGEST,
         b'{"values": [{"path": "acme/a/b", "value": [' + b"1," * 100_000 + b"1]}]}", 400,
         "not valid JSON within its first 65536 characters"),
    Case("a } in a string before a large array", INGEST,
         b'{"values": [{"path": "}", "value": [' + b"1," * 100_000 + b"1]}]}", 400,
         "not valid JSON within its first 65536 characters"),
    Case("a large array beside the values", INGEST,
         b'{"other": [' + b"1," * 100_000 + b'1], "values": []}', 400,
         "not valid JSON within its first 65536 characters"),
    Case("empty body", INGEST, b"", 422, "the body is empty"),
    Case("an array, not an object", INGEST, b"[]", 422, "must be a JSON object"),
    Case("no values", INGEST, b"{}", 422, "'values' is missing"),
    Case("values not an array", INGEST, b'{"values": 5}', 422, "'values' must be an array"),
    Case("one item over the limit", INGEST, items(*[item()] * (MAX_ITEMS + 1)), 413,
         f"at most {MAX_ITEMS} per request (ingest.max_items)"),
    Case("a body over the limit", INGEST, b" " * (MAX_BODY + 1), 413, "http.max_body_bytes"),
    Case("a chunked body over the limit", INGEST, b" " * (4 * MAX_BODY), 413,
         "http.max_body_bytes", chunked=True),
    Case("a point from 2099", INGEST, items(item(ts="2099-01-01T00:00:00Z")), 422,
         "ahead of the server's clock"),
    Case("a point from year 1", INGEST, items(item(ts="0001-01-01T00:00:00Z")), 422,
         "before 1970-01-01"),
    Case("a point from year 9999", INGEST, items(item(ts="9999-12-31T23:59:59Z")), 422,
         "ahead of the server's clock"),
    Case("NaN as a Good value", INGEST, b'{"values": [{"path": "acme/a/b", "value": NaN}]}', 422,
         "not a finite number"),
    Case("Infinity as a Good value", INGEST,
         b'{"values": [{"path": "acme/a/b", "value": -Infinity}]}', 422, "not a finite number"),
    Case("a path with ..", INGEST, items(item("acme/../etc")), 422, "invalid segment"),
    Case("a path with NUL", INGEST, items(item("acme/a\x00b/c")), 422, "invalid segment"),
    Case("a string of 5000 characters", INGEST, items(item(value="x" * 5000)), 422, "4096"),
]  # fmt: skip

LINE_CASES = [
    Case("a gzip bomb", WRITE, gzip.compress(b"#\n" * (MAX_INFLATED // 2 + 1)), 413,
         f"inflates to more than {MAX_INFLATED} bytes (ingest.max_inflated_bytes)", GZ),
    Case("not gzip", WRITE, b"\x1f\x8bnot gzip", 400, "not valid gzip", GZ),
    Case("truncated gzip", WRITE, gzip.compress(line)[:-12], 400, "ends before", GZ),
    Case("an unknown encoding", WRITE, line, 415, "send gzip or no encoding",
         {"Content-Encoding": "br"}),
    Case("one value over the limit", WRITE, line * (MAX_ITEMS + 1), 413,
         f"at most {MAX_ITEMS} per request (ingest.max_items)"),
    Case("a line over 1 MiB", WRITE, gzip.compress(b"m v=1" + b"1" * (1 << 20) + b"\n"), 400,
         "longer than 1048576 bytes", GZ),
    Case("a chunked body over the limit", WRITE, line * (4 * MAX_BODY // len(line)), 413,
         "http.max_body_bytes", chunked=True),
    Case("a NUL in a tag value", WRITE, f"m,host=a\x00b v=1 {T0_MS}".encode(), 400,
         "tag value 'a\\x00b' (tag 'host') is not a valid path segment"),
    Case("a .. tag value", WRITE, f"m,host=.. v=1 {T0_MS}".encode(), 400,
         "tag value '..' (tag 'host') is not a valid path segment"),
    Case("a slash in a measurement", WRITE, f"a/b v=1 {T0_MS}".encode(), 400,
         "measurement 'a/b' is not a valid path segment"),
    Case("%2F in a field", WRITE, f"m a%2Fb=1 {T0_MS}".encode(), 400,
         "field 'a%2Fb' is not a valid path segment"),
    Case("a name of 65 characters", WRITE, f"m {'f' * 65}=1 {T0_MS}".encode(), 400,
         "is not a valid path segment"),
    Case("invalid UTF-8 in a line", WRITE, f"m,host=a v=1 {T0_MS}".encode() + b"\xff", 400,
         "line 1: not valid UTF-8"),
    Case("a point from 2099", WRITE, b"m v=1 4070908800000", 400, "ahead of the server's clock"),
    Case("a point before 1970", WRITE, b"m v=1 -1000", 400, "before 1970-01-01"),
    Case("NaN", WRITE, f"m v=NaN {T0_MS}".encode(), 400, "not a finite number"),
]  # fmt: skip


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    data = tmp_path_factory.mktemp("hostile") / "data"
    settings = make_settings(
        data,
        http=HttpSettings(max_body_bytes=MAX_BODY),
        ingest=IngestSettings(max_items=MAX_ITEMS, max_inflated_bytes=MAX_INFLATED),
    )
    with make_app_client(settings) as client:
        client.headers.update(admin_headers(client, data))
        device = device_headers(client, dict(client.headers), "hostile-gw", "acme")
        r = client.post(INGEST, content=items(item(SENTINEL)), headers={**device, **JSON})
        assert r.status_code == 200, r.text
        yield client, device


def stored(client: TestClient) -> tuple[list[str], list[object]]:
    tags = client.get("/api/v1/tags", params={"prefix": "acme"}).json()["tags"]
    history = client.get(
        "/api/v1/history/raw",
        params={"tag": SENTINEL, "start": "2025-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"},
    ).json()["values"]
    return sorted(t["path"] for t in tags), history


@pytest.mark.parametrize("case", JSON_CASES + LINE_CASES, ids=lambda c: f"{c.url[:12]}: {c.name}")
def test_hostile_input_is_refused_with_its_reason_and_changes_nothing(
    env: tuple[TestClient, dict[str, str]], case: Case
) -> None:
    client, device = env
    before = stored(client)
    headers = {**device, **(JSON if case.url == INGEST else {}), **case.headers}
    if case.chunked:
        body = case.body

        def pieces() -> Iterator[bytes]:
            for start in range(0, len(body), 64 * 1024):
                yield body[start : start + 64 * 1024]

        r = client.post(case.url, content=pieces(), headers=headers)
    else:
        r = client.post(case.url, content=case.body, headers=headers)
    assert r.status_code == case.status, r.text[:300]
    message = " ".join(str(v) for v in r.json().values())
    assert case.fragment in message, message[:300]
    assert client.get("/api/v1/health").status_code == 200
    assert stored(client) == before


def test_an_item_outside_the_window_is_named_and_the_others_stored(
    env: tuple[TestClient, dict[str, str]],
) -> None:
    client, device = env
    body = items(
        item("acme/site1/hostile/w/ok"), item("acme/site1/hostile/w/late", ts=4102444800000)
    )
    r = client.post(INGEST, content=body, headers={**device, **JSON})
    assert r.status_code == 207, r.text
    (rejected,) = r.json()["rejected"]
    assert rejected["index"] == 1 and rejected["path"] == "acme/site1/hostile/w/late"
    assert "ahead of the server's clock" in rejected["error"]
    assert "ingest.max_future_s" in rejected["error"]


def test_nan_is_accepted_only_with_a_bad_quality(env: tuple[TestClient, dict[str, str]]) -> None:
    client, device = env
    body = b'{"values": [{"path": "acme/site1/hostile/nan/v", "value": NaN, "quality": "bad"}]}'
    r = client.post(INGEST, content=body, headers={**device, **JSON})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1


def test_the_ingest_body_is_still_documented(env: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = env
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/api/v1/ingest"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert body["required"] is True
    assert "values" in schema["properties"] and schema["required"] == ["values"]


def test_a_full_pool_answers_busy_with_retry_after(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with make_app_client(settings) as client:
        client.headers.update(admin_headers(client, tmp_path / "data"))
        device = device_headers(client, dict(client.headers), "busy-gw", "acme")
        from kiln.connectors.http.ingest import HttpIngest

        ingest = client.app.state.platform.service(HttpIngest)  # type: ignore[attr-defined]
        pool = ingest._pool
        assert pool is not None
        pool.queue = 0
        pool._pending = pool.workers  # every worker taken: the next job is refused, not queued
        try:
            r = client.post(INGEST, content=items(item()), headers={**device, **JSON})
        finally:
            pool._pending = 0
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "1"
        assert "ingest workers are busy" in r.text
        ok = client.post(INGEST, content=items(item()), headers={**device, **JSON})
        assert ok.status_code == 200, ok.text
