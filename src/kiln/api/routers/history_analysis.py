"""PI-style reads of history: summaries on calendar buckets, interpolated values, the value at
a time. Many tags in one request share the same buckets or times (see `kiln.historian.
aggregates` and `kiln.historian.maths.timeline` for the semantics)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, Field

from kiln.api.auth import ValuesReader
from kiln.api.deps import PlatformDep, SettingsDep, service
from kiln.api.exports import FormatQ, export
from kiln.api.responses import json_of
from kiln.api.routers.history import EndQ, StartQ, _known, _range
from kiln.api.settings import QueryLimits
from kiln.core.clock import us_to_datetime
from kiln.core.timespec import parse_time_us
from kiln.historian.frames import samples_table, summary_table
from kiln.historian.maths.aggregates import AGGREGATES, check_aggregates
from kiln.historian.maths.calendar import bucket_edges, parse_interval, suggest_interval
from kiln.historian.service import Historian
from kiln.model.service import AssetModel

HistorianDep = Annotated[Historian, Depends(service(Historian))]
ModelDep = Annotated[AssetModel, Depends(service(AssetModel))]

router = APIRouter(prefix="/history", tags=["history"])

TagsQ = Annotated[list[str], Query(description="tag path; repeat for several tags")]
IntervalQ = Annotated[
    str, Query(description="15min (or 15m), 1h, 1d, 1w, 1mo, 1y; d and longer follow `tz`")
]
TzQ = Annotated[str, Query(description="IANA time zone of the buckets, e.g. Europe/Berlin")]
MAX_TAGS = 100


class TagSummaryOut(BaseModel):
    tag: str
    kind: str | None = Field(description="float, int, bool or string; null if never stored")
    step: bool = Field(description="stepped (discrete) or interpolated linearly (analog)")
    values: dict[str, list[Any]] = Field(description="one list per aggregate, one per bucket")


class SummaryOut(BaseModel):
    start: datetime
    end: datetime
    interval: str
    tz: str
    aggs: list[str]
    buckets: list[datetime] = Field(description="start of each bucket")
    tags: list[TagSummaryOut]


class TagSamplesOut(BaseModel):
    tag: str
    kind: str | None
    step: bool
    values: list[Any] = Field(description="one per time; null where there was no valid value")


class InterpolatedOut(BaseModel):
    times: list[datetime]
    tags: list[TagSamplesOut]


class ValueAtOut(BaseModel):
    tag: str
    ts: datetime
    mode: str
    value: Any = Field(description="null: no valid value at that time")


def _tags(tags: list[str], model: ModelDep, historian: HistorianDep, who: ValuesReader) -> None:
    if not tags:
        raise HTTPException(400, "give at least one tag: ?tag=acme/plant1/line1/oven/temp")
    if len(tags) > MAX_TAGS:
        raise HTTPException(400, f"{len(tags)} tags requested; at most {MAX_TAGS} per request")
    for tag in tags:
        _known(tag, model, historian, who)


def _per_tag(settings: SettingsDep, tags: list[str]) -> int:
    """Buckets (or times) each tag may have: `limits.max_buckets` shared among the tags."""
    return max(1, settings.section(QueryLimits).max_buckets // len(tags))


def _edges(start_us: int, end_us: int, interval: str, tz: str, per_tag: int) -> Any:
    """Bucket edges clipped to [start, end): the first and last buckets may be partial."""
    try:
        parsed = parse_interval(interval)
    except ValueError as err:
        raise HTTPException(400, str(err)) from None
    try:
        edges = bucket_edges(start_us, end_us, parsed, tz, max_buckets=per_tag)
    except ValueError as err:
        raise HTTPException(400, str(err)) from None
    inner = edges[(edges > start_us) & (edges < end_us)]
    return np.concatenate([[start_us], inner, [end_us]]).astype(np.int64)


@router.get("/summary", response_model=SummaryOut)
async def summary(
    historian: HistorianDep,
    model: ModelDep,
    who: ValuesReader,
    platform: PlatformDep,
    settings: SettingsDep,
    tag: TagsQ,
    start: StartQ = "-1h",
    end: EndQ = "now",
    interval: IntervalQ = "1m",
    tz: TzQ = "UTC",
    agg: Annotated[str, Query(description=f"comma-separated: {', '.join(AGGREGATES)}")] = "twa",
    total_unit: Annotated[
        Literal["s", "min", "h", "d"], Query(description="time unit `total` integrates over")
    ] = "s",
    format: FormatQ = "json",
) -> Response:
    """Aggregates of each tag per bucket, every tag on the same calendar-aligned buckets.

    Time-weighted aggregates (twa, total, percent_good, durations) use the value at every
    instant, so a bucket without a stored point still has them; event aggregates (avg, min,
    max, first, last, count, range, stddev) use the Good points stored in the bucket.
    """
    _tags(tag, model, historian, who)
    try:
        names = check_aggregates(agg)
    except ValueError as err:
        raise HTTPException(400, str(err)) from None
    start_us, end_us = _range(platform.clock.now_us(), start, end)
    edges = _edges(start_us, end_us, interval, tz, _per_tag(settings, tag))
    try:
        rows = await historian.summarize(tag, edges, names, total_unit=total_unit)
    except ValueError as err:
        raise HTTPException(400, str(err)) from None
    if format != "json":
        return export(summary_table([int(e) for e in edges[:-1]], rows), format, "summary")
    return json_of(
        SummaryOut(
            start=us_to_datetime(start_us),
            end=us_to_datetime(end_us),
            interval=interval,
            tz=tz,
            aggs=names,
            buckets=[us_to_datetime(int(e)) for e in edges[:-1]],
            tags=[TagSummaryOut.model_construct(tag=r.path, kind=r.kind, step=r.step,
                                                values=r.values) for r in rows],
        )
    )  # fmt: skip


@router.get("/interpolated", response_model=InterpolatedOut)
async def interpolated(
    historian: HistorianDep,
    model: ModelDep,
    who: ValuesReader,
    platform: PlatformDep,
    settings: SettingsDep,
    tag: TagsQ,
    start: StartQ = "-1h",
    end: EndQ = "now",
    interval: IntervalQ = "1m",
    tz: TzQ = "UTC",
    format: FormatQ = "json",
) -> InterpolatedOut | Response:
    """Each tag's value at start and every interval after it up to end: linear between Good
    points for analog tags, stepped for discrete ones."""
    _tags(tag, model, historian, who)
    start_us, end_us = _range(platform.clock.now_us(), start, end)
    try:
        parsed = parse_interval(interval)
    except ValueError as err:
        raise HTTPException(400, str(err)) from None
    limit = _per_tag(settings, tag)
    if parsed.calendar:
        times = _edges(start_us, end_us, interval, tz, limit)  # start, each edge, end
    else:
        step = parsed.fixed_us
        count = (end_us - start_us) // step + 1
        if count > limit:
            better = suggest_interval(end_us - start_us, limit)
            raise HTTPException(
                400, f"{count} times per tag requested (limit {limit}): use interval={better}"
            )
        times = start_us + step * np.arange(count, dtype=np.int64)
    rows = await historian.sample(tag, times)
    if format != "json":
        return export(samples_table([int(t) for t in times], rows), format, "interpolated")
    return InterpolatedOut(
        times=[us_to_datetime(int(t)) for t in times],
        tags=[TagSamplesOut(tag=r.path, kind=r.kind, step=r.step, values=r.values) for r in rows],
    )


@router.get("/value", response_model=ValueAtOut)
async def value_at(
    historian: HistorianDep,
    model: ModelDep,
    who: ValuesReader,
    platform: PlatformDep,
    tag: Annotated[str, Query(description="tag path")],
    time: Annotated[str, Query(description="ISO 8601, epoch ms, now, or relative like -1h")],
    mode: Annotated[
        Literal["interpolated", "previous"],
        Query(description="interpolated between points, or the stored value at or before"),
    ] = "interpolated",
) -> ValueAtOut:
    """The tag's value at one instant."""
    _known(tag, model, historian, who)
    try:
        t_us = parse_time_us(time, platform.clock.now_us())
    except ValueError as err:
        raise HTTPException(400, str(err)) from None
    (row,) = await historian.sample(
        [tag], np.array([t_us], dtype=np.int64), interpolate=mode == "interpolated"
    )
    return ValueAtOut(tag=tag, ts=us_to_datetime(t_us), mode=mode, value=row.values[0])
