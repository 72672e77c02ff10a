"""The virtual factory: simulated machines feeding the platform, over real protocols or directly.

Off unless the plant file has a `sim:` section. It contributes its machines' asset types and
assets to the model, their state models, shift calendar and products to production (and keeps
an order running on each line), and the connector configurations that read its servers to the connectors;
its servers start before the connectors that read them (`before`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from kiln.api.subsystem import BuildContext, Commands, SettingsSection, Subsystem
from kiln.app import cli_sim
from kiln.connectors.base import ConnectorConfig
from kiln.core.platform import Platform, Service, Stage
from kiln.core.settings import PlantSettings
from kiln.production.calendar import from_pattern
from kiln.sim import FactorySpec, catalog
from kiln.sim.settings import SimServeSettings
from kiln.valuechain.settings import ValuechainSettings

if TYPE_CHECKING:
    from kiln.sim.sinks import FrameSink

# The factory, its protocol servers (OPC UA, Modbus, MQTT stacks) and its services are imported
# only when the factory runs: every `kiln` command reads this declaration (its sections and
# `kiln sim`), and a plant without `sim:` builds without them.

SIM: SettingsSection[FactorySpec | None] = SettingsSection(
    "sim", FactorySpec | None, lambda: None, "run the virtual factory in-process"
)


def _servers(ctx: BuildContext) -> tuple[list[FrameSink], list[ConnectorConfig]]:
    # Made once per build: the servers' addresses go to the connectors, the servers to the
    # source that feeds them.
    spec = SIM.of(ctx.settings)
    if spec is None:
        return [], []
    from kiln.sim.servers import simulated_servers

    return simulated_servers(spec, ctx.settings.section(SimServeSettings))


def _contribute(ctx: BuildContext) -> None:
    spec = SIM.of(ctx.settings)
    if spec is None:
        return
    from kiln.sim import VirtualFactory, orders

    # The factory's structure does not depend on its start time; 0 is as good as any here.
    factory = VirtualFactory(spec, 0)
    ctx.asset_types += factory.asset_types()
    ctx.assets += factory.assets()
    ctx.connectors += ctx.once(_servers)[1]
    # What production needs to compute the factory's OEE: how its tags map to states, its
    # shift calendar and its products (the plant file's own win where they name the same).
    ctx.state_models.update(catalog.state_models())
    ctx.calendars.append(from_pattern(f"{spec.enterprise}/{spec.site}", spec.shifts))
    ctx.products += orders.products()
    fillers = [a.path for a in factory.assets() if a.type == catalog.FILLER]
    ctx.spc_charts += catalog.spc_charts(fillers)


def _services(ctx: BuildContext) -> Iterable[tuple[Service, Stage]]:
    spec = SIM.of(ctx.settings)
    if spec is None:
        return ()
    from kiln.sim import SimSource, orders
    from kiln.sim.trading import SimTrading

    services: list[tuple[Service, Stage]] = [
        (SimSource(spec, ctx.once(_servers)[0]), Stage.SOURCES),
        # Engines' stage: it dispatches orders to the production engine by bus commands.
        (orders.SimOrders(spec), Stage.ENGINES),
    ]
    if ctx.settings.section_or_none(ValuechainSettings) is not None:
        # The company around the factory trades through the value chain engine's commands.
        services.append((SimTrading(spec), Stage.ENGINES))
    return services


class SimCollector(Collector):
    """The simulator's steps, and the steps it skipped falling behind."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def collect(self) -> Iterator[Metric]:
        # Without its module imported no simulator runs: a plant without `sim:` is not made to
        # import the protocol stacks by a scrape.
        if "kiln.sim.source" not in sys.modules:
            return
        from kiln.sim.source import SimSource

        if not self.platform.has(SimSource):
            return
        sim = self.platform.service(SimSource)
        yield CounterMetricFamily("kiln_sim_ticks", "simulator steps", value=sim.ticks)
        yield CounterMetricFamily(
            "kiln_sim_skipped_ticks",
            "steps skipped because the simulator fell behind",
            value=sim.skipped_ticks,
        )


def _summary(settings: PlantSettings) -> str:
    return f"simulator {'on' if SIM.of(settings) is not None else 'off'}"


def _commands(commands: Commands) -> None:
    cli_sim.add_parser(commands)


SUBSYSTEM = Subsystem(
    name="sim",
    sections=(SIM, SettingsSection("sim_serve", SimServeSettings, SimServeSettings)),
    contribute=_contribute,
    services=_services,
    collectors=lambda platform: (SimCollector(platform),),
    cli=_commands,
    summary=_summary,
    before=("connectors",),
)
