"""The historian: one batched writer, queries, compression, retention, rollups, live values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from kiln.api.subsystem import (
    BuildContext,
    ErrorHandler,
    LazyErrorHandlers,
    Mount,
    SettingsSection,
    Subsystem,
)
from kiln.app.subsystems.historian_metrics import HistorianCollector
from kiln.connectors.http.settings import IngestSettings
from kiln.core.compression import CompressionSpec
from kiln.core.platform import Service, Stage
from kiln.historian.maths.compression import rules_resolver
from kiln.historian.maths.rollup import parse_widths
from kiln.historian.maths.thinning import Resolver
from kiln.historian.retention import retention_resolver
from kiln.historian.settings import HistorianSettings
from kiln.model.definitions import resolve_tags

if TYPE_CHECKING:
    from fastapi import Request
    from fastapi.responses import Response

# The service, its store (DuckDB, Arrow), FastAPI and the routers are imported where they are
# used: every `kiln` command reads this declaration (its settings section) and needs none.


def _compression(ctx: BuildContext) -> Resolver | None:
    """Compression by path rules and by the tag definitions of the declared assets' types."""
    by_name = {t.name: t for t in ctx.asset_types}
    typed: dict[str, CompressionSpec] = {}
    for asset in ctx.assets:
        if asset.type is not None and asset.type in by_name:
            for tag in resolve_tags(asset.type, by_name):
                if tag.compression is not None:
                    typed[f"{asset.path}/{tag.name}"] = tag.compression
    rules = ctx.settings.section(HistorianSettings).compression
    return rules_resolver(rules, typed) if rules or typed else None


def _services(ctx: BuildContext) -> Iterable[tuple[Service, Stage]]:
    from kiln.historian.service import Historian

    settings = ctx.settings
    hist = settings.section(HistorianSettings)
    # The ingest's bound on future timestamps also keeps them from becoming a tag's latest.
    ingest = settings.section_or_none(IngestSettings) or IngestSettings()
    retention = hist.retention
    historian = Historian(
        hist.path_in(settings.data_dir),
        url=hist.url,
        partition_days=hist.partition_days,
        max_batch_points=hist.max_batch_points,
        queue_points=hist.queue_points,
        compression=_compression(ctx),
        retention=retention_resolver(retention) if retention else None,
        disk_limit_bytes=hist.disk_limit_bytes,
        housekeeping_s=hist.housekeeping_s,
        rollups=parse_widths(hist.rollups),
        rollup_retention=retention_resolver(retention, rollups=True) if retention else None,
        rollup_s=hist.rollup_s,
        max_future_s=ingest.max_future_s,
    )
    return ((historian, Stage.STORAGE),)


async def _stopped(request: Request, err: Exception) -> Response:
    from fastapi.responses import JSONResponse

    return JSONResponse({"detail": f"{err}; try again shortly"}, status_code=503)


def _error_handlers() -> Mapping[type[Exception], ErrorHandler]:
    from kiln.historian.store import StoreClosedError

    return {StoreClosedError: _stopped}


SUBSYSTEM = Subsystem(
    name="historian",
    sections=(SettingsSection("historian", HistorianSettings, HistorianSettings),),
    services=_services,
    routers=tuple(
        Mount(f"kiln.api.routers.{name}") for name in ("values", "history", "history_analysis")
    ),
    error_handlers=LazyErrorHandlers(_error_handlers),
    collectors=lambda platform: (HistorianCollector(platform),),
)
