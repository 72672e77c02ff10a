"""Summaries and interpolated values of stored tags: `timeline` and `aggregates` over the points
that `query.timelines` fetches, with results in each tag's own types.

Analog (float) tags interpolate linearly; integers, booleans, states and strings are stepped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kiln.historian.maths import aggregates, timeline
from kiln.historian.maths.aggregates import Column
from kiln.historian.maths.columns import BOOL, FLOAT, INT, STRING, decode
from kiln.historian.maths.timeline import Array, Points

_AS_STORED = frozenset({"first", "last", "min", "max"})  # values of the tag, in its own type


def is_stepped(kind: str | None) -> bool:
    """Only analog (float) tags ramp between points."""
    return kind != FLOAT


@dataclass(frozen=True, slots=True)
class TagSummary:
    path: str
    kind: str | None  # None: no such series (every bucket empty)
    step: bool
    values: dict[str, Column]


@dataclass(frozen=True, slots=True)
class TagSamples:
    path: str
    kind: str | None
    step: bool
    values: list[Any]  # None where there was no valid value


def empty_points(kind: str | None) -> Points:
    """The timeline of a tag that has no points (or no series)."""
    dtype = object if kind == STRING else np.float64
    return Points(np.empty(0, np.int64), np.empty(0, dtype), np.empty(0, bool))


def summarize(
    points: Points,
    path: str,
    kind: str | None,
    edges: Array,
    names: Sequence[str],
    *,
    data_end_us: int,
    total_unit: str = "s",
) -> TagSummary:
    """The aggregates `names` of one tag per bucket [edges[k], edges[k+1]), from its points
    over the range and their neighbours (`query.timelines`)."""
    aggregates.check_aggregates(names, numeric=kind != STRING)
    step = is_stepped(kind)
    out = aggregates.aggregate(
        points, edges, names, step=step, data_end_us=data_end_us, total_unit=total_unit
    )
    return finish(path, kind, out)


def summarize_many(
    timelines: Sequence[tuple[str, str | None, Points]],
    edges: Array,
    names: Sequence[str],
    *,
    data_end_us: int,
    total_unit: str = "s",
) -> list[TagSummary]:
    """`summarize` of several tags (path, kind, points) on the same buckets. Event aggregates
    of the numeric tags are computed together (`aggregates.event_many`)."""
    out: dict[int, TagSummary] = {}
    if set(names) <= set(aggregates.EVENT):
        together = [i for i, (_, kind, _) in enumerate(timelines) if kind in (FLOAT, INT, BOOL)]
        if together:
            aggregates.check_aggregates(names, numeric=True)
            got = aggregates.event_many([timelines[i][2] for i in together], edges, set(names))
            for i, cols in zip(together, got, strict=True):
                path, kind, _ = timelines[i]
                out[i] = finish(path, kind, {name: cols[name] for name in names})
    return [
        out[i] if i in out else summarize(points, path, kind, edges, names,
                                          data_end_us=data_end_us, total_unit=total_unit)
        for i, (path, kind, points) in enumerate(timelines)
    ]  # fmt: skip


def finish(path: str, kind: str | None, out: dict[str, Column]) -> TagSummary:
    """A tag's aggregates (from its points or its rollups) with values in the tag's type."""
    step = is_stepped(kind)
    if kind in (INT, BOOL):
        for name in _AS_STORED & set(out):
            out[name] = [None if v is None else decode(kind, v, None) for v in out[name]]
    if kind == BOOL and "durations" in out:
        out["durations"] = [
            {("true" if k == "1" else "false"): s for k, s in d.items()} for d in out["durations"]
        ]
    return TagSummary(path, kind, step, out)


def sample(
    points: Points,
    path: str,
    kind: str | None,
    times: Array,
    *,
    interpolate: bool,
    data_end_us: int,
) -> TagSamples:
    """The tag's value at each of `times` (ascending): interpolated for analog tags when
    `interpolate`, else the value of the point at or before each time."""
    step = is_stepped(kind)
    if len(times) == 0:
        return TagSamples(path, kind, step, [])
    got = timeline.sample(
        points, times, step=step, interpolate=interpolate, data_end_us=data_end_us
    )
    values: list[Any] = []
    for v, good in zip(got.values.tolist(), got.good.tolist(), strict=True):
        if not good:
            values.append(None)
        else:
            values.append(v if kind == STRING else decode(kind or FLOAT, v, None))
    return TagSamples(path, kind, step, values)
