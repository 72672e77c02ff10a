"""Prometheus metrics of the historian: commits, compression, retention, rollups, disk."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kiln.core.platform import Platform


class HistorianCollector(Collector):
    """Read from the running historian at scrape time."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def collect(self) -> Iterator[Metric]:
        # Here: the historian's declaration (read by every `kiln` command) imports this module.
        from kiln.historian.service import Historian

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
