"""POST /api/v1/write under hostile input: each case gets its status and a message that says what
is wrong, the server keeps answering, and nothing reaches the device or the stored values.

The fake connector stands in for the device in the table (its `written` list is the device's
memory); a real pymodbus server on loopback covers what only a real protocol can say: a tag that
is read-only, a value out of the register's range, and a device that is down.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from api_helpers import make_app_client, make_settings
from fastapi.testclient import TestClient
from pymodbus.server import ModbusTcpServer

from kiln.connectors.backoff import BackoffSettings
from kiln.connectors.modbus.codec import Table
from kiln.connectors.modbus.config import ModbusConfig
from kiln.sim.modbus import RegisterImage, modbus_server
from kiln.testing.auth import admin_headers, device_headers, user_headers
from kiln.testing.connector import SOURCES, FakeConfig, FakeSource
from kiln.testing.server import free_port

SETPOINT = "acme/site1/utilities/water/cell1/p1/setpoint"
OTHER_SITE = "acme/site2/utilities/water/cell1/p1/setpoint"
DEAD = "acme/site1/utilities/water/cell1/p2/setpoint"
PASSWORD = "correct horse battery"
JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class Case:
    """One hostile request: `body` is sent as JSON unless `raw` gives the bytes."""

    name: str
    status: int
    fragment: str
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    who: str = "admin"


def doc(path: object = SETPOINT, **value: object) -> dict[str, object]:
    return {"path": path, **value}


def raw(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode()


CASES = [
    # Wrong types and missing fields: 422 naming the field.
    Case("value is an object", 422, "value", doc(value={"a": 1})),
    Case("value is a list", 422, "value", doc(value=[1, 2])),
    Case("value is null", 422, "value", doc(value=None)),
    Case("value is missing", 422, "Field required", doc()),
    Case("path is missing", 422, "path", {"value": 1}),
    Case("path is a number", 422, "path", {"path": 7, "value": 1}),
    Case("body is a list", 422, "object", [SETPOINT, 1]),
    Case("body is a string", 422, "object", "acme"),
    # Numbers that are not values: the same rule as ingest (finite, 64-bit, 4096 characters).
    # The schema cannot state the first two, so they are 400; a string too long is 422.
    Case("NaN", 400, "finite", raw=raw(f'{{"path": "{SETPOINT}", "value": NaN}}')),
    Case("Infinity", 400, "finite", raw=raw(f'{{"path": "{SETPOINT}", "value": Infinity}}')),
    Case("-Infinity", 400, "finite", raw=raw(f'{{"path": "{SETPOINT}", "value": -Infinity}}')),
    Case("1e999 overflows to inf", 400, "finite",
         raw=raw(f'{{"path": "{SETPOINT}", "value": 1e999}}')),
    Case("integer over 64 bits", 400, "64 bits", doc(value=2**64)),
    Case("integer under 64 bits", 400, "64 bits", doc(value=-(2**63) - 1)),
    Case("5000-digit integer", 400, "digits",
         raw=raw(f'{{"path": "{SETPOINT}", "value": {"9" * 5000}}}')),
    Case("string over 4096 characters", 422, "4096", doc(value="x" * 4097)),
    # Tags that are not there, or not for this caller: as unknown as a missing one.
    Case("unknown tag", 404, "no writable tag", doc(SETPOINT + "x", value=1)),
    Case("out of scope", 404, "no writable tag", doc(OTHER_SITE, value=1), who="erin"),
    Case("no devices:write", 403, "devices:write", doc(value=1), who="vic"),
    Case("device credential", 401, "credentials", doc(value=1), who="gw"),
    Case("no credential", 401, "", doc(value=1), who="nobody"),
    # Paths that try to leave their place: refused, never rewritten.
    Case("dot-dot segment", 400, "invalid segment",
         doc("acme/site1/../site2/p1/setpoint", value=1)),
    Case("NUL in a segment", 400, "invalid segment", doc(SETPOINT + "\x00", value=1)),
    Case("%2F in a segment", 400, "invalid segment", doc("acme/site1%2F..%2Fsite2/x", value=1)),
    Case("leading slash", 400, "invalid segment", doc("/" + SETPOINT, value=1)),
    Case("empty path", 400, "path is empty", doc("", value=1)),
    Case("path over 1024 characters", 422, "1024", doc("acme/" + "a" * 2000, value=1)),
    # Bodies that are not a write.
    Case("body over the write limit", 413, "bytes", doc(value=1, pad="x" * 70_000)),
    Case("deeply nested JSON", 400, "nested too deeply",
         raw=raw(f'{{"path": "{SETPOINT}", "value": ' + "[" * 5000 + "]" * 5000 + "}")),
    Case("invalid UTF-8", 400, "UTF-8", raw=b'{"path": "acme/\xff\xfe", "value": 1}'),
    Case("not JSON", 400, "not JSON", raw=raw(f"path={SETPOINT}&value=1")),
    Case("empty body", 400, "not JSON", raw=b""),
    Case("text/plain", 415, "application/json", doc(value=1),
         headers={"content-type": "text/plain"}),
    Case("form", 415, "application/json", raw=raw(f"path={SETPOINT}&value=1"),
         headers={"content-type": "application/x-www-form-urlencoded"}),
    Case("no content type", 415, "application/json", raw=raw(json.dumps(doc(value=1))),
         headers={}),
    # A device that is down: nothing is sent, and a retry can cure it.
    Case("device is down", 503, "not connected", doc(DEAD, value=1)),
]  # fmt: skip


@dataclass
class Plant:
    client: TestClient
    headers: dict[str, dict[str, str]]
    pump: FakeSource
    dead: FakeSource


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plant]:
    SOURCES.clear()
    pump = SOURCES["pump"] = FakeSource()
    dead = SOURCES["dead"] = FakeSource(up=False)
    data = tmp_path_factory.mktemp("write-hostile") / "data"
    connectors = [
        FakeConfig(name="pump-plc", source="pump", tags=[SETPOINT, OTHER_SITE]),
        FakeConfig(name="dead-plc", source="dead", tags=[DEAD]),
    ]
    with make_app_client(make_settings(data, connectors=connectors)) as client:
        admin = admin_headers(client, data)
        headers = {
            "admin": admin,
            "erin": user_headers(client, admin, "erin", PASSWORD, ["engineer"], "acme/site1"),
            "vic": user_headers(client, admin, "vic", PASSWORD, ["viewer"]),
            "gw": device_headers(client, admin, "gw", "acme"),
            "nobody": {},
        }
        r = client.post("/api/v1/ingest", headers=headers["gw"],
                        json={"values": [{"path": SETPOINT, "value": 40.0}]})  # fmt: skip
        assert r.status_code in (200, 202, 204), r.text
        yield Plant(client, headers, pump, dead)
    SOURCES.clear()


def stored(plant: Plant) -> object:
    r = plant.client.get(
        "/api/v1/values/latest", params={"path": SETPOINT}, headers=plant.headers["admin"]
    )
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_write_is_refused_and_changes_nothing(plant: Plant, case: Case) -> None:
    client = plant.client
    # Each case starts from an untouched device, so one failure does not hide behind another.
    plant.pump.written.clear()
    plant.dead.written.clear()
    before = stored(plant)
    content = case.raw if case.raw is not None else raw(json.dumps(case.body))
    r = client.post(
        "/api/v1/write", content=content, headers={**plant.headers[case.who], **case.headers}
    )
    assert r.status_code == case.status, r.text
    detail = json.dumps(r.json())
    assert case.fragment in detail, detail
    if case.status == 503:
        assert r.headers.get("Retry-After", "").isdigit()
    assert client.get("/api/v1/health").status_code == 200
    assert plant.pump.written == []
    assert plant.dead.written == []
    assert stored(plant) == before


def test_a_valid_write_still_goes_through_after_the_corpus(plant: Plant) -> None:
    r = plant.client.post(
        "/api/v1/write", json={"path": SETPOINT, "value": 41}, headers=plant.headers["admin"]
    )
    assert r.status_code == 200, r.text
    assert plant.pump.written == [(SETPOINT, 41)]
    plant.pump.written.clear()


# ------------------------------------------------------------------------ a real Modbus device

PREFIX = "acme/site1/utilities/water/cell1/p3"


class ModbusDevice:
    """A pymodbus server on its own event loop in a thread, so it can stop while the app runs."""

    def __init__(self) -> None:
        self.port = free_port()
        self.image = RegisterImage()
        self.image.define(1, Table.HOLDING_REGISTER, 0, 20)
        self.image.define(1, Table.INPUT_REGISTER, 0, 20)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = self._call(self._serve())

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    async def _serve(self) -> ModbusTcpServer:
        server = modbus_server(self.image, "127.0.0.1", self.port)  # needs a running loop
        self.task = asyncio.create_task(server.serve_forever())
        return server

    def stop(self) -> None:
        self._call(self.server.shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)

    def holding(self) -> list[int]:
        return self.image.get(1, Table.HOLDING_REGISTER, 0, 20)


def until(check: Callable[[], bool]) -> None:
    # A condition of real sockets on another thread's loop: there is no event to wait on.
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def health_text(client: TestClient, admin: dict[str, str]) -> str:
    """The health document as text: the connector's state is in it as '"connected"'."""
    return json.dumps(client.get("/api/v1/health", headers=admin).json())


def test_modbus_refusals_and_a_device_that_is_down(tmp_path: Path) -> None:
    device = ModbusDevice()
    config = ModbusConfig.model_validate({
        "name": "p3-plc", "host": "127.0.0.1", "port": device.port, "timeout_s": 0.5,
        "reconnect": BackoffSettings(initial_s=0.1, max_s=0.4, jitter=False),
        "devices": [{"unit": 1, "prefix": PREFIX, "poll_groups": [{"interval_ms": 100, "tags": [
            {"name": "setpoint", "address": 0, "type": "uint16", "writable": True},
            {"name": "limit", "address": 1, "type": "uint16"},
            {"name": "level", "table": "input_register", "address": 0, "type": "uint16"},
        ]}]}],
    })  # fmt: skip
    data = tmp_path / "data"
    try:
        with make_app_client(make_settings(data, connectors=[config])) as client:
            admin = admin_headers(client, data)

            def write(tag: str, value: object) -> tuple[int, str]:
                r = client.post("/api/v1/write", json={"path": f"{PREFIX}/{tag}", "value": value},
                                headers=admin)  # fmt: skip
                return r.status_code, r.json()["detail"] if r.status_code != 200 else ""

            until(lambda: '"connected"' in health_text(client, admin))
            assert write("setpoint", 7) == (200, "")
            assert device.holding()[0] == 7
            status, detail = write("limit", 5)
            assert status == 400 and "not a writable tag" in detail
            status, detail = write("level", 5)
            assert status == 400 and "not a writable tag" in detail
            status, detail = write("setpoint", 70_000)
            assert status == 400 and "outside the uint16 range" in detail
            status, detail = write("setpoint", "high")
            assert status == 400 and "needs a number" in detail
            assert device.holding()[:2] == [7, 0]

            device.stop()
            until(lambda: '"connected"' not in health_text(client, admin))
            r = client.post("/api/v1/write", json={"path": f"{PREFIX}/setpoint", "value": 9},
                            headers=admin)  # fmt: skip
            assert r.status_code == 503, r.text
            assert "not connected" in r.json()["detail"]
            assert r.headers["Retry-After"].isdigit()
            assert client.get("/api/v1/health").status_code == 200
            assert device.holding()[:2] == [7, 0]
    finally:
        if device.thread.is_alive():
            device.stop()
