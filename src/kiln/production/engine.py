"""The production engine: machine states, counts and orders in, OEE out.

One platform service (stage ENGINES). It follows the tags the asset types' state models name
(`kiln.production.plan`), keeps every sample of them in its own store (`ProductionStore`),
derives the state rows from those samples (`kiln.production.derive`) and answers questions over
them by recomputing from the store (`kiln.production.query`). A sample that arrives late, out of
order or replayed is merged at its source time and the rows after it are derived again, so the
store ends up the same whatever order the samples came in.

What it acknowledged is on disk: a batch's samples and rows are committed before the next batch
is taken, and a restart re-derives the rows from the last stored row on (in case it stopped
between the two commits). Operators' reasons, work orders, products and calendars come in as
bus commands (target `production`), so the API talks to the engine the same way in one process
or over NATS. Each `live_s` the assets whose data changed get their current shift's figures
published as a `production.live` event (the overview board and `oee_live_update_ms` read it).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kiln.core.bus import (
    BusError,
    CommandServer,
    Overflow,
    SubscriptionClosed,
    ValueSubscription,
)
from kiln.core.bus import Event as BusEvent
from kiln.core.clock import Clock
from kiln.core.engine_stop import stop_engine
from kiln.core.platform import Health, Platform, Status
from kiln.core.values import ValueBatch, path_has_prefix
from kiln.model import AssetDef, AssetTypeDef
from kiln.production import query
from kiln.production.calendar import CalendarDef
from kiln.production.chunks import SAMPLE_DTYPE, STATE_DTYPE
from kiln.production.derive import derive_rows, is_state_signal
from kiln.production.intervals import Interval
from kiln.production.orders import OrderAction, OrderRefused, OrderState, Product
from kiln.production.plan import AssetPlan, compile_plans
from kiln.production.settings import ProductionSettings
from kiln.production.spc_tags import SpcChartRun, SpcDef, SpcPoint
from kiln.production.store import ProductionStore, UnknownOrder
from kiln.production.taxonomy import CATEGORY_CODES, Category

_LOGGER = logging.getLogger(__name__)

PRODUCTION_TARGET = "production"
LIVE_KIND = "production.live"
SPC_KIND = "production.spc"
SPC_SUFFIX = "_spc"  # the companion tag of a charted tag: the lowest rule violated, 0 if none
_SPC_KEY = "spc:"  # the store's key of a chart's saved run
_FOREVER_US = 1 << 62
_BAD_BIT = 1 << 31  # OPC UA severity Bad (kiln.core.quality)
_THREAD_POINTS = 2_000  # batches this large are picked off the event loop
_ALIVE_KEY = "alive_us"  # prod_kv: the engine's heartbeat, every live tick
_BLIND_AFTER_S = 60.0  # away longer than this: what the machines did meanwhile is unknown
_Picked = tuple[
    dict[tuple[str, str], list[tuple[int, float]]],
    dict[str, list[tuple[int, float]]],
    list[tuple[int, str, Any, int]],
]


@dataclass(frozen=True, slots=True)
class Declared:
    """What the plant file declares: the asset model."""

    types: Sequence[AssetTypeDef] = ()
    assets: Sequence[AssetDef] = ()


@dataclass(slots=True)
class EngineStats:
    batches: int = 0
    points: int = 0  # followed points recorded
    late: int = 0  # samples that arrived before a later one of their asset
    rows: int = 0  # state rows written
    failures: int = 0
    last_error: str = ""
    live_published: int = 0
    dropped: int = 0  # samples dropped after the store stayed away past queue_points


@dataclass(slots=True)
class _AssetState:
    """What the engine remembers of an asset between batches."""

    current: dict[str, float] = field(default_factory=dict)  # state signal -> latest value
    state_t: int = -_FOREVER_US  # latest time of a state signal's sample
    last_row: tuple[int, int, int] | None = None  # (category, reason, raw)


def _numeric(value: Any, quality: int) -> float:
    if quality & _BAD_BIT:
        return math.nan
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return math.nan


class ProductionEngine:
    """The `production` service. `store` is not yet open; the engine opens it at start."""

    name = "production"

    def __init__(
        self,
        store: ProductionStore,
        declared: Declared,
        settings: ProductionSettings,
        *,
        queue_points: int = 200_000,
    ) -> None:
        self.store = store
        self.declared = declared
        self.settings = settings
        self.queue_points = queue_points
        self.stats = EngineStats()
        self.plans: dict[str, AssetPlan] = {
            p.asset: p for p in compile_plans(declared.types, declared.assets, settings.types)
        }
        self._index: dict[str, list[tuple[str, str]]] = defaultdict(list)  # path -> (asset, signal)
        for plan in self.plans.values():
            for signal, path in plan.signals.items():
                self._index[path].append((plan.asset, signal))
        self._assets: dict[str, _AssetState] = {a: _AssetState() for a in self.plans}
        self.calendars: dict[str, CalendarDef] = {c.site: c for c in settings.calendars}
        self.products: dict[str, Product] = {p.code: p for p in settings.products}
        self.spc: dict[str, SpcDef] = {c.name: c for c in settings.spc}
        self._spc_runs: dict[str, SpcChartRun] = {}
        self._spc_by_path: dict[str, list[str]] = defaultdict(list)
        self._size_paths: dict[str, list[str]] = defaultdict(list)  # sample-size tags
        for chart in settings.spc:
            self._spc_by_path[chart.tag].append(chart.name)
            if chart.sample_size_tag is not None:
                self._size_paths[chart.sample_size_tag].append(chart.name)
            for counter in chart.sample_size_counters or ():
                if counter != chart.tag:  # n's counters are fed with the charted counter
                    self._size_paths[counter].append(chart.name)
        self._sizes: dict[str, float] = {}
        self._order_tags = {rule.tag: rule for rule in settings.order_tags}
        self._reason_cache: dict[str, int] = {}
        self._dirty: set[str] = set()
        self._unsaved: dict[tuple[str, str], list[tuple[int, float]]] = {}
        # SPC results go out from their own task: the value loop must never wait on the bus
        # it consumes (its own queue full would wait on itself).
        self._spc_out: asyncio.Queue[list[tuple[str, SpcPoint]]] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._platform: Platform | None = None
        self._clock: Clock | None = None
        self._sub: ValueSubscription | None = None
        self._server: CommandServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._status = Status.STARTING

    # -- life cycle --------------------------------------------------------------------------

    async def start(self, platform: Platform) -> None:
        from kiln.production.engine_commands import EngineCommands

        self._platform, self._clock = platform, platform.clock
        await asyncio.to_thread(self._open)
        self._sub = platform.bus.subscribe(
            "production", max_points=self.queue_points, overflow=Overflow.BLOCK
        )
        self._server = await platform.bus.serve(PRODUCTION_TARGET, EngineCommands(self))
        self._tasks = [
            platform.spawn(self._value_loop(self._sub), name="production-values"),
            platform.spawn(self._live_loop(), name="production-live"),
            platform.spawn(self._spc_loop(), name="production-spc"),
        ]
        self._status = Status.OK
        _LOGGER.info("Production engine started: %d assets followed", len(self.plans))

    def _open(self) -> None:
        self.store.open()
        for product in self.settings.products:
            self.store.put_product(product)
        self.products = {p.code: p for p in self.store.products()}
        for site, definition in self.store.calendars().items():
            try:
                self.calendars[site] = CalendarDef.model_validate(definition)
            except ValueError as err:
                _LOGGER.error("Stored calendar of %s does not load: %s", site, err)
        for name, chart in self.spc.items():
            saved = self.store.get_kv(_SPC_KEY + name)
            run: SpcChartRun | None = None
            if saved is not None:
                try:
                    run = SpcChartRun.restore(chart, saved)
                except (ValueError, KeyError) as err:
                    _LOGGER.warning("SPC chart %s starts afresh: %s", name, err)
            self._spc_runs[name] = run or SpcChartRun(chart)
        last_rows = self.store.last_states()
        last_samples = self.store.last_samples()
        for (asset, signal), (t, v) in last_samples.items():
            state = self._assets.get(asset)
            if state is not None and is_state_signal(signal):
                state.current[signal] = v
                state.state_t = max(state.state_t, t)
        heal: dict[str, int] = {
            a: t for a, t in self.store.pending().items() if a in self._assets
        }  # late samples whose rows were not derived again before the engine stopped
        for asset, row in last_rows.items():
            state = self._assets.get(asset)
            if state is None:
                continue
            state.last_row = (int(row["category"]), int(row["reason"]), int(row["raw"]))
            if state.state_t > int(row["t"]):
                # Samples committed after the last rows (an older engine wrote them apart).
                heal[asset] = min(heal.get(asset, int(row["t"])), int(row["t"]))
        for asset in self._assets:
            if asset not in last_rows and self._assets[asset].current:
                heal[asset] = -_FOREVER_US
        if heal:
            self._rederive(heal)
        self._mark_blind_time()

    def _mark_blind_time(self) -> None:
        """While the engine did not run, nothing was recorded: a machine last seen running
        must not count the outage as production. When the engine was away longer than
        `_BLIND_AFTER_S` (beyond a quick restart), each asset gets an `unknown` row at the last
        instant it was known to run (the heartbeat it keeps in its store); the machine's next
        value ends it."""
        alive = self.store.get_kv(_ALIVE_KEY)
        if not isinstance(alive, int):
            return
        assert self._clock is not None
        if self._clock.now_us() - alive < _BLIND_AFTER_S * 1_000_000:
            return
        unknown = CATEGORY_CODES[Category.UNKNOWN]
        rows: dict[str, np.ndarray] = {}
        for asset, state in self._assets.items():
            last = state.last_row
            if last is None or last[0] == unknown or state.state_t >= alive:
                continue
            row = np.zeros(1, dtype=STATE_DTYPE)
            row[0] = (alive + 1, unknown, 0, -1)
            rows[asset] = row
            state.last_row = (unknown, 0, -1)
            state.current = {}
            state.state_t = alive + 1
        if rows:
            self.store.commit({}, rows, {})
            _LOGGER.info("Production engine: %d assets unknown while it was away", len(rows))

    async def stop(self) -> None:
        server, self._server = self._server, None
        tasks, self._tasks = self._tasks, []
        await stop_engine(server, self._sub, tasks, self._lock, self.store.close)
        self._status = Status.STOPPED

    def health(self) -> Health:
        status = self._status
        if status is Status.OK and any(t.done() for t in self._tasks):
            status = Status.FAILED
        elif status is Status.OK and self.stats.failures and self.stats.last_error:
            status = Status.DEGRADED
        return Health(
            status,
            {
                "assets": len(self.plans),
                "batches": self.stats.batches,
                "points": self.stats.points,
                "late": self.stats.late,
                "rows": self.stats.rows,
                "failures": self.stats.failures,
                "last_error": self.stats.last_error,
            },
        )

    def now_us(self) -> int:
        assert self._clock is not None, "the engine is not started"
        return self._clock.now_us()

    def mark_dirty(self, asset: str) -> None:
        """Publish the asset's live figures at the next tick (an operator changed its data)."""
        self._dirty.add(asset)

    def mark_all_dirty(self) -> None:
        self._dirty.update(self.plans)

    def context(self) -> query.Context:
        return query.Context(self.plans, dict(self.calendars), dict(self.products))

    # -- values ------------------------------------------------------------------------------

    async def _value_loop(self, sub: ValueSubscription) -> None:
        while True:
            try:
                first = await sub.get()
            except SubscriptionClosed:
                return
            batches = [first, *sub.drain(self.queue_points)]
            try:
                await self.apply_batches(batches)
            except Exception as err:
                # A store outage or one malformed batch must not stop the next batches.
                self.stats.failures += 1
                self.stats.last_error = f"{type(err).__name__}: {err}"
                _LOGGER.exception("Production engine: %d batches failed", len(batches))

    async def apply_batches(self, batches: Sequence[ValueBatch]) -> None:
        """Record the followed samples of the batches; derive and commit their state rows.

        Samples whose commit failed (the store away) are kept and committed with the next
        batches, up to `queue_points` of them; the rows are derived from them then. Charts and
        order tags are handled apart, so a failure of one does not lose the others."""
        points = sum(len(b.paths) for b in batches)
        # Picking the followed points is a Python loop over every point: a big batch (a bulk
        # upload) is picked in a worker thread, so the event loop keeps serving meanwhile.
        if points >= _THREAD_POINTS:
            picked = await asyncio.to_thread(self._pick, batches)
        else:
            picked = self._pick(batches)
        grouped, charted, ordered = picked
        # Counted here, with no await before the lock is taken: whoever sees the count and
        # then takes the lock finds these batches recorded.
        self.stats.batches += len(batches)
        if self._unsaved:
            for key, rows in grouped.items():
                self._unsaved.setdefault(key, []).extend(rows)
            grouped, self._unsaved = self._unsaved, {}
        if not grouped and not charted and not ordered:
            return
        async with self._lock:
            failure: BaseException | None = None
            if grouped:
                try:
                    changed = await asyncio.to_thread(self._record, grouped)
                    self._dirty.update(changed)
                except Exception as err:
                    failure = err
                    self._keep_unsaved(grouped)
            if charted:
                try:
                    spc_points = await asyncio.to_thread(self._chart, charted)
                    self._spc_out.put_nowait(spc_points)
                except Exception as err:
                    failure = failure or err
            if ordered:
                try:
                    ordered.sort(key=lambda o: o[0])
                    changed = await asyncio.to_thread(self._follow_orders, ordered)
                    self._dirty.update(changed)
                except Exception as err:
                    failure = failure or err
            if failure is not None:
                raise failure

    def _keep_unsaved(self, grouped: Mapping[tuple[str, str], list[tuple[int, float]]]) -> None:
        """Keep samples whose commit failed for the next try, dropping the oldest beyond
        `queue_points` (counted: the store has been away too long)."""
        kept = {k: list(v) for k, v in grouped.items()}
        total = sum(len(v) for v in kept.values())
        while total > self.queue_points and kept:
            key = min(kept, key=lambda k: kept[k][0][0] if kept[k] else 0)
            dropped = kept.pop(key)
            total -= len(dropped)
            self.stats.dropped += len(dropped)
        self._unsaved = kept

    def _pick(self, batches: Sequence[ValueBatch]) -> _Picked:
        """The batches' points of followed tags, charted tags and order tags."""
        grouped: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
        charted: dict[str, list[tuple[int, float]]] = defaultdict(list)
        ordered: list[tuple[int, str, Any, int]] = []  # (time, order tag, value, quality)
        index, order_tags = self._index, self._order_tags
        spc_paths = self._spc_by_path.keys() | self._size_paths.keys()
        for batch in batches:
            for path, value, t, quality in zip(
                batch.paths, batch.values, batch.source_us, batch.qualities, strict=True
            ):
                hits = index.get(path)
                if hits is None and path not in spc_paths and path not in order_tags:
                    continue
                if path in order_tags:
                    ordered.append((int(t), path, value, int(quality)))
                v = _numeric(value, int(quality))
                if path in spc_paths:
                    charted[path].append((int(t), v))
                for key in hits or ():
                    grouped[key].append((int(t), v))
        return grouped, charted, ordered

    def _record(self, grouped: Mapping[tuple[str, str], list[tuple[int, float]]]) -> set[str]:
        """Derive, commit, then remember: nothing the engine holds in memory changes until the
        samples, their rows and the re-derivations they call for are on disk together. The
        assets whose data changed."""
        samples: dict[tuple[str, str], np.ndarray] = {}
        for key, given in grouped.items():
            if not is_state_signal(key[1]):
                # A counter's Bad sample (NaN) carries nothing: counting resumes from the next
                # good one, and a window never starts from a NaN carried into it.
                given = [(t, v) for t, v in given if math.isfinite(v)]
            if given:
                arr = np.array(given, dtype=SAMPLE_DTYPE)
                samples[key] = arr[np.argsort(arr["t"], kind="stable")]
        # Per asset: in order (every state sample at or after the latest seen) or late.
        by_asset: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
        for (asset, signal), arr in samples.items():
            if is_state_signal(signal):
                by_asset[asset][signal] = arr
        late: dict[str, int] = {}
        fresh: dict[str, np.ndarray] = {}
        for asset, signals in by_asset.items():
            state = self._assets[asset]
            first = min(int(a["t"][0]) for a in signals.values())
            if first < state.state_t:
                late[asset] = first
                continue
            rows = derive_rows(
                self.plans[asset], signals, state.current, self._reason_id, previous=state.last_row
            )
            if len(rows):
                fresh[asset] = rows
        self.store.commit(samples, fresh, late)
        # Committed: now what the engine remembers may move on.
        self.stats.points += sum(len(a) for a in samples.values())
        self.stats.rows += sum(len(r) for r in fresh.values())
        for asset, signals in by_asset.items():
            if asset in late:
                continue
            state = self._assets[asset]
            for signal, arr in signals.items():
                state.current[signal] = float(arr["v"][-1])
                state.state_t = max(state.state_t, int(arr["t"][-1]))
            if asset in fresh:
                last = fresh[asset][-1]
                state.last_row = (int(last["category"]), int(last["reason"]), int(last["raw"]))
        for asset, signals in by_asset.items():
            if asset in late:
                self.stats.late += sum(
                    int((a["t"] < self._assets[asset].state_t).sum()) for a in signals.values()
                )
        if late:
            self._rederive(late)
        return {asset for asset, _ in samples}

    def _rederive(self, since: Mapping[str, int]) -> None:
        """Derive the rows of each asset again from its stored samples, from `since` on. An
        asset that fails stays pending (the store keeps it) and is tried again at the next
        start; the others go on."""
        for asset, start in since.items():
            try:
                self._rederive_one(asset, start)
            except Exception as err:
                self.stats.failures += 1
                self.stats.last_error = f"deriving the states of {asset}: {err}"
                _LOGGER.exception("Production engine: deriving the states of %s failed", asset)

    def _rederive_one(self, asset: str, start: int) -> None:
        plan = self.plans[asset]
        state = self._assets[asset]
        window = Interval(start, _FOREVER_US)
        signals = [s for s in plan.signals if is_state_signal(s)]
        stored = self.store.samples_many([(asset, s) for s in signals], window)
        initial: dict[str, float] = {}
        after: dict[str, np.ndarray] = {}
        for signal in signals:
            arr = stored.get((asset, signal), np.zeros(0, SAMPLE_DTYPE))
            if len(arr) and arr["t"][0] < start:
                initial[signal] = float(arr["v"][0])
                arr = arr[1:]
            after[signal] = arr
        before = self.store.states(asset, Interval(start, start + 1))
        previous = None
        if len(before) and int(before["t"][0]) < start:
            b = before[0]
            previous = (int(b["category"]), int(b["reason"]), int(b["raw"]))
        rows = derive_rows(plan, after, initial, self._reason_id, previous=previous)
        self.store.replace_states(asset, start, rows, done=True)
        self.stats.rows += len(rows)
        for signal, arr in after.items():
            if len(arr):
                state.current[signal] = float(arr["v"][-1])
                state.state_t = max(state.state_t, int(arr["t"][-1]))
        tail = self.store.states(asset, Interval(_FOREVER_US - 1, _FOREVER_US))
        if len(tail):  # the row carried into the far future: the asset's last
            last = tail[-1]
            state.last_row = (int(last["category"]), int(last["reason"]), int(last["raw"]))
        else:
            state.last_row = None

    # -- orders from tags ----------------------------------------------------------------------

    def _follow_orders(self, changes: Sequence[tuple[int, str, Any, int]]) -> set[str]:
        """Apply each order tag's Good value, in time order: end the running order, start the
        new. A Bad value (the connection lost: it repeats the last value, or a type's zero)
        says nothing about the order and is passed over. The assets whose orders changed."""
        changed: set[str] = set()
        for t, path, value, quality in changes:
            if quality & _BAD_BIT:
                continue
            rule = self._order_tags[path]
            wanted = "" if value in (None, 0, 0.0, False) else str(value).strip()
            running = self.store.orders(rule.line, [OrderState.RUNNING], limit=5)
            current = next((o for o in running if o.line == rule.line), None)
            try:
                if current is not None and current.id != wanted:
                    self.store.apply_order_action(
                        current.id, rule.previous, t, "tag:" + path, "the order tag changed"
                    )
                if wanted and (current is None or current.id != wanted):
                    order = self.store.order(wanted)
                    if order is None:
                        raise OrderRefused(f"the order tag names {wanted!r}, which is not known")
                    if order.line != rule.line:
                        raise OrderRefused(
                            f"the order tag of {rule.line} names {wanted!r}, an order of "
                            f"{order.line}: an order runs on the line it was dispatched to"
                        )
                    if order.state is OrderState.PLANNED:
                        self.store.apply_order_action(wanted, OrderAction.RELEASE, t, "tag:" + path)
                    action = (
                        OrderAction.RESUME
                        if order.state is OrderState.PAUSED
                        else OrderAction.START
                    )
                    self.store.apply_order_action(wanted, action, t, "tag:" + path)
            except (OrderRefused, UnknownOrder) as err:
                # A wrong number on the tag must not stop the engine: say so in health.
                self.stats.failures += 1
                self.stats.last_error = f"order tag {path}: {err}"
                _LOGGER.warning("Production engine: order tag %s: %s", path, err)
            changed.update(a for a in self.plans if path_has_prefix(a, rule.line))
        return changed

    # -- SPC ---------------------------------------------------------------------------------

    def _chart(self, charted: Mapping[str, list[tuple[int, float]]]) -> list[tuple[str, SpcPoint]]:
        """Feed each chart its tag's new values (in time order; a value older than the chart's
        last is dropped: a control chart is a sequence, late values cannot be charted in place),
        a counter chart the new samples of its counters (charted tag and `sample_size_counters`),
        and save the runs that moved."""
        out: list[tuple[str, SpcPoint]] = []
        counted: set[str] = set()  # counter charts with new samples of any of their counters
        for path, given in charted.items():
            given.sort()
            for name in self._size_paths.get(path, ()):
                if self.spc[name].counter:
                    counted.add(name)
                    continue
                finite = [v for _, v in given if math.isfinite(v) and v > 0]
                if finite:
                    self._sizes[name] = finite[-1]
        for path, given in charted.items():
            for name in self._spc_by_path.get(path, ()):
                chart, run = self.spc[name], self._spc_runs[name]
                if chart.counter:
                    counted.add(name)
                    continue
                times = [t for t, v in given if math.isfinite(v)]
                values = [v for _, v in given if math.isfinite(v)]
                sizes = None
                if chart.sample_size_tag is not None:
                    sizes = [self._sizes.get(name, float(chart.sample_size or 1))] * len(times)
                try:
                    points = run.add(times, values, sizes) if times else []
                except ValueError as err:
                    self._chart_failed(name, err)
                    continue
                out.extend((name, p) for p in points)
                self.store.put_kv(_SPC_KEY + name, run.snapshot())
        for name in sorted(counted):
            # All the chart's counters at once: the run orders their increases in time.
            chart, run = self.spc[name], self._spc_runs[name]
            series = {
                tag: ([t for t, _ in charted[tag]], [v for _, v in charted[tag]])
                for tag in chart.counter_tags
                if tag in charted
            }
            try:
                points = run.add_counters(series)
            except ValueError as err:
                self._chart_failed(name, err)
                continue
            out.extend((name, p) for p in points)
            self.store.put_kv(_SPC_KEY + name, run.snapshot())
        return out

    def _chart_failed(self, name: str, err: ValueError) -> None:
        """Values one chart cannot take (more defectives than its n, a count not whole): that
        chart's subgroup is left out and said in health; the other charts go on."""
        self.stats.failures += 1
        self.stats.last_error = f"SPC chart {name}: {err}"
        _LOGGER.warning("Production engine: SPC chart %s left out a subgroup: %s", name, err)

    async def _spc_loop(self) -> None:
        while True:
            points = await self._spc_out.get()
            await self._publish_spc(points)

    async def _publish_spc(self, points: Sequence[tuple[str, SpcPoint]]) -> None:
        """Each judged subgroup as a value of the tag's `_spc` companion (the lowest rule it
        broke, 0 when in control), so alarms are defined on it like on any tag; violations
        also as `production.spc` events."""
        assert self._platform is not None
        judged = [(n, p) for n, p in points if p.limits is not None]
        if not judged:
            return
        paths = [self.spc[n].tag + SPC_SUFFIX for n, _ in judged]
        batch = ValueBatch(
            paths=paths,
            values=[min(p.rules) if p.rules else 0 for _, p in judged],
            source_us=[p.time_us for _, p in judged],
            qualities=[0] * len(judged),
            receive_us=self.now_us(),
        )
        try:
            await self._platform.bus.publish(batch)
            for name, point in judged:
                if point.rules:
                    await self._platform.bus.publish_event(
                        BusEvent(
                            kind=SPC_KIND,
                            key=self.spc[name].tag,
                            data={"chart": name, "tag": self.spc[name].tag, **point.to_json()},
                            time_us=point.time_us,
                        )
                    )
        except BusError as err:
            self.stats.last_error = f"SPC publish failed: {err}"

    def _reason_id(self, path: str | None) -> int:
        if not path:
            return 0
        got = self._reason_cache.get(path)
        if got is None:
            got = self.store.reason_ids([path])[path]
            self._reason_cache[path] = got
        return got

    # -- live --------------------------------------------------------------------------------

    async def _live_loop(self) -> None:
        assert self._clock is not None
        while True:
            await self._clock.sleep(self.settings.live_s)
            try:
                await asyncio.to_thread(self.store.put_kv, _ALIVE_KEY, self.now_us())
                await self.publish_live()
            except Exception as err:
                self.stats.failures += 1
                self.stats.last_error = f"live: {type(err).__name__}: {err}"
                _LOGGER.exception("Production engine: live figures failed")

    async def publish_live(self) -> list[dict[str, Any]]:
        """The current-shift figures of the assets whose data changed, as events."""
        assert self._platform is not None
        dirty, self._dirty = self._dirty, set()
        if not dirty:
            return []
        now = self.now_us()
        ctx = self.context()
        figures = await asyncio.to_thread(
            lambda: [query.live(self.store, ctx, a, now) for a in sorted(dirty)]
        )
        out: list[dict[str, Any]] = []
        for data in figures:
            if data is None:
                continue
            try:
                await self._platform.bus.publish_event(
                    BusEvent(kind=LIVE_KIND, key=data["asset"], data=data, time_us=now)
                )
            except BusError as err:
                self.stats.last_error = f"live publish failed: {err}"
                self._dirty.add(data["asset"])
                continue
            self.stats.live_published += 1
            out.append(data)
        return out
