from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from kiln.api.auth import ValuesReader
from kiln.api.deps import PlatformDep, SettingsDep, service
from kiln.api.exports import FormatQ, export
from kiln.api.schemas import AggregateOut, PointOut, RawOut
from kiln.api.settings import QueryLimits
from kiln.core.clock import us_to_datetime
from kiln.core.quality import quality_name
from kiln.core.timespec import parse_duration_us, parse_time_us
from kiln.historian.frames import raw_table
from kiln.historian.maths.aggregates import EVENT, check_aggregates
from kiln.historian.maths.calendar import parse_interval, suggest_interval
from kiln.historian.service import Historian
from kiln.model.service import AssetModel
from kiln.security.permissions import Permission
from kiln.security.principal import Principal

HistorianDep = Annotated[Historian, Depends(service(Historian))]
ModelDep = Annotated[AssetModel, Depends(service(AssetModel))]

router = APIRouter(prefix="/history", tags=["history"])

TagQ = Annotated[str, Query(description="tag path")]
StartQ = Annotated[str, Query(description="ISO 8601, epoch ms, now, or relative like -1h")]
EndQ = Annotated[str, Query(description="ISO 8601, epoch ms, now, or relative like -5m")]


def _range(platform_now: int, start: str, end: str) -> tuple[int, int]:
    try:
        start_us, end_us = parse_time_us(start, platform_now), parse_time_us(end, platform_now)
    except ValueError as err:
        raise HTTPException(400, str(err)) from None
    if end_us <= start_us:
        raise HTTPException(400, f"end ({end}) must be after start ({start})")
    return start_us, end_us


def _known(tag: str, model: ModelDep, historian: HistorianDep, who: Principal) -> None:
    """404 for a tag that does not exist or that the caller may not see (no existence leak)."""
    unknown = model.tag(tag) is None and historian.series_kind(tag) is None
    if unknown or not who.sees(Permission.VALUES_READ, tag):
        parent = tag.rsplit("/", 1)[0]
        raise HTTPException(
            404, f"no tag {tag!r}: list the tags there with /api/v1/tags?prefix={parent}"
        )


def _fixed_interval(text: str) -> int:
    """`15min`, `15m`, `1h` (as /history/summary takes them) or `1.5h`, in microseconds."""
    try:
        interval = parse_interval(text)
    except ValueError:
        return parse_duration_us(text)
    if interval.calendar and interval.unit != "d":
        raise ValueError(
            f"{text!r} is a calendar interval: /history/aggregate takes fixed ones (s, min, h, "
            "d); use /history/summary for weeks, months and years"
        )
    return interval.count * 86_400_000_000 if interval.calendar else interval.fixed_us


@router.get("/raw", response_model=RawOut)
async def raw(
    historian: HistorianDep,
    model: ModelDep,
    who: ValuesReader,
    platform: PlatformDep,
    settings: SettingsDep,
    tag: TagQ,
    start: StartQ = "-1h",
    end: EndQ = "now",
    limit: Annotated[int | None, Query(ge=1)] = None,
    format: FormatQ = "json",
) -> RawOut | Response:
    """Stored values in [start, end) in time order, at most `limit`; page on with `next_start`."""
    limits = settings.section(QueryLimits)
    bound = limits.raw_max
    limit = limit or min(limits.raw_default, bound)
    if limit > bound:
        raise HTTPException(
            400,
            f"limit {limit} exceeds {bound}: page through the range with next_start, "
            "or use /history/aggregate for an overview",
        )
    _known(tag, model, historian, who)
    start_us, end_us = _range(platform.clock.now_us(), start, end)
    result = await historian.raw(tag, start_us, end_us, limit=limit)
    if format != "json":
        return export(raw_table(result), format, "raw")
    next_start = None
    if result.truncated and result.points:
        next_start = us_to_datetime(result.points[-1].source_us + 1)
    return RawOut(
        tag=tag,
        start=us_to_datetime(start_us),
        end=us_to_datetime(end_us),
        values=[
            PointOut(ts=p.source_ts, value=p.value, quality=quality_name(p.quality))
            for p in result.points
        ],
        truncated=result.truncated,
        next_start=next_start,
    )


@router.get("/aggregate", response_model=AggregateOut)
async def aggregate(
    historian: HistorianDep,
    model: ModelDep,
    who: ValuesReader,
    platform: PlatformDep,
    settings: SettingsDep,
    tag: TagQ,
    start: StartQ = "-1h",
    end: EndQ = "now",
    interval: Annotated[str, Query(description="bucket width: 10s, 1min (or 1m), 1h, 1d")] = "1m",
    agg: Annotated[str, Query(description=f"comma-separated: {', '.join(EVENT)}")] = "avg",
) -> AggregateOut:
    """Bucketed aggregates of Good-quality values; buckets start at multiples of the interval."""
    _known(tag, model, historian, who)
    start_us, end_us = _range(platform.clock.now_us(), start, end)
    try:
        interval_us = _fixed_interval(interval)
    except ValueError as err:
        raise HTTPException(400, str(err)) from None
    try:
        aggs = check_aggregates(agg, allowed=EVENT)
    except ValueError as err:
        raise HTTPException(400, str(err)) from None
    buckets = -(-(end_us - start_us) // interval_us)
    max_buckets = settings.section(QueryLimits).max_buckets
    if buckets > max_buckets:
        better = suggest_interval(end_us - start_us, max_buckets)
        raise HTTPException(
            400,
            f"the query would return {buckets} buckets (limit {max_buckets}): "
            f"use interval={better} or a shorter range",
        )
    rows = await historian.aggregate(tag, start_us, end_us, interval_us, aggs)
    return AggregateOut(
        tag=tag,
        start=us_to_datetime(start_us),
        end=us_to_datetime(end_us),
        interval=interval,
        aggs=aggs,
        buckets=[{"ts": us_to_datetime(b.start_us), **b.values} for b in rows],
    )
