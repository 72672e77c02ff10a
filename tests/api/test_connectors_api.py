"""GET /api/v1/connectors: each connector's state and, while it is not connected, the reason."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import make_app_client, make_settings
from fastapi.testclient import TestClient

from kiln.testing.auth import admin_headers, user_headers
from kiln.testing.connector import SOURCES, FakeConfig, FakeSource

PASSWORD = "correct horse battery"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    SOURCES.clear()
    SOURCES["up"] = FakeSource()
    SOURCES["down"] = FakeSource(up=False)
    data = tmp_path / "data"
    connectors = [
        FakeConfig(name="press-plc", source="up", tags=["acme/site1/press/p1/force"]),
        FakeConfig(name="oven-plc", source="down", tags=["acme/site1/oven/o1/temp"]),
    ]
    with make_app_client(make_settings(data, connectors=connectors)) as c:
        c.headers.update(admin_headers(c, data))
        yield c
    SOURCES.clear()


def _settled(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    """The list once both connectors have left "connecting" (their first attempt is done)."""
    deadline = time.monotonic() + 10
    while True:
        r = client.get("/api/v1/connectors", headers=headers)
        assert r.status_code == 200, r.text
        connectors: list[dict[str, Any]] = r.json()["connectors"]
        if all(c["state"] != "connecting" for c in connectors) or time.monotonic() > deadline:
            return connectors
        time.sleep(0.05)


def test_connectors_list_state_and_reason_for_system_readers(client: TestClient) -> None:
    engineer = user_headers(client, dict(client.headers), "erin", PASSWORD, ["engineer"])
    by_name = {c["name"]: c for c in _settled(client, engineer)}
    assert list(by_name) == ["oven-plc", "press-plc"], "sorted by name"

    press = by_name["press-plc"]
    assert (press["type"], press["state"], press["reason"], press["since"]) == (
        "fake", "connected", None, None,
    )  # fmt: skip
    oven = by_name["oven-plc"]
    assert oven["state"] == "error"
    assert "fake source down is down" in oven["reason"]
    assert oven["since"] is not None and oven["attempts"] >= 1
    assert {"type", "state", "reason", "since", "attempts"}.isdisjoint(oven["detail"])


def test_connectors_are_refused_without_system_read(client: TestClient) -> None:
    viewer = user_headers(client, dict(client.headers), "vic", PASSWORD, ["viewer"])
    r = client.get("/api/v1/connectors", headers=viewer)
    assert r.status_code == 403 and "system:read" in r.json()["detail"]
    assert client.get("/api/v1/connectors", headers={"Authorization": ""}).status_code == 401
