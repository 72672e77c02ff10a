"""Write-back and the connector list when the API's process shares a broker bus with others:
nobody serving the connectors means the sources process is not there now, not that the plant
has no writable tag or no connectors. (In one process it does: `test_write_command.py`.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import make_app_client, make_settings
from fastapi.testclient import TestClient

from kiln.cluster.settings import BusSettings
from kiln.testing.auth import admin_headers, user_headers
from kiln.testing.nats import NATS_URL, require_nats, unique_prefix

SETPOINT = "acme/site1/utilities/water/cell1/p1/setpoint"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    require_nats()
    data = tmp_path / "data"
    settings = make_settings(data, bus=BusSettings(url=NATS_URL, prefix=unique_prefix()))
    with make_app_client(settings) as client:
        client.headers.update(admin_headers(client, data))
        yield client
        bus: Any = client.app.state.platform.bus  # type: ignore[attr-defined]
        assert client.portal is not None
        client.portal.call(bus.destroy)  # this test's streams go with it


def test_a_write_nobody_can_take_now_is_503_with_retry_after(client: TestClient) -> None:
    r = client.post("/api/v1/write", json={"path": SETPOINT, "value": 1})
    assert r.status_code == 503, r.text
    assert "no process runs the connectors" in r.json()["detail"]
    assert "nothing was written" in r.json()["detail"]
    assert r.headers["Retry-After"].isdigit()
    # The permission check still comes first: who may not write is told nothing more.
    viewer = user_headers(client, dict(client.headers), "vic", "correct horse battery", ["viewer"])
    r = client.post("/api/v1/write", json={"path": SETPOINT, "value": 1}, headers=viewer)
    assert r.status_code == 403 and "devices:write" in r.json()["detail"]


def test_the_connector_list_says_the_connectors_could_not_be_asked(client: TestClient) -> None:
    r = client.get("/api/v1/connectors")
    assert r.status_code == 503, r.text
    assert "could not be asked" in r.json()["detail"]
    assert r.headers["Retry-After"].isdigit()
