"""Prometheus metrics, read from the live platform at scrape time.

A collector per app (never the global default registry) keeps two platforms in one process,
as in tests, from sharing counters.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kiln.connectors.base import ConnectorState
from kiln.connectors.http.ingest import HttpIngest
from kiln.connectors.service import Connectors
from kiln.core.platform import Platform, Status
from kiln.historian import Historian
from kiln.security.audit import AuditLog
from kiln.sim import SimSource

_STATUS_VALUE = {Status.OK: 1.0, Status.DEGRADED: 0.5, Status.STARTING: 0.5}


class PlatformCollector(Collector):
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def collect(self) -> Iterator[Metric]:
        yield from self._bus()
        yield from self._historian()
        yield from self._ingest()
        yield from self._sim()
        yield from self._connectors()
        yield from self._audit()
        up = GaugeMetricFamily(
            "kiln_subsystem_up", "1 ok, 0.5 degraded or starting, 0 failed", labels=["subsystem"]
        )
        for name, health in self.platform.health().items():
            up.add_metric([name], _STATUS_VALUE.get(health.status, 0.0))
        yield up

    def _bus(self) -> Iterator[Metric]:
        bus = self.platform.bus
        yield CounterMetricFamily(
            "kiln_bus_published_points", "points published on the bus", value=bus.published_points
        )
        depth = GaugeMetricFamily(
            "kiln_bus_queue_depth_points", "points waiting per subscriber", labels=["subscriber"]
        )
        bound = GaugeMetricFamily(
            "kiln_bus_queue_max_points", "queue bound per subscriber", labels=["subscriber"]
        )
        dropped = CounterMetricFamily(
            "kiln_bus_dropped_points", "points dropped by overflow", labels=["subscriber"]
        )
        blocked = CounterMetricFamily(
            "kiln_bus_blocked_seconds",
            "time publishers waited on a full queue (back-pressure)",
            labels=["subscriber"],
        )
        delivered = CounterMetricFamily(
            "kiln_bus_delivered_points", "points taken by each subscriber", labels=["subscriber"]
        )
        for sub in self.platform.bus.subscriptions:
            # Live connections come and go; fold them into one label to bound cardinality.
            label = "live" if sub.name.startswith("live#") else sub.name
            st = sub.stats
            depth.add_metric([label], st.depth_points)
            bound.add_metric([label], st.max_points)
            dropped.add_metric([label], st.dropped_points)
            blocked.add_metric([label], st.blocked_seconds)
            delivered.add_metric([label], st.delivered_points)
        yield from (depth, bound, dropped, blocked, delivered)

    def _historian(self) -> Iterator[Metric]:
        if not self.platform.has(Historian):
            return
        st = self.platform.service(Historian).stats
        yield CounterMetricFamily(
            "kiln_historian_points_written", "points committed", value=st.points
        )
        yield CounterMetricFamily(
            "kiln_historian_late_points", "points stored out of order", value=st.late_points
        )
        yield CounterMetricFamily("kiln_historian_commits", "transactions", value=st.commits)
        yield CounterMetricFamily("kiln_historian_write_errors", "failed commits", value=st.errors)
        yield GaugeMetricFamily(
            "kiln_historian_series", "series (tags) with history", value=st.series
        )
        yield GaugeMetricFamily(
            "kiln_historian_last_batch_points",
            "points in the last commit",
            value=st.last_batch_points,
        )
        yield GaugeMetricFamily(
            "kiln_historian_commit_seconds_max",
            "slowest commit so far",
            value=st.commit_seconds_max,
        )
        commit = GaugeMetricFamily(
            "kiln_historian_commit_seconds_last",
            "duration of the last commit",
            value=st.last_commit_seconds,
        )
        yield commit
        yield CounterMetricFamily(
            "kiln_historian_commit_seconds", "time spent committing", value=st.commit_seconds_sum
        )
        yield CounterMetricFamily(
            "kiln_historian_compressed_points",
            "points dropped by per-tag compression",
            value=st.compressed_points,
        )
        yield CounterMetricFamily(
            "kiln_historian_retention_deleted_points",
            "points deleted by retention rules",
            value=st.retention_deleted_points,
        )
        yield CounterMetricFamily(
            "kiln_historian_limit_deleted_points",
            "points deleted because the disk limit was reached",
            value=st.limit_deleted_points,
        )
        yield CounterMetricFamily(
            "kiln_historian_rollup_rows_written",
            "rollup rows written (appends folded in, buckets recomputed)",
            value=st.rollup_rows_written,
        )
        yield CounterMetricFamily(
            "kiln_historian_rollup_seconds", "writer time spent on rollups",
            value=st.rollup_seconds_sum,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "kiln_historian_rollup_pending_series",
            "series whose rollups have work left (queries read raw points for it meanwhile)",
            value=st.rollup_pending_series,
        )
        yield CounterMetricFamily(
            "kiln_historian_rollup_deleted_rows",
            "rollup rows deleted by retention rules",
            value=st.rollup_deleted_rows,
        )
        yield GaugeMetricFamily(
            "kiln_historian_disk_used_bytes", "data blocks and WAL in use", value=st.disk_used_bytes
        )
        limit = self.platform.service(Historian).disk_limit_bytes
        if limit is not None:
            yield GaugeMetricFamily(
                "kiln_historian_disk_limit_bytes", "historian.disk_limit_bytes", value=limit
            )
        ratio = GaugeMetricFamily(
            "kiln_historian_compression_ratio",
            "points offered per point kept, per compressed tag",
            labels=["tag"],
        )
        for tag, c in sorted(self.platform.service(Historian).compression_stats().items()):
            ratio.add_metric([tag], c.ratio)
        yield ratio

    def _ingest(self) -> Iterator[Metric]:
        if not self.platform.has(HttpIngest):
            return
        st = self.platform.service(HttpIngest).stats
        yield CounterMetricFamily("kiln_ingest_requests", "ingest requests", value=st.requests)
        yield CounterMetricFamily(
            "kiln_ingest_accepted_points", "points accepted and durable", value=st.accepted_points
        )
        yield CounterMetricFamily(
            "kiln_ingest_rejected_points", "invalid points rejected", value=st.rejected_points
        )
        yield CounterMetricFamily(
            "kiln_ingest_not_durable", "requests answered 503", value=st.not_durable
        )

    def _audit(self) -> Iterator[Metric]:
        state = self.platform.service(AuditLog).integrity if self.platform.has(AuditLog) else None
        if state is None:
            return
        intact = not state.problems and state.error is None
        yield GaugeMetricFamily(
            "kiln_audit_integrity_ok",
            "1 while the audit chain verifies, 0 once a check found a break or could not read it",
            value=1.0 if intact else 0.0,
        )
        yield CounterMetricFamily(
            "kiln_audit_integrity_breaks", "distinct audit chain problems found", value=state.breaks
        )
        yield CounterMetricFamily(
            "kiln_audit_integrity_checks", "audit chain checks completed", value=state.checks
        )
        yield CounterMetricFamily(
            "kiln_audit_integrity_errors", "audit chain checks that could not read the log",
            value=state.errors,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "kiln_audit_verified_seq", "newest audit record verified", value=state.verified_seq
        )
        yield GaugeMetricFamily(
            "kiln_audit_integrity_check_seconds_last",
            "duration of the last audit chain check",
            value=state.last_duration_s,
        )

    def _sim(self) -> Iterator[Metric]:
        if not self.platform.has(SimSource):
            return
        sim = self.platform.service(SimSource)
        yield CounterMetricFamily("kiln_sim_ticks", "simulator steps", value=sim.ticks)
        yield CounterMetricFamily(
            "kiln_sim_skipped_ticks",
            "steps skipped because the simulator fell behind",
            value=sim.skipped_ticks,
        )

    def _connectors(self) -> Iterator[Metric]:
        if not self.platform.has(Connectors):
            return
        labels = ["connector", "type"]
        state = GaugeMetricFamily(
            "kiln_connector_state",
            "1 connected, 0.5 connecting or degraded, 0 error or stopped",
            labels=labels,
        )
        values = CounterMetricFamily("kiln_connector_values", "values published", labels=labels)
        malformed = CounterMetricFamily(
            "kiln_connector_malformed", "inputs dropped as undecodable", labels=labels
        )
        failures = CounterMetricFamily(
            "kiln_connector_failures", "connection attempts or runs that failed", labels=labels
        )
        reconnects = CounterMetricFamily(
            "kiln_connector_reconnects", "recoveries after an outage", labels=labels
        )
        for r in self.platform.service(Connectors).runners:
            key = [r.name, r.config.type]
            state.add_metric(key, _CONNECTOR_STATE_VALUE.get(r.effective_state, 0.0))
            st = r.link.stats
            values.add_metric(key, st.values + st.historical_values)
            malformed.add_metric(key, st.malformed)
            failures.add_metric(key, st.failures)
            reconnects.add_metric(key, st.reconnects)
        yield from (state, values, malformed, failures, reconnects)


_CONNECTOR_STATE_VALUE = {
    ConnectorState.CONNECTED: 1.0,
    ConnectorState.CONNECTING: 0.5,
    ConnectorState.DEGRADED: 0.5,
}


def render(registry: CollectorRegistry) -> bytes:
    data: bytes = generate_latest(registry)
    return data
