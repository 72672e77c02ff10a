"""Answers over the production store: OEE by bucket, state timelines, downtime Pareto with MTBF
and MTTR, for an asset or a subtree, over any range. Synchronous (the engine runs these in a
worker thread); every answer is recomputed from the stored states and samples, so late data,
an operator's new reason and a corrected calendar are in the next answer.

A subtree's figures are the sums of its assets' times and counts per bucket (never averages of
percentages). Bucket keys: hour and day and week as the local start (ISO 8601 with offset) in
the asset's site time zone, shift as `<local date>/<shift name>` with the time outside every
shift in buckets `<local date>/(no shift)`, order as the order id, product as the product code
of the orders that ran.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np

from kiln.core.clock import us_to_datetime
from kiln.core.values import path_has_prefix
from kiln.production.calendar import (
    CalendarDef,
    ShiftInstance,
    local_to_us,
    shifts_between,
)
from kiln.production.chunks import SAMPLE_DTYPE, STATE_DTYPE
from kiln.production.compute import (
    AssetInputs,
    Bucket,
    BucketResult,
    Counts,
    IdealCycle,
    Override,
    Planned,
    compute,
)
from kiln.production.counts import counter_deltas
from kiln.production.intervals import Interval, resolve_overlaps
from kiln.production.oee import OeeFigures
from kiln.production.orders import Product
from kiln.production.plan import GOOD, IDEAL_CYCLE, SCRAP, TOTAL, AssetPlan
from kiln.production.store import CountEvent, OrderRun, ProductionStore, ReasonRecord
from kiln.production.taxonomy import CATEGORY_BY_CODE, Category, StateModel

By = Literal["none", "hour", "shift", "day", "week", "order", "product"]
BY_VALUES: tuple[str, ...] = ("none", "hour", "shift", "day", "week", "order", "product")
MAX_BUCKETS = 5_000
HOUR_US = 3_600_000_000
NO_SHIFT = "(no shift)"
ALL_DAY = "24/7"


class QueryError(ValueError):
    """A question that cannot be answered as asked (the message says how to ask)."""


@dataclass(frozen=True, slots=True)
class Context:
    """What the queries need besides the store: the followed assets and the calendars."""

    plans: Mapping[str, AssetPlan]
    calendars: Mapping[str, CalendarDef] = field(default_factory=dict)
    products: Mapping[str, Product] = field(default_factory=dict)

    def assets_under(self, path: str, within: Sequence[str] | None = None) -> list[str]:
        """The followed assets at or below `path` (and below one of `within` if given)."""
        out = [
            a
            for a in self.plans
            if path_has_prefix(a, path)
            and (within is None or any(path_has_prefix(a, w) for w in within))
        ]
        return sorted(out)

    def calendar_of(self, asset: str) -> CalendarDef | None:
        best: CalendarDef | None = None
        for site, cal in self.calendars.items():
            if path_has_prefix(asset, site) and (best is None or len(site) > len(best.site)):
                best = cal
        return best


def zone_of(cal: CalendarDef | None) -> ZoneInfo:
    return ZoneInfo(cal.timezone) if cal is not None else ZoneInfo("UTC")


_SHIFT_CACHE: dict[tuple[CalendarDef, Interval, str | None], list[ShiftInstance]] = {}
_SHIFT_CACHE_SIZE = 256


def shifts_for(ctx: Context, asset: str, window: Interval) -> list[ShiftInstance]:
    """The shift instances of the asset's site; without a calendar one shift covers all.

    Remembered per (calendar, window, asset where planned down time names assets): a year's
    shifts take tens of milliseconds to lay out, and every asset of a site asks for the same.
    """
    cal = ctx.calendar_of(asset)
    if cal is None:
        return [ShiftInstance(ALL_DAY, us_to_datetime(window.start_us).date(), window)]
    key = (cal, window, asset if any(p.assets for p in cal.planned) else None)
    got = _SHIFT_CACHE.get(key)
    if got is None:
        if len(_SHIFT_CACHE) >= _SHIFT_CACHE_SIZE:
            _SHIFT_CACHE.clear()
        got = _SHIFT_CACHE[key] = shifts_between(cal, window, asset)
    return got


# -- buckets ---------------------------------------------------------------------------------


def _local_key(us: int, zone: ZoneInfo) -> str:
    return us_to_datetime(us).astimezone(zone).isoformat()


def _calendar_buckets(window: Interval, zone: ZoneInfo, by: str) -> list[Bucket]:
    local = us_to_datetime(window.start_us).astimezone(zone)
    if by == "hour":
        # Whole UTC hours are whole local hours in every zone with whole-hour offsets; the
        # few half-hour zones get their hours cut at UTC hours, which still add up.
        start = window.start_us - window.start_us % HOUR_US
        edges = list(range(start, window.end_us + HOUR_US, HOUR_US))
    else:
        day: date = local.date()
        if by == "week":
            day -= timedelta(days=day.isoweekday() - 1)
        step = timedelta(days=7 if by == "week" else 1)
        edges = []
        while True:
            edge = local_to_us(datetime(day.year, day.month, day.day, tzinfo=zone), zone)
            edges.append(edge)
            if edge >= window.end_us:
                break
            day += step
    if len(edges) - 1 > MAX_BUCKETS:
        raise QueryError(
            f"{len(edges) - 1} {by} buckets is more than {MAX_BUCKETS}: ask for a shorter "
            "range or coarser buckets"
        )
    out: list[Bucket] = []
    for a, b in itertools.pairwise(edges):
        clipped = Interval(a, b).clip(window)
        if clipped is not None:
            out.append(Bucket(_local_key(a, zone), clipped))
    return out


def _shift_buckets(
    shifts: Sequence[ShiftInstance], window: Interval, zone: ZoneInfo
) -> list[Bucket]:
    out: list[Bucket] = []
    cursor = window.start_us
    for shift in shifts:
        clipped = shift.interval.clip(window)
        if clipped is None:
            continue
        if clipped.start_us > cursor:
            out.append(_gap(cursor, clipped.start_us, zone))
        out.append(Bucket(shift.key, clipped))
        cursor = max(cursor, clipped.end_us)
    if cursor < window.end_us:
        out.append(_gap(cursor, window.end_us, zone))
    if len(out) > MAX_BUCKETS:
        raise QueryError(f"{len(out)} shift buckets is more than {MAX_BUCKETS}: ask for less")
    return out


def _gap(a: int, b: int, zone: ZoneInfo) -> Bucket:
    day = us_to_datetime(a).astimezone(zone).date().isoformat()
    return Bucket(f"{day}/{NO_SHIFT}", Interval(a, b))


def _order_buckets(runs: Sequence[OrderRun], by: str) -> list[Bucket]:
    """One bucket per running period; its key the order (or its product: runs of one product
    sum, whoever ordered them)."""
    return [Bucket(run.product if by == "product" else run.order_id, run.interval) for run in runs]


# -- per asset ---------------------------------------------------------------------------------


@dataclass(slots=True)
class AssetData:
    """What the store holds for one asset over a window, ready for `compute`."""

    inputs: AssetInputs
    runs: list[OrderRun]
    shifts: list[ShiftInstance]


def _deltas(samples: np.ndarray, window: Interval, rollover: int | None) -> tuple[Any, Any]:
    if len(samples) == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    prev: tuple[int, float] | None = None
    rows = samples
    if rows["t"][0] < window.start_us:
        prev = (int(rows["t"][0]), float(rows["v"][0]))
        rows = rows[1:]
    return counter_deltas(
        rows["t"].astype(np.int64), rows["v"].astype(np.float64), previous=prev, rollover=rollover
    )


def _counter(
    samples: Mapping[tuple[str, str], np.ndarray],
    asset: str,
    model: StateModel,
    signal: str,
    window: Interval,
) -> tuple[Any, Any]:
    definition = getattr(model, signal)
    got = samples.get((asset, signal))
    if definition is None or got is None:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    return _deltas(got, window, definition.rollover)


def _with_events(
    counted: tuple[Any, Any], events: Sequence[CountEvent], kind: str
) -> tuple[Any, Any]:
    """A counter's increments and the count events' of one kind, together in time order."""
    if not events:
        return counted
    times = np.concatenate((counted[0], np.array([e.time_us for e in events], np.int64)))
    amounts = np.concatenate((counted[1], np.array([getattr(e, kind) for e in events], np.float64)))
    order = np.argsort(times, kind="stable")
    return times[order], amounts[order]


def _first_data(tape: np.ndarray, window: Interval) -> int | None:
    """Where the asset's history starts within `window`: None when a state was recorded before
    it, its first row's time, or the window's end when nothing is recorded in it at all."""
    if len(tape) == 0:
        return window.end_us
    first = int(tape["t"][0])
    return None if first < window.start_us else first


def load(
    store: ProductionStore,
    ctx: Context,
    assets: Sequence[str],
    window: Interval,
    now_us: int,
) -> dict[str, AssetData]:
    """Each asset's inputs over `window` (states, counts, records, shifts, orders)."""
    end = min(window.end_us, now_us)
    # Rows up to the longest micro-stop threshold past the window: whether a stop that
    # runs past the window's end is a micro-stop depends on how long it lasted, not on where
    # the question ends.
    reach = max((int(ctx.plans[a].model.micro_stop_s * 1e6) for a in assets), default=0)
    states = store.states_many(assets, Interval(window.start_us, window.end_us + reach))
    keys = [
        (a, s)
        for a in assets
        for s in (GOOD, SCRAP, TOTAL, IDEAL_CYCLE)
        if s in ctx.plans[a].signals
    ]
    samples = store.samples_many(keys, window)
    records = store.reason_records(list(assets), window) if assets else []
    by_asset: dict[str, list[ReasonRecord]] = defaultdict(list)
    for rec in records:
        by_asset[rec.asset].append(rec)
    ids = store.reason_ids([r.reason for r in records])
    runs = store.order_runs(list(assets), window) if assets else []
    events: dict[str, list[CountEvent]] = defaultdict(list)
    for event in store.count_events(list(assets), window) if assets else []:
        events[event.asset].append(event)
    out: dict[str, AssetData] = {}
    for asset in assets:
        plan = ctx.plans[asset]
        model = plan.model
        pieces = resolve_overlaps([r.stop_record() for r in by_asset.get(asset, [])])
        overrides = [
            Override(p.interval, p.reason.category, ids.get(p.reason.reason, 0)) for p in pieces
        ]
        shifts = shifts_for(ctx, asset, window)
        planned = [
            Planned(iv, maintenance=cat == Category.PLANNED_MAINTENANCE.value)
            for s in shifts
            for iv, cat, _ in s.planned
        ]
        mine = [r for r in runs if path_has_prefix(asset, r.line)]

        good_t, good = _with_events(
            _counter(samples, asset, model, GOOD, window), events.get(asset, []), "good"
        )
        scrap_t, scrap = _with_events(
            _counter(samples, asset, model, SCRAP, window), events.get(asset, []), "scrap"
        )
        total_t, total = (
            # With a total counter, good is total - scrap: a good event adds to the total.
            _with_events(
                _counter(samples, asset, model, TOTAL, window), events.get(asset, []), "units"
            )
            if model.total is not None
            else (None, None)
        )
        ideal = IdealCycle(
            default_s=model.ideal_cycle_s,
            tag=samples.get((asset, IDEAL_CYCLE), np.zeros(0, SAMPLE_DTYPE))
            if model.ideal_cycle_tag
            else None,
            orders=[
                (
                    r.interval,
                    ctx.products[r.product].ideal_cycle_for(asset)
                    if r.product in ctx.products
                    else None,
                )
                for r in mine
            ],
        )
        tape = states.get(asset, np.zeros(0, STATE_DTYPE))
        inputs = AssetInputs(
            states=tape,
            data_end_us=end,
            shifts=[s.interval for s in shifts],
            planned=planned,
            overrides=overrides,
            micro_stop_us=int(model.micro_stop_s * 1e6),
            counts=Counts(good_t, good, scrap_t, scrap, total_t, total),
            ideal=ideal,
            first_data_us=_first_data(tape, window),
            known_until_us=min(now_us, window.end_us + reach),
        )
        out[asset] = AssetData(inputs, mine, shifts)
    return out


def buckets_for(
    ctx: Context, asset: str, data: AssetData, window: Interval, by: str
) -> list[Bucket]:
    zone = zone_of(ctx.calendar_of(asset))
    if by == "none":
        return [Bucket("all", window)]
    if by == "shift":
        return _shift_buckets(data.shifts, window, zone)
    if by in ("order", "product"):
        return _order_buckets(data.runs, by)
    return _calendar_buckets(window, zone, by)


# -- answers ---------------------------------------------------------------------------------


def _sum(figures: Iterable[OeeFigures]) -> OeeFigures:
    return functools.reduce(lambda a, b: a + b, figures, OeeFigures())


@dataclass(slots=True)
class _Acc:
    start_us: int
    end_us: int
    figures: OeeFigures = field(default_factory=OeeFigures)
    losses: dict[tuple[Category, int], list[int]] = field(default_factory=dict)
    outside_shift_stop_us: int = 0
    units_without_ideal: float = 0.0
    empty: bool = True

    def add(self, r: BucketResult) -> None:
        self.start_us = min(self.start_us, r.interval.start_us)
        self.end_us = max(self.end_us, r.interval.end_us)
        self.figures = r.figures if self.empty else self.figures + r.figures
        self.empty = False
        for key, (us, n) in r.losses.items():
            got = self.losses.setdefault(key, [0, 0])
            got[0] += us
            got[1] += n
        self.outside_shift_stop_us += r.outside_shift_stop_us
        self.units_without_ideal += r.units_without_ideal


def _results(
    store: ProductionStore,
    ctx: Context,
    assets: Sequence[str],
    window: Interval,
    bys: Sequence[str],
    now_us: int,
) -> dict[str, dict[str, dict[str, _Acc]]]:
    """Per `by`, per asset, per bucket key, the accumulated results: the store is read once
    for all the `by`s asked (a recompute of shifts and days reads each asset's year once)."""
    for by in bys:
        if by not in BY_VALUES:
            raise QueryError(f"by must be one of {', '.join(BY_VALUES)}, not {by!r}")
    data = load(store, ctx, assets, window, now_us)
    out: dict[str, dict[str, dict[str, _Acc]]] = {by: {} for by in bys}
    for asset in assets:
        for by in bys:
            buckets = buckets_for(ctx, asset, data[asset], window, by)
            per: dict[str, _Acc] = {}
            for r in compute(data[asset].inputs, buckets):
                if r.figures.calendar_time_us == 0:
                    continue  # before the asset's first data: nothing to say
                acc = per.setdefault(r.key, _Acc(r.interval.start_us, r.interval.end_us))
                acc.add(r)
            out[by][asset] = per
    return out


def oee(
    store: ProductionStore,
    ctx: Context,
    path: str,
    window: Interval,
    by: str,
    now_us: int,
    within: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The OEE of `path` (an asset, or every followed asset below it) per bucket."""
    return oee_many(store, ctx, path, window, [by], now_us, within)[by]


def oee_many(
    store: ProductionStore,
    ctx: Context,
    path: str,
    window: Interval,
    bys: Sequence[str],
    now_us: int,
    within: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """`oee` for several `by`s at once, reading the store once: by -> answer."""
    assets = ctx.assets_under(path, within)
    if not assets:
        raise LookupError(f"no asset with production data at or below {path!r}")
    results = _results(store, ctx, assets, window, bys, now_us)
    return {by: _answer(ctx, path, window, by, assets, results[by]) for by in bys}


def _answer(
    ctx: Context,
    path: str,
    window: Interval,
    by: str,
    assets: Sequence[str],
    results: Mapping[str, Mapping[str, _Acc]],
) -> dict[str, Any]:
    # Assets that count nothing (a conveyor) have an availability but no OEE: summed into a
    # line's figures they would pull its performance down with time that made nothing. They
    # are left out of the sums while any asset below counts; alone, they give availability.
    counted = [a for a in assets if is_counted(ctx.plans[a])]
    summed = counted or assets
    merged: dict[str, _Acc] = {}
    for asset in summed:
        for key, acc in results[asset].items():
            into = merged.setdefault(key, _Acc(acc.start_us, acc.end_us))
            into.start_us, into.end_us = (
                min(into.start_us, acc.start_us),
                max(into.end_us, acc.end_us),
            )
            into.figures = into.figures + acc.figures
            into.outside_shift_stop_us += acc.outside_shift_stop_us
            into.units_without_ideal += acc.units_without_ideal
    with_counts = bool(counted)
    buckets = [
        {
            "key": key,
            "start_us": acc.start_us,
            "end_us": acc.end_us,
            **figures_json(acc.figures, with_counts),
            "outside_shift_stop_us": acc.outside_shift_stop_us,
            "units_without_ideal": acc.units_without_ideal,
        }
        for key, acc in sorted(merged.items(), key=lambda kv: (kv[1].start_us, kv[0]))
    ]
    total = _sum(acc.figures for acc in merged.values())
    per_asset = {
        asset: figures_json(_sum(acc.figures for acc in per.values()), asset in counted)
        for asset, per in results.items()
    }
    return {
        "asset": path,
        "start_us": window.start_us,
        "end_us": window.end_us,
        "by": by,
        "assets": list(assets),
        "not_counted": [a for a in assets if a not in counted] if counted else [],
        "buckets": buckets,
        "total": figures_json(total, with_counts),
        "per_asset": per_asset if len(assets) > 1 else {},
    }


def is_counted(plan: AssetPlan) -> bool:
    """Whether the asset counts what it makes (a good or total counter, or count events)."""
    model = plan.model
    return model.good is not None or model.total is not None or model.count_events


def figures_json(figures: OeeFigures, counted: bool) -> dict[str, Any]:
    """`OeeFigures.to_json`, with performance, quality, OEE and TEEP unknown (None) for what
    counts nothing: 0 would claim it made nothing."""
    out = figures.to_json()
    if not counted:
        for name in ("performance", "quality", "oee", "teep"):
            out[name]["value"] = None
        out["counted"] = False
    else:
        out["counted"] = True
    return out


def pareto(
    store: ProductionStore,
    ctx: Context,
    path: str,
    window: Interval,
    group: str,
    now_us: int,
    within: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Downtime by reason (or category), largest first, with each one's share; MTBF and MTTR.

    MTBF = actual production time / failures, MTTR = failure time / failures, where a failure
    is a stop in the `technical` category (micro-stops are not failures)."""
    if group not in ("reason", "category"):
        raise QueryError(f"group must be reason or category, not {group!r}")
    assets = ctx.assets_under(path, within)
    if not assets:
        raise LookupError(f"no asset with production data at or below {path!r}")
    results = _results(store, ctx, assets, window, ["none"], now_us)["none"]
    names = store.reason_paths()
    rows: dict[tuple[str, str], list[int]] = {}
    apt = 0
    failures = failure_us = 0
    for per in results.values():
        for acc in per.values():
            apt += acc.figures.actual_production_time_us
            for (category, rid), (us, n) in acc.losses.items():
                reason = names.get(rid, "") if group == "reason" else ""
                got = rows.setdefault((category.value, reason), [0, 0])
                got[0] += us
                got[1] += n
                if category is Category.TECHNICAL:
                    failures += n
                    failure_us += us
    total = sum(us for us, _ in rows.values())
    items = [
        {
            "category": category,
            "reason": reason or None,
            "duration_us": us,
            "stops": n,
            "share": us / total if total else None,
        }
        for (category, reason), (us, n) in sorted(rows.items(), key=lambda kv: (-kv[1][0], kv[0]))
    ]
    cumulative = 0.0
    for item in items:
        share = item["share"]
        cumulative += share if isinstance(share, float) else 0.0
        item["cumulative_share"] = cumulative
    return {
        "asset": path,
        "start_us": window.start_us,
        "end_us": window.end_us,
        "group": group,
        "items": items,
        "downtime_us": total,
        "failures": failures,
        "mtbf_us": apt / failures if failures else None,
        "mttr_us": failure_us / failures if failures else None,
    }


def states(
    store: ProductionStore,
    ctx: Context,
    path: str,
    window: Interval,
    now_us: int,
    within: Sequence[str] | None = None,
    limit: int = 10_000,
) -> dict[str, Any]:
    """Each asset's state intervals in the window, with operator reasons applied, whether they
    lie in a shift, and what the machine reported."""
    assets = ctx.assets_under(path, within)
    if not assets:
        raise LookupError(f"no asset with production data at or below {path!r}")
    end = min(window.end_us, now_us)
    rows = store.states_many(assets, window)
    records = store.reason_records(list(assets), window)
    names = store.reason_paths()
    out: list[dict[str, Any]] = []
    for asset in assets:
        plan = ctx.plans[asset]
        tape = rows.get(asset)
        shifts = [s.interval for s in shifts_for(ctx, asset, window)]
        pieces = resolve_overlaps([r.stop_record() for r in records if r.asset == asset])
        intervals = _timeline(tape, window.start_us, end)
        for start, stop, cat, rid, raw in intervals:
            for part_start, part_end, source, category, reason, record in _apply(
                start, stop, CATEGORY_BY_CODE[cat], names.get(rid) or None, pieces
            ):
                out.append(
                    {
                        "asset": asset,
                        "start_us": part_start,
                        "end_us": part_end,
                        "category": category.value,
                        "reason": reason,
                        "source": source,
                        "record_id": record,
                        "in_shift": any(
                            s.start_us < part_end and part_start < s.end_us for s in shifts
                        ),
                        "machine_state": _state_name(plan, raw),
                    }
                )
                if len(out) >= limit:
                    return {"intervals": out, "truncated": True}
    return {"intervals": out, "truncated": False}


def _timeline(
    tape: np.ndarray | None, start: int, end: int
) -> list[tuple[int, int, int, int, int]]:
    if tape is None or len(tape) == 0 or end <= start:
        return []
    t = tape["t"].astype(np.int64)
    out: list[tuple[int, int, int, int, int]] = []
    for i in range(len(t)):
        a = max(int(t[i]), start)
        b = min(int(t[i + 1]) if i + 1 < len(t) else end, end)
        if a < b:
            out.append(
                (a, b, int(tape["category"][i]), int(tape["reason"][i]), int(tape["raw"][i]))
            )
    return out


def _apply(
    start: int,
    stop: int,
    category: Category,
    reason: str | None,
    pieces: Sequence[Any],
) -> list[tuple[int, int, str, Category, str | None, int | None]]:
    """The interval cut where operator records cover it (never running time)."""
    if category is Category.RUNNING or not pieces:
        return [(start, stop, "machine", category, reason, None)]
    out: list[tuple[int, int, str, Category, str | None, int | None]] = []
    cursor = start
    for piece in pieces:
        a, b = max(piece.interval.start_us, start), min(piece.interval.end_us, stop)
        if a >= b:
            continue
        if a > cursor:
            out.append((cursor, a, "machine", category, reason, None))
        rec: ReasonRecord = piece.reason
        out.append((a, b, "operator", rec.category, rec.reason, rec.id))
        cursor = b
    if cursor < stop:
        out.append((cursor, stop, "machine", category, reason, None))
    return out


def _state_name(plan: AssetPlan, raw: int) -> str | None:
    if raw < 0:
        return None
    if any(rule.when for rule in plan.model.rules):
        return f"rule {raw + 1}"
    state, reason = raw >> 16, raw & 0xFFFF
    name = plan.mapping.state_names.get(state, str(state))
    if plan.model.reason_tag and reason:
        return f"{name}/{plan.mapping.reason_names.get(reason, str(reason))}"
    return name


def live(store: ProductionStore, ctx: Context, asset: str, now_us: int) -> dict[str, Any] | None:
    """The asset's figures for its current shift so far, and its state now."""
    shifts = shifts_for(ctx, asset, Interval(now_us, now_us + 1))
    current = next((s for s in shifts if s.interval.start_us <= now_us < s.interval.end_us), None)
    start = current.interval.start_us if current is not None else now_us - now_us % HOUR_US
    window = Interval(start, max(now_us, start + 1))
    data = load(store, ctx, [asset], window, now_us)[asset]
    (result,) = compute(data.inputs, [Bucket("live", window)])
    counted = is_counted(ctx.plans[asset])
    if data.inputs.first_data_us is not None:
        # The figures start at the asset's first state when that came after the shift began.
        window = Interval(min(data.inputs.first_data_us, window.end_us), window.end_us)
    tape = data.inputs.states
    last = tape[-1] if len(tape) else None
    return {
        "asset": asset,
        "shift": current.key if current is not None else None,
        "start_us": window.start_us,
        "end_us": window.end_us,
        "category": CATEGORY_BY_CODE[int(last["category"])].value if last is not None else None,
        "since_us": int(last["t"]) if last is not None else None,
        "order": data.runs[-1].order_id
        if data.runs and data.runs[-1].interval.end_us >= now_us
        else None,
        "oee": _num(result.figures.oee) if counted else None,
        "availability": _num(result.figures.availability),
        "performance": _num(result.figures.performance) if counted else None,
        "quality": _num(result.figures.quality) if counted else None,
        "counted": counted,
        "good": result.figures.good_quantity,
        "scrap": result.figures.scrap_quantity,
    }


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x
