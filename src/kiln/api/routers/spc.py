"""SPC over history: a control chart of any tag for any range, with its rule violations and its
capability against the tag's specification limits (`spec` on the tag definition).

The chart is computed here from the historian's stored values with the same code the
production engine runs live (`kiln.production.spc_tags`), so a chart drawn for the past shows
exactly the violations the live chart raised. Reading needs values:read over the tag.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import ValidationError

from kiln.api.auth import ValuesReader
from kiln.api.deps import PlatformDep, SettingsDep
from kiln.api.routers.history import EndQ, HistorianDep, ModelDep, StartQ, TagQ, _known, _range
from kiln.api.settings import QueryLimits
from kiln.core.clock import us_to_datetime
from kiln.core.quality import is_good
from kiln.production.spc_tags import SpcDef, chart_over_history

router = APIRouter(prefix="/spc", tags=["production"])

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
) -> dict[str, Any]:
    """The chart's points with their limits and violated rules, and Cp, Cpk, Pp, Ppk against
    the tag's specification limits (none when the tag has no spec)."""
    _known(tag, model, historian, who)
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
        )
    except ValidationError as err:
        raise HTTPException(400, "; ".join(e["msg"] for e in err.errors())) from None
    bound = settings.section(QueryLimits).raw_max
    result = await historian.raw(tag, read_from, end_us, limit=bound)
    times: list[int] = []
    values: list[float] = []
    for point in result.points:
        if is_good(point.quality) and isinstance(point.value, int | float):
            times.append(point.source_us)
            values.append(float(point.value))
    info = model.tag(tag)
    out = chart_over_history(defn, times, values, info.spec if info is not None else None)
    # The baseline's own points are part of the computation, not of the range asked for.
    out["points"] = [p for p in out["points"] if p["time_us"] >= start_us]
    out["violations"] = [v for v in out["violations"] if v["time_us"] >= start_us]
    out["start_us"], out["end_us"] = start_us, end_us
    out["spec"] = info.spec.model_dump() if info is not None and info.spec is not None else None
    out["truncated"] = result.truncated
    return out
