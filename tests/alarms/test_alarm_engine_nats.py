"""The alarm engine on NATS JetStream (kiln.cluster): alarms work the same in one process or
several (issue 14, "build on the event and command channels of the bus").

The machine's NATS on 4222 with a fresh bus prefix per test, whose streams are deleted
afterwards (as tests/cluster does). Without NATS these tests are skipped, and under CI=true
they fail (kiln.testing.nats.require_nats).

- The engine in a platform of its own on one NatsBus node, and a second node standing for the
  API's process: values published there raise the alarm, `list`, `ack` and `journal` are
  answered over NATS, and the `alarm.transition` events arrive there.
- The whole app on NATS (`bus.url` set, one process): values ingested over HTTP raise the alarm,
  the alarm API answers (its commands cross the broker), and the live WebSocket shows the change.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from engine_helpers import ASSET, OVEN, alarm_id, tag
from pydantic import TypeAdapter

from kiln.alarms.definitions import AlarmDef
from kiln.alarms.engine import AlarmEngine, Declared
from kiln.alarms.records import ALARMS_TARGET, TRANSITION_KIND
from kiln.alarms.store import AlarmStore
from kiln.cluster.settings import BusSettings
from kiln.core.bus import Command, EventSubscription
from kiln.core.bus import Event as BusEvent
from kiln.core.clock import SystemClock
from kiln.core.platform import Platform, Stage
from kiln.core.values import ValueBatch
from kiln.db.urls import sqlite_url
from kiln.model import AssetDef, Level
from kiln.model.settings import ModelSettings
from kiln.testing.auth import admin_headers, device_headers
from kiln.testing.nats import NATS_URL, require_nats, unique_prefix

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))
from api_helpers import make_app_client, make_settings

if TYPE_CHECKING:  # importing the adapter itself needs the nats extra
    from kiln.cluster.nats_bus import NatsBus

pytestmark = pytest.mark.slow

HOT = alarm_id("hot:hi")
WAIT_S = 15.0
HOT_DEF: Mapping[str, Any] = {"kind": "limit", "name": "hot", "tag": "temp", "hi": {"value": 80}}


def _assets() -> list[AssetDef]:
    hot = TypeAdapter[AlarmDef](AlarmDef).validate_python(HOT_DEF)
    return [
        AssetDef(path="acme", level=Level.ENTERPRISE),
        AssetDef(path=ASSET, level=Level.ASSET, type="oven", alarms=(hot,)),
    ]


async def _destroy(prefix: str) -> None:
    from kiln.cluster.nats_bus import NatsBus

    bus = NatsBus(NATS_URL, SystemClock(), node="cleanup", prefix=prefix)
    await bus.start()
    try:
        await bus.destroy()
    finally:
        await bus.stop()


@pytest.fixture
def prefix() -> Iterator[str]:
    """A bus prefix of this test's own; its streams are deleted afterwards."""
    require_nats()
    name = unique_prefix()
    yield name
    asyncio.run(_destroy(name))


def _bus(prefix: str, node: str) -> NatsBus:
    from kiln.cluster.nats_bus import NatsBus

    return NatsBus(NATS_URL, SystemClock(), node=node, prefix=prefix, max_events=10_000)


async def _next_event(sub: EventSubscription, want: Callable[[BusEvent], bool]) -> BusEvent:
    """The first event `want` accepts (acknowledging each, as a durable consumer would)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            delivery = await sub.get()
            await delivery.ack()
            if want(delivery.event):
                return delivery.event


def _is(event: str) -> Callable[[BusEvent], bool]:
    return lambda e: e.key == HOT and e.data["entry"]["event"] == event


@pytest.fixture
async def api_bus(prefix: str) -> AsyncIterator[NatsBus]:
    """The node standing for the API's process."""
    bus = _bus(prefix, "api")
    await bus.start()
    try:
        yield bus
    finally:
        await bus.stop()


async def test_values_commands_and_events_cross_nats(
    tmp_path: Path, prefix: str, api_bus: NatsBus
) -> None:
    engine = AlarmEngine(
        AlarmStore(sqlite_url(tmp_path / "alarms.db")), Declared(types=[OVEN], assets=_assets())
    )
    platform = Platform(clock=SystemClock(), data_dir=tmp_path, bus=_bus(prefix, "engine"))
    platform.add(engine, Stage.ENGINES)
    events = api_bus.subscribe_events("probe", kinds=(TRANSITION_KIND,), durable=True)
    await asyncio.wait_for(events.created, WAIT_S)

    async def ask(name: str, **args: Any) -> Mapping[str, Any]:
        return await api_bus.request(Command(ALARMS_TARGET, name, args), timeout_s=WAIT_S)

    async with platform:
        # The engine's own consumer is created as it starts, without this node waiting for
        # it: the value is sent again until the alarm shows (a repeat of an active alarm's
        # value changes nothing).
        raised_us = 0
        deadline = time.monotonic() + WAIT_S
        while engine.records[HOT].state.process.value == "normal":
            assert time.monotonic() < deadline, "the engine never saw the value over NATS"
            raised_us = raised_us or SystemClock().now_us()
            now = SystemClock().now_us()
            await api_bus.publish(ValueBatch(paths=[tag("temp")], values=[91.5],
                                             source_us=[now], qualities=[0], receive_us=now))  # fmt: skip
            await asyncio.sleep(0.2)

        raised = await _next_event(events, _is("becomes_abnormal"))
        assert raised.data["alarm"]["state"] == "unacknowledged"
        assert raised.data["entry"]["value"] == 91.5 and raised.data["entry"]["announced"]
        assert raised.id == f"{HOT}#{raised.data['entry']['seq']}"

        listed = await ask("list")
        assert [(a["id"], a["state"], a["value"]) for a in listed["alarms"]] == [
            (HOT, "unacknowledged", 91.5)
        ]
        [result] = (await ask("ack", ids=[HOT], note="over nats", user="op1"))["results"]
        assert result["ok"] and result["alarm"]["state"] == "acknowledged"
        acked = await _next_event(events, _is("acknowledge"))
        assert acked.data["entry"]["user"] == "op1"
        assert acked.data["entry"]["comment"] == "over nats"
        assert acked.data["alarm"]["acked_by"] == "op1"

        journal = (await ask("journal", alarm_id=HOT, ascending=True))["entries"]
        assert [e["event"] for e in journal] == ["becomes_abnormal", "acknowledge"]
        assert journal == [raised.data["entry"], acked.data["entry"]]
        # A refusal crosses the broker as a refusal, with the engine's reason.
        [again] = (await ask("ack", ids=[HOT], user="op1"))["results"]
        assert not again["ok"] and "already acknowledged" in again["error"]
    events.close()


def test_the_app_on_nats_raises_lists_and_acknowledges(tmp_path: Path, prefix: str) -> None:
    data = tmp_path / "data"
    settings = make_settings(
        data,
        model=ModelSettings(types=[OVEN], assets=_assets()),
        bus=BusSettings(url=NATS_URL, prefix=prefix, node="app"),
    )
    with make_app_client(settings) as client:
        admin = admin_headers(client, data)
        device = device_headers(client, admin, "oven-plc", ASSET)
        with client.websocket_connect(f"/api/v1/live?prefix={ASSET}", headers=admin) as ws:
            assert ws.receive_json()["snapshot"] is True
            body = {"values": [{"path": tag("temp"), "value": 93.0}]}
            r = client.post("/api/v1/ingest", json=body, headers=device)
            assert r.status_code == 200, r.text
            alarm: dict[str, Any] = {}
            while alarm.get("state") != "unacknowledged":  # values come first, then the alarm
                message = ws.receive_json()
                alarm = next((a for a in message.get("alarms", []) if a["id"] == HOT), alarm)
        listed = client.get("/api/v1/alarms", headers=admin).json()["alarms"]
        assert [(a["id"], a["state"], a["value"]) for a in listed] == [
            (HOT, "unacknowledged", 93.0)
        ]
        r = client.post("/api/v1/alarms/ack", json={"ids": [HOT]}, headers=admin)
        assert r.status_code == 200 and r.json()["results"][0]["ok"], r.text
        entries = client.get("/api/v1/alarms/journal", params={"alarm": HOT}, headers=admin).json()[
            "entries"
        ]
        assert [e["event"] for e in entries] == ["acknowledge", "becomes_abnormal"]
