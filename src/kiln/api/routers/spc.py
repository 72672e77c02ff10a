"""SPC over history: a control chart of any tag for any range, with its rule violations and its
capability against the tag's specification limits (`spec` on the tag definition).

The chart is computed here from the historian's stored values with the same code the
production engine runs live (`kiln.production.spc_tags`), so a chart drawn for the past shows
exactly the violations the live chart raised. Reading needs values:read over the tag and over
every tag the chart reads besides (sample-size tags, counters).

A p or u chart's n comes from a fixed `sample_size`, from `sample_size_tags` (the sum of their
values current at each count) or, on a counter (`counter=true`), from `sample_size_counters`
(the sum of their increases in each `subgroup_s` window).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Query
from pydantic import ValidationError

from kiln.api.auth import ValuesReader
from kiln.api.deps import PlatformDep, SettingsDep
from kiln.api.routers.history import EndQ, HistorianDep, ModelDep, StartQ, TagQ, _known, _range
from kiln.api.settings import QueryLimits
from kiln.core.clock import us_to_datetime
from kiln.core.quality import is_good
from kiln.production.spc_tags import SpcDef, chart_over_history
from kiln.security.principal import Principal

router = APIRouter(prefix="/spc", tags=["production"])
_YEAR_S = 366 * 86_400.0
MAX_SIZE_TAGS = 20  # a sample size is the sum of a few counters or tags, each read in full

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "a bad chart definition or range (the message says which field)"},
    404: {"description": "no such tag for you (existence does not leak)"},
}


@router.get("", responses=_RESPONSES)
async def chart(
    historian: HistorianDep,
    model: ModelDep,
    who: ValuesReader,
    platform: PlatformDep,
    settings: SettingsDep,
    tag: TagQ,
    chart: Annotated[
        Literal["xbar_r", "xbar_s", "imr", "p", "np", "c", "u"],
        Query(description="chart kind"),
    ] = "imr",
    start: StartQ = "-8h",
    end: EndQ = "now",
    subgroup: Annotated[
        int | None, Query(ge=1, le=50, description="values per X-bar subgroup (default 5)")
    ] = None,
    limits: Annotated[
        Literal["rolling", "baseline"], Query(description="limits from a baseline or rolling")
    ] = "rolling",
    baseline_start: Annotated[str | None, Query(description="start of the baseline")] = None,
    baseline_end: Annotated[str | None, Query(description="end of the baseline")] = None,
    rolling: Annotated[
        int, Query(ge=2, le=1000, description="subgroups rolling limits are computed over")
    ] = 25,
    rules: Annotated[Literal["nelson", "weco"], Query(description="the run rules")] = "nelson",
    sample_size: Annotated[
        int | None, Query(ge=1, description="p, np, u charts: the fixed sample size n")
    ] = None,
    subgroup_s: Annotated[
        float | None,
        Query(ge=0.001, le=_YEAR_S, description="subgroups by time windows of this many seconds"),
    ] = None,
    counter: Annotated[
        bool,
        Query(description="the tag is a cumulative counter: chart its increase per subgroup_s"),
    ] = False,
    sample_size_tags: Annotated[
        str | None,
        Query(description="p, u charts: comma-separated tags whose summed value is each n"),
    ] = None,
    sample_size_counters: Annotated[
        str | None,
        Query(description="counter p, u charts: comma-separated counters whose increase is n"),
    ] = None,
    rollover: Annotated[
        int | None, Query(ge=2, le=2**53, description="counters' range, e.g. 65536 (16 bit)")
    ] = None,
) -> dict[str, Any]:
    """The chart's points with their limits and violated rules, and Cp, Cpk, Pp, Ppk against
    the tag's specification limits (none when the tag has no spec)."""
    _known(tag, model, historian, who)
    size_tags = _tags(sample_size_tags, "sample_size_tags", model, historian, who)
    size_counters = _tags(sample_size_counters, "sample_size_counters", model, historian, who)
    now = platform.clock.now_us()
    start_us, end_us = _range(now, start, end)
    read_from = start_us
    b_start: datetime | None = None
    b_end: datetime | None = None
    if limits == "baseline":
        if baseline_start is None or baseline_end is None:
            raise HTTPException(400, "baseline limits need baseline_start and baseline_end")
        b0, b1 = _range(now, baseline_start, baseline_end)
        b_start, b_end = us_to_datetime(b0), us_to_datetime(b1)
        read_from = min(read_from, b0)
    try:
        defn = SpcDef(
            name="chart",
            tag=tag,
            chart=chart,
            subgroup_size=subgroup if chart in ("xbar_r", "xbar_s") else None,
            limits=limits,
            rolling_subgroups=rolling,
            rules=rules,
            sample_size=sample_size,
            baseline_start=b_start,
            baseline_end=b_end,
            subgroup_s=subgroup_s,
            counter=counter,
            rollover=rollover,
            # The definition names one size tag; the n of each count is the sum over all given.
            sample_size_tag=size_tags[0] if size_tags else None,
            sample_size_counters=tuple(size_counters) if size_counters else None,
        )
    except ValidationError as err:
        raise HTTPException(400, "; ".join(e["msg"] for e in err.errors())) from None
    bound = settings.section(QueryLimits).raw_max
    times, values, truncated = await _read(historian, tag, read_from, end_us, bound)
    sizes: list[float] | None = None
    if size_tags:
        size_series = [await _read(historian, t, read_from, end_us, bound) for t in size_tags]
        truncated = truncated or any(s[2] for s in size_series)
        times, values, sizes = _as_of_sizes(times, values, [(s[0], s[1]) for s in size_series])
    counters: dict[str, tuple[list[int], list[float]]] = {}
    for path in size_counters:
        if path != tag:
            t_c, v_c, cut = await _read(historian, path, read_from, end_us, bound)
            counters[path] = (t_c, v_c)
            truncated = truncated or cut
    if counter:
        # Each counter from its value just before the range: the range's first increases count
        # (the first window is then whole), and a counter that did not change in the range
        # (reported on change only) still counts, as zero, instead of never starting.
        counters[tag] = (times, values)
        before = await _values_before(historian, list(counters), read_from)
        for path, value in before.items():
            t_c, v_c = counters[path]
            counters[path] = ([read_from - 1, *t_c], [value, *v_c])
        times, values = counters.pop(tag)
    info = model.tag(tag)
    try:
        out = chart_over_history(
            defn,
            times,
            values,
            info.spec if info is not None else None,
            sizes,
            counters,
            end_us=min(end_us, now),  # a window still open at the end is not charted
        )
    except ValueError as err:
        # The stored values do not fit the chart: a fraction above 1, a count not whole.
        raise HTTPException(
            400, f"the values of {tag} do not make a {chart} chart: {err}"
        ) from None
    # The baseline's own points are part of the computation, not of the range asked for.
    out["points"] = [p for p in out["points"] if p["time_us"] >= start_us]
    out["violations"] = [v for v in out["violations"] if v["time_us"] >= start_us]
    out["start_us"], out["end_us"] = start_us, end_us
    out["spec"] = info.spec.model_dump() if info is not None and info.spec is not None else None
    out["truncated"] = truncated
    return out


def _tags(
    given: str | None, field: str, model: ModelDep, historian: HistorianDep, who: Principal
) -> list[str]:
    """A comma-separated list of tags, each one the caller may read (404 as for the tag)."""
    if given is None:
        return []
    tags = [t.strip() for t in given.split(",") if t.strip()]
    if not tags:
        raise HTTPException(400, f"{field}: give one or more tag paths, separated by commas")
    if len(tags) > MAX_SIZE_TAGS:
        raise HTTPException(400, f"{field}: at most {MAX_SIZE_TAGS} tags, got {len(tags)}")
    if len(set(tags)) != len(tags):
        # Summed, a tag named twice would count its n twice.
        twice = sorted({t for t in tags if tags.count(t) > 1})
        raise HTTPException(400, f"{field}: {', '.join(twice)} given more than once")
    for path in tags:
        _known(path, model, historian, who)
    return tags


async def _read(
    historian: HistorianDep, tag: str, start_us: int, end_us: int, bound: int
) -> tuple[list[int], list[float], bool]:
    """A tag's good numeric values in the range, and whether the read was cut at `bound`."""
    result = await historian.raw(tag, start_us, end_us, limit=bound)
    times: list[int] = []
    values: list[float] = []
    for point in result.points:
        if is_good(point.quality) and isinstance(point.value, int | float):
            times.append(point.source_us)
            values.append(float(point.value))
    return times, values, result.truncated


async def _values_before(historian: HistorianDep, paths: list[str], at_us: int) -> dict[str, float]:
    """Each path's good numeric value current just before `at_us` (the last one before it),
    where it has one."""
    found = await historian.sample(paths, np.array([at_us - 1], dtype=np.int64), interpolate=False)
    out: dict[str, float] = {}
    for series in found:
        value = series.values[0] if series.values else None
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out[series.path] = float(value)
    return out


def _as_of_sizes(
    times: list[int], values: list[float], series: Sequence[tuple[list[int], list[float]]]
) -> tuple[list[int], list[float], list[float]]:
    """Each count with its n: the sum of the size tags' values current at its time (the last
    positive one at or before it, as the live chart keeps it). A count before every size tag
    has such a value has no n and is left out."""
    current: list[tuple[list[int], list[float]]] = []
    for s_times, s_values in series:
        kept = [(t, v) for t, v in zip(s_times, s_values, strict=True) if v > 0]
        current.append(([t for t, _ in kept], [v for _, v in kept]))
    out_t: list[int] = []
    out_v: list[float] = []
    out_n: list[float] = []
    for t, v in zip(times, values, strict=True):
        n = 0.0
        for s_times, s_values in current:
            i = bisect_right(s_times, t)
            if i == 0:
                break
            n += s_values[i - 1]
        else:
            out_t.append(t)
            out_v.append(v)
            out_n.append(n)
    return out_t, out_v, out_n
