"""Write-back and the connector list go through the bus: the API only sends commands.

No connector is configured here; the test serves target `connectors` itself, as another
process would, and sees every request arrive as a command and every answer mapped to HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from api_helpers import make_app_client, make_settings
from fastapi.testclient import TestClient

from kiln.api.routers import connectors as connectors_route
from kiln.api.routers import write as write_route
from kiln.core.bus import Command, CommandError, CommandFailure, CommandHandler, CommandServer
from kiln.testing.auth import admin_headers, user_headers

SETPOINT = "acme/site1/utilities/water/cell1/p1/setpoint"
PASSWORD = "correct horse battery"


class Served:
    """A handler of target `connectors` registered on the app's bus, and what it was sent."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.commands: list[Command] = []
        self.answer: Mapping[str, Any] | Exception = {}
        self.server: CommandServer | None = None

    async def _handle(self, command: Command) -> Mapping[str, Any]:
        self.commands.append(command)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def serve(self, handler: CommandHandler | None = None) -> None:
        bus = self.client.app.state.platform.bus  # type: ignore[attr-defined]

        async def register() -> None:
            self.server = await bus.serve("connectors", handler or self._handle)

        assert self.client.portal is not None
        self.client.portal.call(register)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, Served]]:
    data = tmp_path / "data"
    with make_app_client(make_settings(data)) as client:
        client.headers.update(admin_headers(client, data))
        yield client, Served(client)


def audited(client: TestClient) -> list[tuple[str, dict[str, Any]]]:
    auditor = user_headers(client, dict(client.headers), "aud", PASSWORD, ["auditor"])
    records = client.get("/api/v1/audit", params={"category": "device_write"},
                         headers=auditor).json()["records"]  # fmt: skip
    return [(r["result"], r["detail"]) for r in records]


def test_a_write_is_a_command_to_whoever_serves_the_connectors(
    app: tuple[TestClient, Served],
) -> None:
    client, served = app
    # Nobody serves the target yet: as unknown as a tag no connector writes.
    r = client.post("/api/v1/write", json={"path": SETPOINT, "value": 1})
    assert r.status_code == 404 and "no writable tag" in r.json()["detail"]

    served.serve()
    served.answer = {"connector": "remote-plc"}
    r = client.post("/api/v1/write", json={"path": SETPOINT, "value": 42.5})
    assert r.status_code == 200, r.text
    assert r.json() == {"path": SETPOINT, "connector": "remote-plc", "old_value": None,
                        "value": 42.5}  # fmt: skip
    assert [(c.target, c.name, dict(c.args)) for c in served.commands] == [
        ("connectors", "write", {"path": SETPOINT, "value": 42.5})
    ]

    answers = [
        (CommandFailure.NOT_FOUND, "no connector can write it", 404, "no writable tag"),
        (CommandFailure.UNAVAILABLE, "connector remote-plc is not connected", 503, "retry"),
        (CommandFailure.INVALID, "setpoint is read-only", 400, "setpoint is read-only"),
        (CommandFailure.FAILED, "exception code 4", 502, "did not take the write: exception"),
    ]
    for kind, message, status, fragment in answers:
        served.answer = CommandError(kind, message)
        r = client.post("/api/v1/write", json={"path": SETPOINT, "value": 7})
        assert r.status_code == status, (kind, r.text)
        assert fragment in r.json()["detail"]
        if status == 503:
            assert r.headers["Retry-After"].isdigit()

    # Audited as before: the success and each refusal that reached a connector, not the 404s.
    assert audited(client) == [
        ("success", {"old": None, "new": 42.5, "connector": "remote-plc"}),
        ("failure", {"old": None, "new": 7, "error": "connector remote-plc is not connected"}),
        ("failure", {"old": None, "new": 7, "error": "setpoint is read-only"}),
        ("failure", {"old": None, "new": 7, "error": "exception code 4"}),
    ]


def test_no_answer_before_the_deadline_is_504_and_audited(
    app: tuple[TestClient, Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, served = app
    monkeypatch.setattr(write_route, "WRITE_DEADLINE_S", 0.2)
    monkeypatch.setattr(connectors_route, "STATUS_DEADLINE_S", 0.2)
    cancelled: list[str] = []

    async def stuck(command: Command) -> Mapping[str, Any]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(command.name)
            raise
        return {}

    served.serve(stuck)
    r = client.post("/api/v1/write", json={"path": SETPOINT, "value": 3})
    assert r.status_code == 504, r.text
    assert "within 0.2 s" in r.json()["detail"] and "read the tag" in r.json()["detail"]
    r = client.get("/api/v1/connectors")
    assert r.status_code == 504 and "no answer from the connectors" in r.json()["detail"]
    assert cancelled == ["write", "status"]
    [(result, detail)] = audited(client)
    assert result == "failure" and detail["new"] == 3 and "within 0.2 s" in detail["error"]


def test_the_connector_list_is_the_status_command(app: tuple[TestClient, Served]) -> None:
    client, served = app
    assert client.get("/api/v1/connectors").json() == {"connectors": []}  # nobody serves
    served.serve()
    served.answer = {"connectors": {
        "remote-plc": {"type": "modbus", "state": "error", "reason": "refused", "attempts": 2,
                       "since": "2026-01-01T00:00:00+00:00", "malformed": 1},
    }}  # fmt: skip
    r = client.get("/api/v1/connectors")
    assert r.status_code == 200, r.text
    assert r.json() == {"connectors": [{
        "name": "remote-plc", "type": "modbus", "state": "error", "reason": "refused",
        "since": "2026-01-01T00:00:00+00:00", "attempts": 2, "detail": {"malformed": 1},
    }]}  # fmt: skip
    assert [c.name for c in served.commands] == ["status"]
