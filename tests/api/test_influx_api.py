"""InfluxDB-compatible writes over HTTP: what Telegraf and Influx clients send, end to end into
the historian, with device credentials sent the Influx ways."""

from __future__ import annotations

import base64
import gzip

from fastapi.testclient import TestClient

T0_S = 1_767_225_600  # 2026-01-01T00:00:00Z
PREFIX = "acme/site1/utilities"


def token_of(device: dict[str, str]) -> str:
    return device["Authorization"].removeprefix("Bearer ")


def raw(client: TestClient, tag: str) -> list[tuple[str, object]]:
    r = client.get("/api/v1/history/raw", params={"tag": tag, "start": "2026-01-01T00:00:00Z",
                                                  "end": "2026-01-02T00:00:00Z"})  # fmt: skip
    assert r.status_code == 200, r.text
    return [(p["ts"], p["value"]) for p in r.json()["values"]]


def test_a_v2_write_with_a_token_is_stored_before_the_answer(
    client: TestClient, device: dict[str, str]
) -> None:
    body = (
        f"pump,line=l1 flow=12.5,running=true,starts=3i {T0_S}\npump,line=l1 flow=13.0 {T0_S + 60}"
    )
    r = client.post(
        "/api/v2/write",
        params={"bucket": PREFIX, "org": "acme", "precision": "s"},
        content=body,
        headers={"Authorization": f"Token {token_of(device)}"},
    )
    assert r.status_code == 204, r.text
    # 204 means durable: the values are in the historian already.
    assert raw(client, f"{PREFIX}/line/l1/pump/flow") == [
        ("2026-01-01T00:00:00Z", 12.5),
        ("2026-01-01T00:01:00Z", 13.0),
    ]
    assert raw(client, f"{PREFIX}/line/l1/pump/running") == [("2026-01-01T00:00:00Z", True)]
    assert raw(client, f"{PREFIX}/line/l1/pump/starts") == [("2026-01-01T00:00:00Z", 3)]


def test_a_v1_write_with_basic_auth_and_gzip(client: TestClient, device: dict[str, str]) -> None:
    basic = base64.b64encode(f"telegraf:{token_of(device)}".encode()).decode()
    body = gzip.compress(f"tank level=1.5 {T0_S * 1_000_000_000}".encode())
    r = client.post(
        "/write",
        params={"db": PREFIX},
        content=body,
        headers={"Authorization": f"Basic {basic}", "Content-Encoding": "gzip"},
    )
    assert r.status_code == 204, r.text
    assert raw(client, f"{PREFIX}/tank/level") == [("2026-01-01T00:00:00Z", 1.5)]


def test_bad_lines_are_named_and_the_good_ones_stored(
    client: TestClient, device: dict[str, str]
) -> None:
    body = f"tank level=2.5 {T0_S}\ntank level=oops {T0_S}\nnofields\n"
    r = client.post(
        "/api/v2/write", params={"bucket": PREFIX, "precision": "s"}, content=body, headers=device
    )
    assert r.status_code == 400
    assert r.json()["code"] == "invalid"
    message = r.json()["message"]
    assert message.startswith("partial write: ") and "line 2:" in message and "line 3:" in message
    assert raw(client, f"{PREFIX}/tank/level") == [("2026-01-01T00:00:00Z", 2.5)]
    v1 = client.post("/write", params={"db": PREFIX}, content="nofields", headers=device)
    assert v1.status_code == 400 and "line 1:" in v1.json()["error"]


def test_credentials_and_prefixes_are_enforced(client: TestClient, device: dict[str, str]) -> None:
    line = f"m v=1 {T0_S}"
    assert client.post("/api/v2/write", params={"bucket": PREFIX}, content=line).status_code == 401
    user = client.post(
        "/api/v2/write", params={"bucket": PREFIX}, content=line,
        headers={"Authorization": client.headers["Authorization"]},
    )  # fmt: skip
    assert user.status_code == 401  # a user's token is no device credential
    outside = client.post(
        "/api/v2/write", params={"bucket": "globex/plant9", "precision": "s"}, content=line,
        headers=device,
    )  # fmt: skip
    assert outside.status_code == 400 and "may publish only under acme" in outside.json()["message"]
    missing = client.post("/api/v2/write", content=line, headers=device)
    assert missing.status_code == 400 and "?bucket=" in missing.json()["detail"]
    broken = client.post(
        "/write", params={"db": PREFIX}, content=b"\x1f\x8bnot gzip",
        headers={**device, "Content-Encoding": "gzip"},
    )  # fmt: skip
    assert broken.status_code == 400 and "not valid gzip" in broken.json()["detail"]
