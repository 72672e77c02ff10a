"""The value chain: its engine (orders, planning, lots, genealogy; docs/valuechain.md), its API
and its metrics."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from kiln.api.subsystem import BuildContext, Mount, SettingsSection, Subsystem
from kiln.core.platform import Platform, Service, Stage
from kiln.valuechain.settings import ValuechainSettings

# The engine, its stores, the webhooks and the routers are imported where they are used: every
# `kiln` command reads this declaration (its settings section) and needs none of them.


def _services(ctx: BuildContext) -> Iterable[tuple[Service, Stage]]:
    from kiln.valuechain.engine import ValuechainEngine
    from kiln.valuechain.store import ValuechainStore
    from kiln.valuechain.webhook_store import WebhookStore
    from kiln.valuechain.webhooks import ValuechainWebhooks

    settings = ctx.settings.section(ValuechainSettings)
    data_dir = ctx.settings.data_dir
    services: list[tuple[Service, Stage]] = []
    if settings.webhooks:
        # Before the engine: it subscribes before the engine's outbox publishes.
        hooks = ValuechainWebhooks(settings, WebhookStore(settings.webhooks_url_in(data_dir)))
        services.append((hooks, Stage.ENGINES))
    store = ValuechainStore(settings.url_in(data_dir), clock=ctx.clock)
    services.append((ValuechainEngine(store, settings), Stage.ENGINES))
    return services


class ValuechainCollector(Collector):
    """The engine's figures at scrape time (nothing when it does not run in this process)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def collect(self) -> Iterator[Metric]:
        from kiln.valuechain.engine import ValuechainEngine

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
    routers=tuple(
        Mount(f"kiln.api.routers.{name}")
        for name in ("valuechain", "lots", "valuechain_exchange", "lot_frames")
    ),
    after=("model", "historian", "sim", "production"),
)
