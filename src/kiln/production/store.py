"""The production engine's store: machine states and counter samples (as chunks), the reason
dictionary, operators' reason records, products, work orders and their events, shift calendars
and the engine's small persisted state. SQLite by default, PostgreSQL with the same code and
migrations (`kiln.db`).

Synchronous, like the other relational stores: the engine calls it from a worker thread
(`asyncio.to_thread`), one writer at a time; readers (the API) may read meanwhile.

Every write is one transaction: a merge of late rows into several chunks, a batch of reason
records, an order action with its event either happen whole or not at all, even under kill -9.
SQLite runs in WAL mode with synchronous=FULL, so a write is on disk when the call returns.

States and samples are kept as chunks (`kiln.production.chunks`): a year of an asset's states
is 365 BLOBs, read back and concatenated in milliseconds, where a row per change would be half
a million rows to decode.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, cast, get_args

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from kiln.core.values import path_has_prefix
from kiln.db.sql import in_parts, insert_missing, insert_numbered, subtree, upsert
from kiln.db.store import MigratedStore
from kiln.production import chunks, migrations
from kiln.production.chunks import DAY_US, HOUR_US, SAMPLE_DTYPE, STATE_DTYPE
from kiln.production.intervals import Interval, StopRecord
from kiln.production.orders import (
    OrderAction,
    OrderConflict,
    OrderEvent,
    OrderRefused,
    OrderState,
    Product,
    WorkOrder,
    next_state,
)
from kiln.production.schema import (
    PROD_CALENDARS,
    PROD_COUNT_EVENTS,
    PROD_KV,
    PROD_ORDER_EVENTS,
    PROD_ORDERS,
    PROD_PRODUCTS,
    PROD_REASON_RECORDS,
    PROD_REASONS,
    PROD_SAMPLE_CHUNKS,
    PROD_STATE_CHUNKS,
)
from kiln.production.taxonomy import Category

__all__ = [
    "NO_REASON",
    "SAMPLE_DTYPE",
    "STATE_DTYPE",
    "DuplicateOrder",
    "OrderRun",
    "ProductionStore",
    "ReasonRecord",
    "UnknownOrder",
]


# The reason id of "no reason" in state rows: never given to a path.
NO_REASON = 0

ReasonAction = Literal["assign", "split", "reassign"]
_REASON_ACTIONS = frozenset(get_args(ReasonAction))

SampleKey = tuple[str, str]  # (asset, signal)


# -- value types ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReasonRecord:
    """An operator's statement: from `start_us` to `end_us` the asset stood still for `reason`
    (a path in its reason tree) of `category`. Never changed once stored: a correction is a
    newer record, and where records overlap the one entered last wins (`stop_record` feeds
    `kiln.production.intervals.resolve_overlaps`).

    `action` says what the operator did: assigned a reason to a stop, split a stop into
    several (the records of one split share `group_id`), or reassigned. `id` and `group_id`
    are given by the store when None.
    """

    asset: str
    start_us: int
    end_us: int
    reason: str
    category: Category
    user: str
    entered_us: int
    action: ReasonAction = "assign"
    comment: str = ""
    group_id: int | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        if self.end_us <= self.start_us:
            raise ValueError(
                f"reason record on {self.asset} covers no time ({self.start_us} to "
                f"{self.end_us} µs): give a start before the end"
            )
        if self.action not in _REASON_ACTIONS:
            raise ValueError(
                f"reason record action {self.action!r} is not one of "
                + ", ".join(sorted(_REASON_ACTIONS))
            )
        # Accept the category's value too (as the API and JSON give it).
        object.__setattr__(self, "category", Category(self.category))

    @property
    def interval(self) -> Interval:
        return Interval(self.start_us, self.end_us)

    def stop_record(self) -> StopRecord[ReasonRecord]:
        """This record as `resolve_overlaps` takes it (pass records in `reason_records` order:
        ties of `entered_us` go to the later id)."""
        return StopRecord(self.interval, self, self.entered_us)


@dataclass(frozen=True, slots=True)
class CountEvent:
    """`good` and `scrap` units counted on `asset` at `time_us` (increments)."""

    asset: str
    time_us: int
    good: float
    scrap: float
    user: str
    entered_us: int
    comment: str = ""
    id: int | None = None

    @property
    def units(self) -> float:
        return self.good + self.scrap

    def __post_init__(self) -> None:
        for name in ("good", "scrap"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= 1e9):
                raise ValueError(f"{name} must be a number from 0 to 1e9, not {value!r}")
        if self.good == 0 and self.scrap == 0:
            raise ValueError("a count event counts something: give good or scrap above 0")


PENDING_KEY = "pending_rederive"  # prod_kv: {asset: µs} state rows to derive again from


def _pending(conn: Connection) -> dict[str, int]:
    found = conn.execute(select(PROD_KV.c.value).where(PROD_KV.c.key == PENDING_KEY)).first()
    if found is None or not found[0]:
        return {}
    return {str(a): int(t) for a, t in dict(found[0]).items()}


class OrderRun(NamedTuple):
    """A period in which an order was running on its line, clipped to the window asked for."""

    order_id: str
    product: str
    line: str
    interval: Interval


class UnknownOrder(LookupError):
    """No work order has that id."""


class DuplicateOrder(OrderRefused):
    """A work order with that id exists already."""


# -- chunked series -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Series:
    """One kind of chunked time series: its table, the columns that name a series, the column
    of the chunk period's start, the period's width and the rows' dtype."""

    table: Table
    keys: tuple[str, ...]
    period: str
    width_us: int
    dtype: np.dtype[np.void]

    def key_of(self, row: Any) -> tuple[str, ...]:
        return tuple(row[k] for k in self.keys)

    def is_key(self, key: tuple[str, ...]) -> ColumnElement[bool]:
        return and_(*(self.table.c[k] == v for k, v in zip(self.keys, key, strict=True)))


_STATES = _Series(PROD_STATE_CHUNKS, ("asset",), "day_us", DAY_US, STATE_DTYPE)
_SAMPLES = _Series(PROD_SAMPLE_CHUNKS, ("asset", "signal"), "hour_us", HOUR_US, SAMPLE_DTYPE)


class ProductionStore(MigratedStore):
    """The production store in one database (SQLite or PostgreSQL).

    Call `open` before anything else and `close` at the end; the store can be opened again.
    `clock` gives `updated_us` where a caller leaves it out.
    """

    what = "production store"

    @staticmethod
    def upgrade(conn: Connection) -> None:
        migrations.upgrade(conn)

    # -- machine states -------------------------------------------------------------------

    def add_states(self, rows: Mapping[str, np.ndarray]) -> dict[str, int]:
        """Merge each asset's rows (`STATE_DTYPE`, in any order, over any days, late or
        replayed) into its chunks, in one transaction. Where two rows share a time the one
        added last stays. Returns, per asset given rows, the earliest time given: results
        from there on may have changed."""
        given: dict[tuple[str, ...], np.ndarray] = {
            (asset,): chunks.check_rows(r, STATE_DTYPE, asset) for asset, r in rows.items()
        }
        with self.engine.begin() as conn:
            changed = _merge(conn, _STATES, given)
        return {key[0]: t for key, t in changed.items()}

    def commit(
        self,
        samples: Mapping[SampleKey, np.ndarray],
        states: Mapping[str, np.ndarray],
        pending: Mapping[str, int],
    ) -> None:
        """The engine's write of one step, in one transaction: new samples, the state rows
        derived in order from them, and the assets whose rows are still to be derived again
        from a time (late samples). Those are kept under `PENDING_KEY` until done, so that a
        crash before they are done leaves the work to the next start instead of losing it."""
        given_samples: dict[tuple[str, ...], np.ndarray] = {
            (asset, signal): chunks.check_rows(r, SAMPLE_DTYPE, f"{asset} {signal}")
            for (asset, signal), r in samples.items()
        }
        given_states: dict[tuple[str, ...], np.ndarray] = {
            (a,): chunks.check_rows(r, STATE_DTYPE, a) for a, r in states.items()
        }
        with self.engine.begin() as conn:
            if given_samples:
                _merge(conn, _SAMPLES, given_samples)
            if given_states:
                _merge(conn, _STATES, given_states)
            if pending:
                merged = _pending(conn)
                for asset, t in pending.items():
                    merged[asset] = min(merged.get(asset, t), t)
                upsert(conn, PROD_KV, ["key"], [{"key": PENDING_KEY, "value": merged}])

    def pending(self) -> dict[str, int]:
        """The assets whose rows are to be derived again, and from when."""
        with self.engine.connect() as conn:
            return _pending(conn)

    def replace_states(
        self, asset: str, start_us: int, rows: np.ndarray, *, done: bool = False
    ) -> None:
        """Replace every row of the asset at or after `start_us` by `rows` (none of them
        earlier), in one transaction: what the engine writes when it derives an asset's
        states again from late samples. Rows before `start_us` stay as they are. `done` clears
        the asset from the pending re-derivations (`commit`) in the same transaction."""
        chunks.check_rows(rows, STATE_DTYPE, asset)
        if len(rows) and int(rows["t"].min()) < start_us:
            raise ValueError(
                f"replacing the states of {asset} from {start_us} µs: a row at "
                f"{int(rows['t'].min())} µs is earlier; merge earlier rows with add_states"
            )
        t = PROD_STATE_CHUNKS.c
        first = start_us - start_us % DAY_US
        with self.engine.begin() as conn:
            found = conn.execute(
                select(t.data, t.n).where(t.asset == asset, t.day_us == first)
            ).first()
            kept = np.empty(0, dtype=STATE_DTYPE)
            if found is not None:
                day = chunks.decode(found[0], int(found[1]), STATE_DTYPE)
                kept = day[day["t"] < start_us]
            conn.execute(delete(PROD_STATE_CHUNKS).where(t.asset == asset, t.day_us >= first))
            _merge(conn, _STATES, {(asset,): np.concatenate((kept, rows))})
            if done:
                # This asset's pending re-derivation is done, in the same transaction; unless
                # one from an earlier time was added meanwhile.
                merged = _pending(conn)
                if asset in merged and merged[asset] >= start_us:
                    del merged[asset]
                    upsert(conn, PROD_KV, ["key"], [{"key": PENDING_KEY, "value": merged}])

    def states(self, asset: str, window: Interval) -> np.ndarray:
        """The asset's rows with `window.start_us <= t < window.end_us`, sorted, preceded by
        the last row before the window (the state carried into it) if there is one."""
        return self.states_many([asset], window)[asset]

    def states_many(self, assets: Iterable[str], window: Interval) -> dict[str, np.ndarray]:
        """`states` of each asset (an empty array for one with none), in two queries per
        500 assets."""
        keys = [(a,) for a in dict.fromkeys(assets)]
        with self.engine.connect() as conn:
            found = _read(conn, _STATES, keys, window)
        return {key[0]: rows for key, rows in found.items()}

    def last_states(self) -> dict[str, np.record]:
        """Each asset's latest state row (what the engine resumes from after a restart)."""
        with self.engine.connect() as conn:
            return {key[0]: row for key, row in _last_rows(conn, _STATES).items()}

    # -- samples --------------------------------------------------------------------------

    def add_samples(self, rows: Mapping[SampleKey, np.ndarray]) -> dict[SampleKey, int]:
        """Merge rows (`SAMPLE_DTYPE`) per (asset, signal) into their hour chunks, in one
        transaction, as `add_states` does; returns the earliest time given per series."""
        given: dict[tuple[str, ...], np.ndarray] = {}
        for key, r in rows.items():
            asset, signal = key
            given[(asset, signal)] = chunks.check_rows(r, SAMPLE_DTYPE, f"{asset} {signal}")
        with self.engine.begin() as conn:
            changed = _merge(conn, _SAMPLES, given)
        return {(k[0], k[1]): t for k, t in changed.items()}

    def samples(self, asset: str, signal: str, window: Interval) -> np.ndarray:
        """The signal's rows in `window`, sorted, preceded by the last one before it."""
        return self.samples_many([(asset, signal)], window)[(asset, signal)]

    def samples_many(
        self, keys: Iterable[SampleKey], window: Interval
    ) -> dict[SampleKey, np.ndarray]:
        """`samples` of each (asset, signal), in two queries per 500 assets."""
        wanted: list[tuple[str, ...]] = [(a, s) for a, s in dict.fromkeys(keys)]
        with self.engine.connect() as conn:
            found = _read(conn, _SAMPLES, wanted, window)
        return {(k[0], k[1]): rows for k, rows in found.items()}

    def last_samples(self) -> dict[SampleKey, tuple[int, float]]:
        """Each series' latest sample as (t, v)."""
        with self.engine.connect() as conn:
            rows = _last_rows(conn, _SAMPLES)
        return {(k[0], k[1]): (int(r["t"]), float(r["v"])) for k, r in rows.items()}

    # -- reason dictionary ----------------------------------------------------------------

    def reason_ids(self, paths: Iterable[str]) -> dict[str, int]:
        """The id of each reason path, adding the paths not known yet; "" is `NO_REASON`."""
        given = list(dict.fromkeys(paths))
        wanted = [p for p in given if p]
        out: dict[str, int] = {"": NO_REASON} if "" in given else {}
        if not wanted:
            return out
        with self.engine.begin() as conn:
            known = _reason_ids(conn, wanted)
            missing = [p for p in wanted if p not in known]
            if missing:
                # Commands run in threads: another may be adding the same path right now.
                insert_missing(conn, PROD_REASONS, ["path"], [{"path": p} for p in missing])
                known.update(_reason_ids(conn, missing))
        out.update({p: known[p] for p in wanted})
        return out

    def reason_paths(self) -> dict[int, str]:
        """Every reason id's path, with `NO_REASON` as ""."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(PROD_REASONS.c.id, PROD_REASONS.c.path))
            return {NO_REASON: ""} | {int(i): str(p) for i, p in rows}

    # -- reason records -------------------------------------------------------------------

    def add_reason_records(self, records: Sequence[ReasonRecord]) -> list[int]:
        """Append `records` in one transaction; their ids, in order. Records without a
        `group_id` get one shared group, new to this call (one operator entry)."""
        if not records:
            return []
        with self.engine.begin() as conn:
            rr = PROD_REASON_RECORDS.c
            group = int(conn.execute(select(func.coalesce(func.max(rr.group_id), 0))).scalar_one())
            rows = [_reason_record_row(r, group + 1) for r in records]
            return insert_numbered(conn, PROD_REASON_RECORDS, rr.id, rows)

    def reason_records(self, assets: str | Sequence[str], window: Interval) -> list[ReasonRecord]:
        """The records overlapping `window` on the assets: a string selects an asset and every
        asset below it, a sequence those assets exactly. Ordered by `entered_us`, then id:
        the order `resolve_overlaps` gives precedence by."""
        rr = PROD_REASON_RECORDS.c
        overlap = and_(rr.start_us < window.end_us, rr.end_us > window.start_us)
        out: list[ReasonRecord] = []
        with self.engine.connect() as conn:
            if isinstance(assets, str):
                selections: list[ColumnElement[bool]] = [subtree(conn, rr.asset, assets)]
            else:
                names = list(dict.fromkeys(assets))
                selections = [rr.asset.in_(part) for part in in_parts(names)]
            for selection in selections:
                stmt = select(PROD_REASON_RECORDS).where(overlap, selection)
                out.extend(_reason_record(row) for row in conn.execute(stmt).mappings())
        out.sort(key=lambda r: (r.entered_us, r.id or 0))
        return out

    # -- count events ---------------------------------------------------------------------

    def add_count_event(self, event: CountEvent) -> int:
        """Record units counted at an instant (an increment, not a counter reading); its id."""
        row = {
            "asset": event.asset,
            "time_us": event.time_us,
            "good": event.good,
            "scrap": event.scrap,
            "comment": event.comment,
            "user_name": event.user,
            "entered_us": event.entered_us,
        }
        with self.engine.begin() as conn:
            (number,) = insert_numbered(conn, PROD_COUNT_EVENTS, PROD_COUNT_EVENTS.c.id, [row])
        return number

    def count_events(self, assets: Sequence[str], window: Interval) -> list[CountEvent]:
        """The events of these assets (exactly) with `window.start_us <= time_us < end_us`,
        in time order."""
        c = PROD_COUNT_EVENTS.c
        out: list[CountEvent] = []
        with self.engine.connect() as conn:
            for part in in_parts(list(dict.fromkeys(assets))):
                stmt = select(PROD_COUNT_EVENTS).where(
                    c.asset.in_(part), c.time_us >= window.start_us, c.time_us < window.end_us
                )
                for row in conn.execute(stmt).mappings():
                    out.append(
                        CountEvent(
                            asset=str(row["asset"]),
                            time_us=int(row["time_us"]),
                            good=float(row["good"]),
                            scrap=float(row["scrap"]),
                            user=str(row["user_name"]),
                            entered_us=int(row["entered_us"]),
                            comment=str(row["comment"]),
                            id=int(row["id"]),
                        )
                    )
        out.sort(key=lambda e: (e.time_us, e.id or 0))
        return out

    # -- products -------------------------------------------------------------------------

    def put_product(self, product: Product, *, updated_us: int | None = None) -> None:
        """Add or replace (by code)."""
        row = {
            "code": product.code,
            "name": product.name,
            "unit": product.unit,
            "ideal_cycle_s": product.ideal_cycle_s,
            "per_asset": dict(product.per_asset),
            "updated_us": self._clock.now_us() if updated_us is None else updated_us,
        }
        with self.engine.begin() as conn:
            upsert(conn, PROD_PRODUCTS, ["code"], [row])

    def products(self) -> list[Product]:
        """Every product, by code."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(PROD_PRODUCTS)).mappings().all()
        # Sorted here, not with ORDER BY: collations differ between databases.
        return sorted((_product(r) for r in rows), key=lambda p: p.code)

    def product(self, code: str) -> Product | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(PROD_PRODUCTS).where(PROD_PRODUCTS.c.code == code))
                .mappings()
                .first()
            )
        return None if row is None else _product(row)

    def delete_product(self, code: str) -> bool:
        """Whether there was one to delete. Orders keep its code."""
        with self.engine.begin() as conn:
            result = conn.execute(delete(PROD_PRODUCTS).where(PROD_PRODUCTS.c.code == code))
        return result.rowcount > 0

    # -- work orders ----------------------------------------------------------------------

    def create_order(self, order: WorkOrder) -> WorkOrder:
        """Store a new order, planned or released; DuplicateOrder if its id is taken."""
        if order.state not in (OrderState.PLANNED, OrderState.RELEASED):
            raise OrderRefused(
                f"work order {order.id} cannot be created {order.state.value}: create it "
                "planned or released, then start it"
            )
        duplicate = DuplicateOrder(
            f"work order {order.id} exists already; give the new order another number"
        )
        o = PROD_ORDERS.c
        try:
            with self.engine.begin() as conn:
                if conn.execute(select(o.id).where(o.id == order.id)).first() is not None:
                    raise duplicate
                conn.execute(insert(PROD_ORDERS), [_order_row(order)])
        except IntegrityError as err:  # created meanwhile by another writer
            raise duplicate from err
        return order

    def order(self, order_id: str) -> WorkOrder | None:
        with self.engine.connect() as conn:
            return _load_order(conn, order_id)

    def orders(
        self,
        line_prefix: str | None = None,
        states: Iterable[OrderState] | None = None,
        limit: int = 1000,
    ) -> list[WorkOrder]:
        """Orders on `line_prefix` or below it, in `states` if given: newest created first,
        at most `limit`."""
        if limit < 1:
            raise ValueError(f"an order query's limit must be 1 or more, got {limit}")
        o = PROD_ORDERS.c
        with self.engine.connect() as conn:
            conditions: list[ColumnElement[bool]] = []
            if line_prefix:
                conditions.append(subtree(conn, o.line, line_prefix))
            if states is not None:
                conditions.append(o.state.in_([OrderState(s).value for s in states]))
            stmt = (
                select(PROD_ORDERS)
                .where(*conditions)
                .order_by(o.created_us.desc(), o.id.desc())
                .limit(limit)
            )
            return [_order(row) for row in conn.execute(stmt).mappings()]

    def apply_order_action(
        self,
        order_id: str,
        action: OrderAction | str,
        time_us: int,
        user: str,
        comment: str = "",
        expected_version: int | None = None,
    ) -> tuple[WorkOrder, OrderEvent]:
        """Carry out `action` at `time_us` in one transaction: the order's new state and
        version, and the event recording it.

        Refused (OrderRefused, nothing written) when the state does not allow the action,
        when starting or resuming while another order runs on the same line, or when
        `time_us` is before the order's last change; OrderConflict when `expected_version`
        is given and the order is at another; UnknownOrder when there is no such order.
        """
        act = OrderAction(action)
        o = PROD_ORDERS.c
        with self.engine.begin() as conn:
            current = _load_order(conn, order_id, lock=True)
            if current is None:
                raise UnknownOrder(f"there is no work order {order_id}")
            if expected_version is not None and current.version != expected_version:
                raise OrderConflict(
                    f"work order {order_id} is at version {current.version}, not "
                    f"{expected_version}: it changed meanwhile; reload it and try again"
                )
            new_state = next_state(current.state, act)
            if time_us < current.updated_us:
                raise OrderRefused(
                    f"cannot {act.value} work order {order_id} at {time_us} µs: it last changed "
                    f"at {current.updated_us} µs; actions are entered in time order"
                )
            if new_state is OrderState.RUNNING:
                running = conn.execute(
                    select(o.id).where(
                        o.line == current.line,
                        o.state == OrderState.RUNNING.value,
                        o.id != order_id,
                    )
                ).first()
                if running is not None:
                    raise OrderRefused(
                        f"cannot {act.value} work order {order_id}: work order {running[0]} "
                        f"is running on {current.line}; pause or complete it first"
                    )
            updated = current.model_copy(
                update={
                    "state": new_state,
                    "updated_us": time_us,
                    "version": current.version + 1,
                }
            )
            result = conn.execute(
                update(PROD_ORDERS)
                .where(o.id == order_id, o.version == current.version)
                .values(state=new_state.value, updated_us=time_us, version=updated.version)
            )
            if result.rowcount != 1:  # another writer got there between our read and write
                raise OrderConflict(f"work order {order_id} changed meanwhile; try again")
            event_row = {
                "order_id": order_id,
                "time_us": time_us,
                "action": act.value,
                "old_state": current.state.value,
                "new_state": new_state.value,
                "user_name": user,
                "comment": comment,
            }
            (seq,) = insert_numbered(conn, PROD_ORDER_EVENTS, PROD_ORDER_EVENTS.c.seq, [event_row])
        event = OrderEvent(
            seq=seq,
            order_id=order_id,
            time_us=time_us,
            action=act,
            old_state=current.state,
            new_state=new_state,
            user=user,
            comment=comment,
        )
        return updated, event

    def order_events(self, order_id: str) -> list[OrderEvent]:
        """The order's events, oldest first: its audit trail."""
        e = PROD_ORDER_EVENTS.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(PROD_ORDER_EVENTS).where(e.order_id == order_id).order_by(e.seq)
            ).mappings()
            return [_order_event(row) for row in rows]

    def order_events_after(self, after: int, limit: int = 500) -> list[OrderEvent]:
        """Every order's events after sequence number `after`, oldest first: what another
        engine follows with a cursor (the value chain books lots when orders pause or end)."""
        e = PROD_ORDER_EVENTS.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(PROD_ORDER_EVENTS).where(e.seq > after).order_by(e.seq).limit(limit)
            ).mappings()
            return [_order_event(row) for row in rows]

    def order_runs(self, assets_or_lines: str | Sequence[str], window: Interval) -> list[OrderRun]:
        """The periods orders were running, overlapping `window` and clipped to it, sorted
        by start. An order counts for a path when its line is the path, lies above it (the
        line of an asset) or below it (a line under an area). A run still open ends at the
        window's end."""
        paths = [assets_or_lines] if isinstance(assets_or_lines, str) else list(assets_or_lines)
        o, e = PROD_ORDERS.c, PROD_ORDER_EVENTS.c
        with self.engine.connect() as conn:
            # The orders on the paths' lines (a line above a path, or one below it) that can
            # have run in the window: changed since its start, or running still. An order's
            # actions come in time order, so one last changed before the window and not
            # running then did not run in it: the work stays with the window, not the history.
            on_paths = or_(
                *(
                    or_(o.line.in_(_ancestors(p)), subtree(conn, o.line, p))
                    for p in dict.fromkeys(paths)
                )
            )
            recent = or_(o.updated_us >= window.start_us, o.state == OrderState.RUNNING.value)
            candidates = {
                str(i): (str(p), str(line))
                for i, p, line in conn.execute(
                    select(o.id, o.product, o.line).where(on_paths, recent)
                )
                if any(path_has_prefix(p_, line) or path_has_prefix(line, p_) for p_ in paths)
            }
            events: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
            for part in in_parts(sorted(candidates)):
                stmt = (
                    select(e.order_id, e.time_us, e.old_state, e.new_state)
                    .where(e.order_id.in_(part), e.time_us < window.end_us)
                    .order_by(e.seq)
                )
                for order_id, time_us, old, new in conn.execute(stmt):
                    events[str(order_id)].append((int(time_us), str(old), str(new)))
        runs: list[OrderRun] = []
        for order_id, changes in events.items():
            product, line = candidates[order_id]
            for run in _running_periods(changes, window.end_us):
                clipped = run.clip(window)
                if clipped is not None:
                    runs.append(OrderRun(order_id, product, line, clipped))
        runs.sort(key=lambda r: (r.interval.start_us, r.order_id))
        return runs

    # -- calendars and the engine's state -------------------------------------------------

    def put_calendar(
        self, site: str, definition: Mapping[str, Any], *, updated_us: int | None = None
    ) -> None:
        """Add or replace a site's calendar (JSON as `kiln.production.calendar` reads it)."""
        row = {
            "site": site,
            "definition": dict(definition),
            "updated_us": self._clock.now_us() if updated_us is None else updated_us,
        }
        with self.engine.begin() as conn:
            upsert(conn, PROD_CALENDARS, ["site"], [row])

    def calendars(self) -> dict[str, Any]:
        """Every site's calendar JSON, by site."""
        c = PROD_CALENDARS.c
        with self.engine.connect() as conn:
            return {str(s): d for s, d in conn.execute(select(c.site, c.definition))}

    def delete_calendar(self, site: str) -> bool:
        """Whether there was one to delete."""
        with self.engine.begin() as conn:
            result = conn.execute(delete(PROD_CALENDARS).where(PROD_CALENDARS.c.site == site))
        return result.rowcount > 0

    def get_kv(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under `key`, or `default`."""
        with self.engine.connect() as conn:
            row = conn.execute(select(PROD_KV.c.value).where(PROD_KV.c.key == key)).first()
        return default if row is None else row[0]

    def put_kv(self, key: str, value: Any) -> None:
        """Store a JSON value under `key`, replacing what was there."""
        with self.engine.begin() as conn:
            upsert(conn, PROD_KV, ["key"], [{"key": key, "value": value}])


# -- chunk reads and merges -----------------------------------------------------------------


def _merge(
    conn: Connection, series: _Series, given: Mapping[tuple[str, ...], np.ndarray]
) -> dict[tuple[str, ...], int]:
    """Merge each series' rows into its chunks (read, merge, write back what changed)."""
    period = series.table.c[series.period]
    changed: dict[tuple[str, ...], int] = {}
    writes: list[dict[str, Any]] = []
    for key, rows in given.items():
        if not len(rows):
            continue
        pieces = dict(chunks.split(rows, series.width_us))
        changed[key] = int(rows["t"].min())
        stored: dict[int, np.ndarray] = {}
        for part in in_parts(sorted(pieces)):
            stmt = select(period, series.table.c.data, series.table.c.n).where(
                series.is_key(key), period.in_(part)
            )
            for start, data, n in conn.execute(stmt):
                stored[int(start)] = chunks.decode(data, int(n), series.dtype)
        for start, piece in pieces.items():
            old = stored.get(start)
            merged = chunks.merge(old if old is not None else piece[:0], piece)
            data = chunks.encode(merged)
            if old is not None and data == chunks.encode(old):
                continue  # a replay of what is stored: nothing to write
            row: dict[str, Any] = dict(zip(series.keys, key, strict=True))
            row.update({series.period: start, "data": data, "n": len(merged)})
            writes.append(row)
    if writes:
        upsert(conn, series.table, [*series.keys, series.period], writes)
    return changed


def _read(
    conn: Connection, series: _Series, keys: Sequence[tuple[str, ...]], window: Interval
) -> dict[tuple[str, ...], np.ndarray]:
    """Each series' rows in `window` with the row carried into it: one query for the chunks in
    the window and one for each series' latest chunk before it, per 500 assets."""
    t = series.table
    period = t.c[series.period]
    first = window.start_us - window.start_us % series.width_us
    wanted = set(keys)
    inside: dict[tuple[str, ...], list[tuple[int, np.ndarray]]] = defaultdict(list)
    before: dict[tuple[str, ...], np.ndarray] = {}
    key_cols = [t.c[k] for k in series.keys]
    for part in in_parts(sorted({k[0] for k in keys})):
        # Other columns of the key (the signal) are picked in Python: a tuple IN list is not
        # portable, and the extra chunks of unasked signals of these assets are few.
        stmt = select(*key_cols, period, t.c.data, t.c.n).where(
            t.c.asset.in_(part), period >= first, period < window.end_us
        )
        for row in conn.execute(stmt).mappings():
            key = series.key_of(row)
            if key in wanted:
                decoded = chunks.decode(row["data"], row["n"], series.dtype)
                inside[key].append((int(row[series.period]), decoded))
        latest = (
            select(*key_cols, func.max(period).label("latest"))
            .where(t.c.asset.in_(part), period < first)
            .group_by(*key_cols)
            .subquery()
        )
        joined = and_(*(t.c[k] == latest.c[k] for k in series.keys), period == latest.c.latest)
        stmt = select(*key_cols, t.c.data, t.c.n).select_from(t.join(latest, joined))
        for row in conn.execute(stmt).mappings():
            key = series.key_of(row)
            if key in wanted:
                before[key] = chunks.decode(row["data"], row["n"], series.dtype)[-1:]
    out: dict[tuple[str, ...], np.ndarray] = {}
    for key in keys:
        pieces = [rows for _, rows in sorted(inside.get(key, []), key=lambda p: p[0])]
        if key in before:
            pieces.insert(0, before[key])
        out[key] = chunks.window(pieces, window.start_us, window.end_us, series.dtype)
    return out


def _last_rows(conn: Connection, series: _Series) -> dict[tuple[str, ...], np.record]:
    """Each series' latest row, from its latest chunk."""
    t = series.table
    period = t.c[series.period]
    key_cols = [t.c[k] for k in series.keys]
    latest = select(*key_cols, func.max(period).label("latest")).group_by(*key_cols).subquery()
    joined = and_(*(t.c[k] == latest.c[k] for k in series.keys), period == latest.c.latest)
    stmt = select(*key_cols, t.c.data, t.c.n).select_from(t.join(latest, joined))
    out: dict[tuple[str, ...], np.record] = {}
    for row in conn.execute(stmt).mappings():
        rows = chunks.decode(row["data"], row["n"], series.dtype).copy()
        out[series.key_of(row)] = cast(np.record, rows.view(np.recarray)[-1])
    return out


# -- orders ---------------------------------------------------------------------------------


def _running_periods(
    changes: Sequence[tuple[int, str, str]], open_end_us: int
) -> Iterator[Interval]:
    """The running periods of one order's events (time, old state, new state), in order: from
    each entry into running to the next exit, an unclosed one to `open_end_us`."""
    since: int | None = None
    running = OrderState.RUNNING.value
    for time_us, old, new in changes:
        if new == running and old != running:
            since = time_us
        elif old == running and new != running and since is not None:
            yield Interval(since, time_us)
            since = None
    if since is not None and since < open_end_us:
        yield Interval(since, open_end_us)


def _load_order(conn: Connection, order_id: str, *, lock: bool = False) -> WorkOrder | None:
    stmt = select(PROD_ORDERS).where(PROD_ORDERS.c.id == order_id)
    if lock:
        stmt = stmt.with_for_update()  # PostgreSQL locks the row; SQLite locks the database
    row = conn.execute(stmt).mappings().first()
    return None if row is None else _order(row)


def _order_row(order: WorkOrder) -> dict[str, Any]:
    return {
        "id": order.id,
        "product": order.product,
        "line": order.line,
        "quantity": order.quantity,
        "state": order.state.value,
        "due_us": order.due_us,
        "created_us": order.created_us,
        "updated_us": order.updated_us,
        "version": order.version,
        "comment": order.comment,
    }


def _order(row: Any) -> WorkOrder:
    return WorkOrder(
        id=row["id"],
        product=row["product"],
        line=row["line"],
        quantity=row["quantity"],
        state=OrderState(row["state"]),
        due_us=row["due_us"],
        created_us=row["created_us"],
        updated_us=row["updated_us"],
        version=row["version"],
        comment=row["comment"],
    )


def _order_event(row: Any) -> OrderEvent:
    return OrderEvent(
        seq=row["seq"],
        order_id=row["order_id"],
        time_us=row["time_us"],
        action=OrderAction(row["action"]),
        old_state=OrderState(row["old_state"]),
        new_state=OrderState(row["new_state"]),
        user=row["user_name"],
        comment=row["comment"],
    )


# -- rows -----------------------------------------------------------------------------------


def _product(row: Any) -> Product:
    return Product(
        code=row["code"],
        name=row["name"],
        unit=row["unit"],
        ideal_cycle_s=row["ideal_cycle_s"],
        per_asset=row["per_asset"],
    )


def _reason_record_row(r: ReasonRecord, group: int) -> dict[str, Any]:
    return {
        "asset": r.asset,
        "start_us": r.start_us,
        "end_us": r.end_us,
        "reason": r.reason,
        "category": r.category.value,
        "comment": r.comment,
        "user_name": r.user,
        "entered_us": r.entered_us,
        "action": r.action,
        "group_id": group if r.group_id is None else r.group_id,
    }


def _reason_record(row: Any) -> ReasonRecord:
    return ReasonRecord(
        asset=row["asset"],
        start_us=row["start_us"],
        end_us=row["end_us"],
        reason=row["reason"],
        category=Category(row["category"]),
        user=row["user_name"],
        entered_us=row["entered_us"],
        action=cast(ReasonAction, row["action"]),
        comment=row["comment"],
        group_id=row["group_id"],
        id=row["id"],
    )


def _reason_ids(conn: Connection, paths: Sequence[str]) -> dict[str, int]:
    r = PROD_REASONS.c
    out: dict[str, int] = {}
    for part in in_parts(list(paths)):
        out.update(
            {str(p): int(i) for p, i in conn.execute(select(r.path, r.id).where(r.path.in_(part)))}
        )
    return out


# -- statements -----------------------------------------------------------------------------


def _ancestors(path: str) -> list[str]:
    """`path` and every path above it: `a/b/c` gives `a`, `a/b`, `a/b/c`."""
    parts = path.rstrip("/").split("/")
    return ["/".join(parts[: n + 1]) for n in range(len(parts))]
