"""A third party's subsystem, as it would ship in its own package: a tank gauge with a settings
section, two services, a route, a metric and a command. `docs/subsystems.md` walks through the
same example; tests/app/test_third_party_subsystem.py installs it through the entry points."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import Field

from kiln.api.auth import SystemReader
from kiln.api.deps import service
from kiln.api.subsystem import BuildContext, Commands, Mount, SettingsSection, Subsystem
from kiln.app.settings import load_settings
from kiln.core.platform import Health, Platform, Service, Stage, Status
from kiln.core.settings import PlantSettings, Section
from kiln.historian.service import Historian


class TankSettings(Section):
    capacity_l: float = Field(default=1000.0, gt=0, description="volume of the tank")
    site: str = "plant1"


# What the services saw when they started: the test reads it to check the stage order.
JOURNAL: list[tuple[str, Status]] = []


class TankGauge:
    """Reads the tank (an engine: the historian is up when it starts)."""

    name = "tank-gauge"

    def __init__(self, capacity_l: float) -> None:
        self.capacity_l = capacity_l
        self.running = False

    async def start(self, platform: Platform) -> None:
        JOURNAL.append((self.name, platform.service(Historian).health().status))
        self.running = True

    async def stop(self) -> None:
        self.running = False

    def health(self) -> Health:
        return Health(Status.OK if self.running else Status.STARTING, {})


class TankPump:
    """Fills the tank (a source: starts last)."""

    name = "tank-pump"

    async def start(self, platform: Platform) -> None:
        JOURNAL.append((self.name, platform.service(TankGauge).health().status))

    async def stop(self) -> None:
        return None

    def health(self) -> Health:
        return Health(Status.OK, {})


def _services(ctx: BuildContext) -> Iterable[tuple[Service, Stage]]:
    tank = ctx.settings.section(TankSettings)
    # Listed source first on purpose: the stages, not this order, decide who starts first.
    return ((TankPump(), Stage.SOURCES), (TankGauge(tank.capacity_l), Stage.ENGINES))


GaugeDep = Annotated[TankGauge, Depends(service(TankGauge))]
router = APIRouter(tags=["tank"])


@router.get("/tank")
def tank(who: SystemReader, gauge: GaugeDep) -> dict[str, float]:
    return {"capacity_l": gauge.capacity_l}


class TankCollector(Collector):
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def collect(self) -> Iterator[Metric]:
        gauge = self.platform.service(TankGauge)
        yield GaugeMetricFamily("kiln_tank_capacity_liters", "tank volume", gauge.capacity_l)


def _show(args: argparse.Namespace) -> int:
    tank = load_settings(args.config).section(TankSettings)
    print(f"tank at {tank.site}: {tank.capacity_l:g} l")
    return 0


def _commands(commands: Commands) -> None:
    show = commands.add_parser("tank", help="show the tank's settings")
    show.add_argument("--config", type=Path, required=True)
    show.set_defaults(handler=_show)


def _summary(settings: PlantSettings) -> str:
    return f"tank of {settings.section(TankSettings).capacity_l:g} l"


SUBSYSTEM = Subsystem(
    name="tank",
    sections=(SettingsSection("tank", TankSettings, TankSettings, "the tank gauge"),),
    services=_services,
    routers=(Mount(router),),
    collectors=lambda platform: (TankCollector(platform),),
    cli=_commands,
    summary=_summary,
)
