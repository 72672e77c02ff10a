"""HTTP ingest: JSON, bulk Arrow/Parquet and the Influx line protocol, acknowledged once durable."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from kiln.api.subsystem import (
    API_PREFIX,
    BuildContext,
    Mount,
    RouteBodyLimit,
    SettingsSection,
    Subsystem,
)
from kiln.connectors.http.settings import IngestSettings
from kiln.connectors.http.workers import BusyError
from kiln.core.platform import Platform, Service, Stage
from kiln.core.settings import PlantSettings

if TYPE_CHECKING:
    from fastapi import Request
    from fastapi.responses import Response

# The service, FastAPI and the routers are imported where they are used: every `kiln` command
# reads this declaration (its settings section) and needs none of them.


def _services(ctx: BuildContext) -> Iterable[tuple[Service, Stage]]:
    from kiln.connectors.http.ingest import HttpIngest

    cfg = ctx.settings.section(IngestSettings)
    service = HttpIngest(
        ack_timeout_s=cfg.ack_timeout_s,
        workers=cfg.workers,
        max_items=cfg.max_items,
        max_inflated_bytes=cfg.max_inflated_bytes,
        max_future_s=cfg.max_future_s,
    )
    return ((service, Stage.ENGINES),)


def _body_limits(settings: PlantSettings) -> Iterable[RouteBodyLimit]:
    bulk = settings.section(IngestSettings).bulk_max_bytes
    return (RouteBodyLimit(f"{API_PREFIX}/ingest/bulk", bulk, "ingest.bulk_max_bytes"),)


async def _busy(request: Request, err: Exception) -> Response:
    from fastapi.responses import JSONResponse

    assert isinstance(err, BusyError)
    headers = {"Retry-After": str(max(1, round(err.retry_after_s)))}
    return JSONResponse({"detail": str(err)}, status_code=503, headers=headers)


class IngestCollector(Collector):
    """Requests, and points accepted or refused, read at scrape time."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def collect(self) -> Iterator[Metric]:
        from kiln.connectors.http.ingest import HttpIngest

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


SUBSYSTEM = Subsystem(
    name="ingest",
    sections=(SettingsSection("ingest", IngestSettings, IngestSettings),),
    services=_services,
    # The Influx routes sit at the root, where Influx clients write.
    routers=(Mount("kiln.api.routers.ingest"), Mount("kiln.api.routers.influx", prefix="")),
    error_handlers={BusyError: _busy},
    body_limits=_body_limits,
    collectors=lambda platform: (IngestCollector(platform),),
)
