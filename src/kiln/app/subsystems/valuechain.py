"""The value chain: its engine (orders, planning, lots, genealogy; docs/valuechain.md), its API
and its metrics."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from kiln.api.routers import lots, valuechain, valuechain_exchange
from kiln.api.subsystem import BuildContext, Mount, SettingsSection, Subsystem
from kiln.core.platform import Platform, Service, Stage
from kiln.valuechain.engine import ValuechainEngine
from kiln.valuechain.settings import ValuechainSettings
from kiln.valuechain.store import ValuechainStore


def _services(ctx: BuildContext) -> Iterable[tuple[Service, Stage]]:
    settings = ctx.settings.section(ValuechainSettings)
    store = ValuechainStore(settings.url_in(ctx.settings.data_dir), clock=ctx.clock)
    return ((ValuechainEngine(store, settings), Stage.ENGINES),)


class ValuechainCollector(Collector):
    """The engine's figures at scrape time (nothing when it does not run in this process)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def collect(self) -> Iterator[Metric]:
        if not self.platform.has(ValuechainEngine):
            return
        stats = self.platform.service(ValuechainEngine).stats
        yield CounterMetricFamily(
            "kiln_valuechain_commands", "commands the value chain engine answered", stats.commands
        )
        yield CounterMetricFamily(
            "kiln_valuechain_changes", "changes the value chain engine committed", stats.changes
        )
        yield CounterMetricFamily(
            "kiln_valuechain_events", "value chain events published", stats.published
        )


SUBSYSTEM = Subsystem(
    name="valuechain",
    sections=(
        SettingsSection(
            "valuechain",
            ValuechainSettings,
            ValuechainSettings,
            "orders, material planning, lots and genealogy",
        ),
    ),
    services=_services,
    collectors=lambda platform: (ValuechainCollector(platform),),
    routers=(Mount(valuechain.router), Mount(lots.router), Mount(valuechain_exchange.router)),
    after=("model", "historian", "sim", "production"),
)
