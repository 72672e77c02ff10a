"""A running production engine on a fake clock, for the engine's tests.

The engine runs as in Kiln: a platform service on the in-process bus, its store in SQLite.
Values go in over the bus; questions and operator entries go as the `production` target's
commands, as the API sends them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from kiln.core.bus import Command, InProcessBus
from kiln.core.clock import datetime_to_us
from kiln.core.platform import Platform, Stage
from kiln.core.values import ValueBatch
from kiln.db.urls import sqlite_url
from kiln.model import AssetDef, AssetTypeDef, DataType, Level, TagDef
from kiln.production.calendar import BreakDef, CalendarDef, ShiftDef
from kiln.production.engine import PRODUCTION_TARGET, Declared, ProductionEngine
from kiln.production.settings import ProductionSettings
from kiln.production.states import REASON_NAMES, STATE_NAMES
from kiln.production.store import ProductionStore
from kiln.production.taxonomy import CounterDef, StateModel
from kiln.sim.catalog import state_models
from kiln.testing import FakeClock

BERLIN = ZoneInfo("Europe/Berlin")
SITE = "acme/plant1"
LINE = f"{SITE}/line1"
PRESS = f"{LINE}/press1"
PRESS2 = f"{LINE}/press2"
MIN = 60_000_000

PRESS_TYPE = AssetTypeDef(
    name="press",
    tags=(
        TagDef(name="state", data_type=DataType.STATE, states=STATE_NAMES),
        TagDef(name="stop_reason", data_type=DataType.STATE, states=REASON_NAMES),
        TagDef(name="good_count", data_type=DataType.INT),
        TagDef(name="scrap_count", data_type=DataType.INT),
        TagDef(name="pressure", unit="bar"),
    ),
)
PRESS_MODEL: StateModel = state_models()["machine"].model_copy(
    update={
        "good": CounterDef(tag="good_count"),
        "scrap": CounterDef(tag="scrap_count", rollover=65536),
        "ideal_cycle_s": 30.0,
    }
)
CALENDAR = CalendarDef(
    site=SITE,
    timezone="Europe/Berlin",
    shifts=(
        ShiftDef(
            name="night", start="22:00", end="06:00", breaks=(BreakDef(start="01:00", minutes=30),)
        ),
        ShiftDef(
            name="early", start="06:00", end="14:00", breaks=(BreakDef(start="10:00", minutes=30),)
        ),
        ShiftDef(
            name="late", start="14:00", end="22:00", breaks=(BreakDef(start="18:00", minutes=30),)
        ),
    ),
)


def local(text: str) -> int:
    """µs of a Berlin wall-clock time, '2026-03-29 10:00'."""
    return datetime_to_us(datetime.fromisoformat(text).replace(tzinfo=BERLIN))


@dataclass
class Rig:
    platform: Platform
    engine: ProductionEngine
    clock: FakeClock
    fed: int = 0

    async def feed(self, points: Sequence[tuple[str, str, float | int, int]]) -> None:
        """Publish (asset, tag, value, source µs) points as one batch; wait until recorded.
        (`fed` counts batches: the engine counts a batch before it takes the lock.)"""
        batch = ValueBatch(
            paths=[f"{a}/{t}" for a, t, _, _ in points],
            values=[v for _, _, v, _ in points],
            source_us=[s for _, _, _, s in points],
            qualities=[0] * len(points),
            receive_us=self.clock.now_us(),
        )
        self.fed += 1
        await self.platform.bus.publish(batch)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while self.engine.stats.batches < self.fed:
            assert loop.time() < deadline, "the engine did not record the points"
            await asyncio.sleep(0.005)
        # The batch is counted before the commit; the lock is held until it is done.
        async with self.engine._lock:
            pass

    async def ask(self, name: str, **args: Any) -> Mapping[str, Any]:
        return await self.platform.bus.request(Command(PRODUCTION_TARGET, name, args), timeout_s=10)


@asynccontextmanager
async def running(
    data_dir: Path,
    *,
    now_us: int,
    assets: Sequence[str] = (PRESS,),
    settings: ProductionSettings | None = None,
    queue_points: int = 200_000,
) -> AsyncIterator[Rig]:
    clock = FakeClock(now_us)
    declared = Declared(
        types=[PRESS_TYPE],
        assets=[
            AssetDef(path="acme", level=Level.ENTERPRISE),
            AssetDef(path=SITE, level=Level.SITE),
            AssetDef(path=LINE, level=Level.LINE),
            *(AssetDef(path=a, level=Level.ASSET, type="press") for a in assets),
        ],
    )
    conf = settings or ProductionSettings(types={"press": PRESS_MODEL}, calendars=[CALENDAR])
    engine = ProductionEngine(
        ProductionStore(sqlite_url(data_dir / "production.db"), clock=clock),
        declared,
        conf,
        queue_points=queue_points,
    )
    platform = Platform(clock=clock, data_dir=data_dir, bus=InProcessBus(clock))
    platform.add(engine, Stage.ENGINES)
    async with platform:
        yield Rig(platform, engine, clock)
