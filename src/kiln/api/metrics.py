"""Prometheus metrics, read from the live platform at scrape time.

Here: the core's own (the bus, each service's health as `kiln_subsystem_up`). Every subsystem
brings collectors for its services (`Subsystem.collectors`); the API registers them all.

A collector per app (never the global default registry) keeps two platforms in one process,
as in tests, from sharing counters.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kiln.core.platform import Platform, Status

_STATUS_VALUE = {Status.OK: 1.0, Status.DEGRADED: 0.5, Status.STARTING: 0.5}


class PlatformCollector(Collector):
    """The bus and every service's health: what any platform has, whatever is installed."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def collect(self) -> Iterator[Metric]:
        yield from self._bus()
        up = GaugeMetricFamily(
            "kiln_subsystem_up", "1 ok, 0.5 degraded or starting, 0 failed", labels=["subsystem"]
        )
        for name, health in self.platform.health().items():
            up.add_metric([name], _STATUS_VALUE.get(health.status, 0.0))
        yield up

    def _bus(self) -> Iterator[Metric]:
        # Only what the Bus protocol offers, so the figures are the same whatever carries it.
        bus = self.platform.bus
        yield CounterMetricFamily(
            "kiln_bus_published_points", "points published on the bus", value=bus.published_points
        )
        yield CounterMetricFamily(
            "kiln_bus_published_batches", "batches published on the bus",
            value=bus.published_batches,
        )  # fmt: skip
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
            "depth_points": GaugeMetricFamily(
                "kiln_bus_queue_depth_points", "points waiting per subscriber",
                labels=["subscriber"],
            ),
            "max_points": GaugeMetricFamily(
                "kiln_bus_queue_max_points", "queue bound per subscriber", labels=["subscriber"]
            ),
            "dropped_points": CounterMetricFamily(
                "kiln_bus_dropped_points", "points dropped by overflow", labels=["subscriber"]
            ),
            "blocked_seconds": CounterMetricFamily(
                "kiln_bus_blocked_seconds",
                "time publishers waited on a full queue (back-pressure)",
                labels=["subscriber"],
            ),
            "delivered_points": CounterMetricFamily(
                "kiln_bus_delivered_points", "points taken by each subscriber",
                labels=["subscriber"],
            ),
        }  # fmt: skip
        # Live connections come and go; fold them into one label (summed) to bound cardinality.
        sums: dict[str, dict[str, float]] = {}
        for sub in bus.subscriptions:
            label = "live" if sub.name.startswith("live#") else sub.name
            row = sums.setdefault(label, dict.fromkeys(families, 0.0))
            for field in families:
                row[field] += getattr(sub.stats, field)
        for label, row in sums.items():
            for field, family in families.items():
                family.add_metric([label], row[field])
        yield from families.values()


def render(registry: CollectorRegistry) -> bytes:
    data: bytes = generate_latest(registry)
    return data
