"""Production: the engine (machine states, counts, orders, OEE; docs/production.md), its API and
its metrics. The plant file's `production:` section and what other subsystems contribute (the
virtual factory's state models, calendar and products) are merged here; the plant file wins
where both name the same asset type, site or product."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from kiln.alarms.definitions import DiscreteAlarm, Priority
from kiln.api.subsystem import BuildContext, Mount, SettingsSection, Subsystem
from kiln.core.errors import ConfigError
from kiln.core.platform import Platform, Service, Stage
from kiln.production import SpcDef
from kiln.production.plan import PlanError
from kiln.production.settings import ProductionSettings

# The engine, its store and the routers are imported where they are used: every `kiln` command
# reads this declaration (its settings section) and needs none of them.


def merged_settings(ctx: BuildContext) -> ProductionSettings:
    conf = ctx.settings.section(ProductionSettings)
    calendars = {c.site: c for c in ctx.calendars} | {c.site: c for c in conf.calendars}
    products = {p.code: p for p in ctx.products} | {p.code: p for p in conf.products}
    charts = {c.name: c for c in ctx.spc_charts} | {c.name: c for c in conf.spc}
    return conf.model_copy(
        update={
            "types": dict(ctx.state_models) | dict(conf.types),
            "calendars": list(calendars.values()),
            "products": list(products.values()),
            "spc": list(charts.values()),
        }
    )


def spc_alarm(chart: SpcDef) -> DiscreteAlarm:
    """The alarm of a live SPC chart: active while its latest subgroup broke a rule (the
    companion tag holds the rule's number), cleared a minute after it is back in control so
    that a process hovering at a limit does not chatter."""
    from kiln.production.engine import SPC_SUFFIX

    return DiscreteAlarm(
        name=f"spc_{chart.name}"[:64],
        tag=chart.tag + SPC_SUFFIX,
        states=tuple(range(1, 9)),
        priority=Priority(chart.priority),
        off_delay_s=60.0,
        message="{asset}: {tag} out of statistical control (rule {value})",
    )


def _contribute(ctx: BuildContext) -> None:
    # After the virtual factory's contribution (`after`), before any service is built: the
    # alarm engine is given an alarm for every live SPC chart.
    ctx.tag_alarms += [spc_alarm(c) for c in merged_settings(ctx).spc]


def _services(ctx: BuildContext) -> Iterable[tuple[Service, Stage]]:
    from kiln.production.engine import Declared, ProductionEngine
    from kiln.production.store import ProductionStore

    settings = merged_settings(ctx)
    try:
        engine = ProductionEngine(
            ProductionStore(settings.url_in(ctx.settings.data_dir), clock=ctx.clock),
            Declared(list(ctx.asset_types), list(ctx.assets)),
            settings,
        )
    except PlanError as err:
        # Refused here, with the plant file's names, rather than when the engine starts.
        raise ConfigError(f"production: {err}") from None
    return ((engine, Stage.ENGINES),)


class ProductionCollector(Collector):
    """The engine's figures at scrape time (nothing when it does not run in this process)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def collect(self) -> Iterator[Metric]:
        from kiln.production.engine import ProductionEngine

        if not self.platform.has(ProductionEngine):
            return
        engine = self.platform.service(ProductionEngine)
        yield GaugeMetricFamily(
            "kiln_production_assets", "assets whose states the engine follows", len(engine.plans)
        )
        yield CounterMetricFamily(
            "kiln_production_points", "samples of followed tags recorded", engine.stats.points
        )
        yield CounterMetricFamily(
            "kiln_production_late_points",
            "samples that arrived after a later one of their asset",
            engine.stats.late,
        )
        yield CounterMetricFamily(
            "kiln_production_state_rows", "state rows written", engine.stats.rows
        )


SUBSYSTEM = Subsystem(
    name="production",
    sections=(
        SettingsSection(
            "production",
            ProductionSettings,
            ProductionSettings,
            "machine states, shift calendars, products and OEE",
        ),
    ),
    services=_services,
    collectors=lambda platform: (ProductionCollector(platform),),
    routers=(Mount("kiln.api.routers.production"), Mount("kiln.api.routers.spc")),
    contribute=_contribute,
    after=("model", "historian", "sim"),
)
