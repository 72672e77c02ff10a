"""A running alarm engine on a fake clock, for the engine's tests (test_alarm_engine.py).

The engine runs as it does in Kiln: a platform service on the in-process bus, its journal in
SQLite. Values go in over the bus, operator actions as the `alarms` target's bus commands (as the
API sends them), and what comes out is read back from the store and from the `alarm.transition`
events. Time moves only when a test moves it; the engine's own tick loop is set far apart so that
the test decides when time is let pass (`advance`), which makes every source time exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from kiln.alarms.definitions import AlarmDef
from kiln.alarms.engine import AlarmEngine, Declared
from kiln.alarms.records import ALARMS_TARGET, TRANSITION_KIND, AlarmRecord, JournalEntry
from kiln.alarms.store import AlarmStore, JournalQuery
from kiln.core.bus import Command, EventSubscription, InProcessBus
from kiln.core.bus import Event as BusEvent
from kiln.core.platform import Platform, Stage
from kiln.core.values import ValueBatch
from kiln.db.urls import sqlite_url
from kiln.model import AssetDef, AssetTypeDef, DataType, Level, TagDef
from kiln.testing import FakeClock

S = 1_000_000  # microseconds per second
ASSET = "acme/plant1/line1/oven1"
MACHINE_STATES = {0: "running", 1: "planned_stop", 2: "fault"}
OVEN = AssetTypeDef(
    name="oven",
    tags=(
        TagDef(name="temp", unit="degC"),
        TagDef(name="state", data_type=DataType.STATE, states=MACHINE_STATES),
    ),
)
# Far beyond any test's advance: the tick loop never runs by itself unless a test asks for it.
IDLE_TICK_S = 86_400.0
_ALARM: TypeAdapter[AlarmDef] = TypeAdapter(AlarmDef)
_WAIT_S = 10.0


def tag(name: str) -> str:
    return f"{ASSET}/{name}"


def alarm_id(name: str) -> str:
    return f"{ASSET}/{name}"


@dataclass
class Rig:
    """The running engine and what a test needs to drive it and read it back."""

    platform: Platform
    engine: AlarmEngine
    clock: FakeClock
    events: EventSubscription
    _fed: int = 0

    @property
    def now(self) -> int:
        return self.clock.now_us()

    async def feed(self, name: str, value: float | int | str) -> int:
        """Publish one value of the oven's tag `name` at the clock's now, wait until the
        engine has evaluated it and committed what it caused; its source time."""
        at = self.now
        batch = ValueBatch(paths=[tag(name)], values=[value], source_us=[at], qualities=[0],
                           receive_us=at)  # fmt: skip
        self._fed += 1
        await self.platform.bus.publish(batch)
        await _until(lambda: self.engine.stats.points >= self._fed, "the engine to take the value")
        # The engine counts a batch's points under its lock, before the commit; a tick takes the
        # same lock, so it returns after that commit. At the clock's now it lets nothing pass
        # that had not already passed.
        await self.engine.tick()
        return at

    async def advance(self, seconds: float) -> list[JournalEntry]:
        """Let `seconds` pass and the engine see it (its tick); the entries that caused."""
        await self.clock.advance(seconds)
        return await self.engine.tick()

    async def command(self, name: str, **args: Any) -> Mapping[str, Any]:
        """One command to the engine, as the API sends it (the bus checks it is JSON)."""
        return await self.platform.bus.request(Command(ALARMS_TARGET, name, args), timeout_s=5)

    def record(self, alarm: str) -> AlarmRecord:
        return self.engine.records[alarm]

    def stored(self, alarm: str) -> AlarmRecord:
        """The record as the store holds it (what a restart would load)."""
        return self.engine.store.load()[alarm]

    def journal(self, alarm: str | None = None) -> list[JournalEntry]:
        """Every journal entry (of `alarm`), oldest first."""
        return self.engine.store.journal(JournalQuery(alarm_id=alarm, ascending=True))

    async def published(self) -> list[BusEvent]:
        """The `alarm.transition` events published since the last call."""
        out: list[BusEvent] = []
        while True:
            try:
                delivery = await asyncio.wait_for(self.events.get(), 0.05)
            except TimeoutError:
                return out
            out.append(delivery.event)


async def _until(check: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _WAIT_S
    while not check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


def row(entry: JournalEntry) -> tuple[str, str, str, int, Any, bool, str]:
    """What a test compares of an entry: event, old and new state, occurrence, value,
    announced, user."""
    return (
        entry.event,
        entry.old_state.value,
        entry.new_state.value,
        entry.occurrence,
        entry.value,
        entry.announced,
        entry.user,
    )


@asynccontextmanager
async def running_engine(
    data_dir: Path,
    *alarms: Mapping[str, Any],
    tick_s: float = IDLE_TICK_S,
) -> AsyncIterator[Rig]:
    """An engine over one oven asset carrying `alarms` (definitions as in the plant file)."""
    clock = FakeClock()
    defs = tuple(_ALARM.validate_python(a) for a in alarms)
    assets = [
        AssetDef(path="acme", level=Level.ENTERPRISE),
        AssetDef(path=ASSET, level=Level.ASSET, type="oven", alarms=defs),
    ]
    engine = AlarmEngine(
        AlarmStore(sqlite_url(data_dir / "alarms.db")),
        Declared(types=[OVEN], assets=assets),
        tick_s=tick_s,
    )
    platform = Platform(clock=clock, data_dir=data_dir, bus=InProcessBus(clock))
    platform.add(engine, Stage.ENGINES)
    async with platform:
        events = platform.bus.subscribe_events("test", kinds=(TRANSITION_KIND,))
        try:
            yield Rig(platform, engine, clock, events)
        finally:
            events.close()
