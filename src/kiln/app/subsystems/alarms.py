"""Alarms: the engine (definitions on the asset model's types and assets, the journal, operator
actions over the bus), its API and its metrics."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from kiln.alarms.notify.settings import NotificationSettings
from kiln.alarms.settings import AlarmSettings
from kiln.api.subsystem import BuildContext, Mount, SettingsSection, Subsystem
from kiln.core.errors import ConfigError
from kiln.core.platform import Platform, Service, Stage

# The engine, its stores and the router are imported where they are used: every `kiln` command
# reads this declaration (its settings sections) and needs none of them.


def _services(ctx: BuildContext) -> Iterable[tuple[Service, Stage]]:
    from kiln.alarms.compile import AlarmConfigError, compile_alarms
    from kiln.alarms.engine import AlarmEngine, Declared
    from kiln.alarms.notify.service import NotificationService
    from kiln.alarms.notify.store import NotificationStore
    from kiln.alarms.store import AlarmStore

    settings = ctx.settings
    conf = settings.section(AlarmSettings)
    # The plant file's tag alarms and those other subsystems contribute (production's SPC).
    tag_alarms = [*conf.definitions, *ctx.tag_alarms]
    declared = Declared(list(ctx.asset_types), list(ctx.assets), tag_alarms)
    try:
        # Refused here, with the plant file's names, rather than when the engine starts.
        compile_alarms(declared.types, declared.assets, declared.tag_alarms)
    except AlarmConfigError as err:
        raise ConfigError(f"alarms: {err}") from None
    services: list[tuple[Service, Stage]] = []
    notes = settings.section(NotificationSettings)
    # Always, even without pipelines: its deliveries route answers (an empty list), and the
    # pipelines added later start from a subscription that has been following the events.
    # Before the engine: it subscribes before the engine publishes its first transitions.
    store = NotificationStore(notes.url_in(settings.data_dir))
    services.append((NotificationService(notes, store), Stage.ENGINES))
    engine = AlarmEngine(
        AlarmStore(conf.url_in(settings.data_dir)),
        declared,
        max_shelve_s=conf.max_shelve_s,
        note_required=conf.note_required,
        tick_s=conf.tick_s,
    )
    services.append((engine, Stage.ENGINES))
    return services


class AlarmCollector(Collector):
    """The engine's figures at scrape time (nothing when it does not run in this process)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def collect(self) -> Iterator[Metric]:
        from kiln.alarms.engine import AlarmEngine

        if not self.platform.has(AlarmEngine):
            return
        engine = self.platform.service(AlarmEngine)
        active = GaugeMetricFamily(
            "kiln_alarms_active", "alarms whose condition is active", labels=["priority"]
        )
        unacked = GaugeMetricFamily(
            "kiln_alarms_unacknowledged", "alarms awaiting acknowledgement", labels=["priority"]
        )
        counts: dict[str, list[int]] = {}
        for rec in engine.records.values():
            c = counts.setdefault(rec.priority.value, [0, 0])
            c[0] += rec.state.process.value in ("unacknowledged", "acknowledged")
            c[1] += rec.state.process.value.endswith("unacknowledged")
        for priority, (a, u) in sorted(counts.items()):
            active.add_metric([priority], a)
            unacked.add_metric([priority], u)
        yield active
        yield unacked
        yield GaugeMetricFamily("kiln_alarms_defined", "alarms defined", len(engine.specs))
        yield CounterMetricFamily(
            "kiln_alarm_transitions", "journal entries committed", engine.stats.transitions
        )
        yield CounterMetricFamily(
            "kiln_alarm_points", "values evaluated for alarms", engine.stats.points
        )


SUBSYSTEM = Subsystem(
    name="alarms",
    sections=(
        SettingsSection("alarms", AlarmSettings, AlarmSettings, "alarms and the journal"),
        SettingsSection(
            "notifications",
            NotificationSettings,
            NotificationSettings,
            "alarm notification pipelines, users and channels",
        ),
    ),
    services=_services,
    routers=(Mount("kiln.api.routers.alarms"),),
    collectors=lambda platform: (AlarmCollector(platform),),
    after=("model", "historian"),
)
