"""POST /api/v1/write: through the connector that owns the tag, permissioned and audited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import make_app_client, make_settings
from fastapi.testclient import TestClient

from kiln.testing.auth import admin_headers, device_headers, user_headers
from kiln.testing.connector import SOURCES, FakeConfig, FakeSource

SETPOINT = "acme/site1/utilities/water/cell1/p1/setpoint"
OTHER_SITE = "acme/site2/utilities/water/cell1/p1/setpoint"
PASSWORD = "correct horse battery"


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[tuple[TestClient, FakeSource]]:
    SOURCES.clear()
    source = SOURCES["pump"] = FakeSource()
    data = tmp_path / "data"
    fake = FakeConfig(name="pump-plc", source="pump", tags=[SETPOINT, OTHER_SITE])
    with make_app_client(make_settings(data, connectors=[fake])) as client:
        client.headers.update(admin_headers(client, data))
        yield client, source
    SOURCES.clear()


def test_write_goes_to_the_device_and_is_audited_with_old_and_new(
    plant: tuple[TestClient, FakeSource],
) -> None:
    client, source = plant
    admin = dict(client.headers)
    device = device_headers(client, admin, "gw", "acme")
    client.post("/api/v1/ingest", headers=device,
                json={"values": [{"path": SETPOINT, "value": 40.0}]})  # fmt: skip
    engineer = user_headers(client, admin, "erin", PASSWORD, ["engineer"], scope="acme/site1")
    r = client.post("/api/v1/write", json={"path": SETPOINT, "value": 42.5}, headers=engineer)
    assert r.status_code == 200, r.text
    assert r.json() == {"path": SETPOINT, "connector": "pump-plc", "old_value": 40.0, "value": 42.5}
    assert source.written == [(SETPOINT, 42.5)]

    # Outside the engineer's scope: as unknown as a tag that does not exist.
    outside = client.post("/api/v1/write", json={"path": OTHER_SITE, "value": 1}, headers=engineer)
    assert outside.status_code == 404
    nothing = client.post("/api/v1/write", json={"path": SETPOINT + "x", "value": 1},
                          headers=engineer)  # fmt: skip
    assert nothing.status_code == 404
    viewer = user_headers(client, admin, "vic", PASSWORD, ["viewer"])
    denied = client.post("/api/v1/write", json={"path": SETPOINT, "value": 1}, headers=viewer)
    assert denied.status_code == 403 and "devices:write" in denied.json()["detail"]
    assert source.written == [(SETPOINT, 42.5)]

    auditor = user_headers(client, admin, "aud", PASSWORD, ["auditor"])
    records = client.get("/api/v1/audit", params={"category": "device_write"},
                         headers=auditor).json()["records"]  # fmt: skip
    assert [(r["actor"], r["target"], r["result"], r["detail"]) for r in records] == [
        ("user:erin", SETPOINT, "success", {"old": 40.0, "new": 42.5, "connector": "pump-plc"})
    ]
