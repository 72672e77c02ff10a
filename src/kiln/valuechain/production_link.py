"""Lots from production: what an order made becomes a lot, and what it used is consumed.

The value chain engine follows production's order events with a cursor (bus command
`order_events` of target `production`, after the last sequence number it booked), so it works
in one process or several, and after a restart it goes on where it stopped. When an order pauses
or completes, the good units production counted for it since the last booking are booked:

1. **Backflush**: each component of the product's bill of materials is consumed into the order:
   `dependent_quantity` of the order's good units so far (rounded up to the component's unit,
   the planning rule 3) less what was consumed for that component into the order already (the
   booking record keeps it). Rounding so happens once for the order, not at every pause, and a
   shortage is taken again at the next booking. It comes from available lots first-in
   first-out: the lots at the line's line-side location first (a location of kind `line_side`
   whose asset path is the line), then any. When there is not enough, what there is is consumed
   and the shortage is recorded (the booking and its event say which component lacked how
   much): production has happened, and the books say so rather than refusing it.
2. **Produce**: a lot `<order>-<n>` of the product holding the new good units, at the line-side
   location (or the line's path), linked to every lot consumed into the order so far. When that
   id is taken (a lot received under it) or longer than a code, its first characters and a
   digest are used instead, as the transactions' ids do: an id always fits and never collides.

Each booking (its transactions, the order's booking record and the cursor) is one database
transaction: a crash before it commits books it again, after it never twice. A product that
master data does not know as a made or finished material is passed over (the cursor moves on).

A booking that is refused (a lot the ledger will not take, an event missing its line) is not
tried forever, nor does it stop the ones after it: it becomes an outbox event
`production_failed` (the order, the event's number and the reason) and the follower's
`last_error` (so the engine's health), and the cursor moves past it. A lost connection or a
write conflict is tried again at the next step, three times before it counts as refused.

Production's event numbers need not commit in order (on PostgreSQL two order actions can commit
the later number first), so a step reads the `OVERLAP` numbers behind the cursor again and
books an event that appeared there late; bookings are idempotent (a booking record says what
was produced, only the difference is booked), and the cursor never moves back.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, select
from sqlalchemy.exc import IntegrityError, OperationalError

from kiln.core.bus import Command, CommandError, NoResponderError
from kiln.valuechain.documents import CURSOR, LOCATION, ORDER_BOOKING, FollowCursor, OrderBooking
from kiln.valuechain.locations import LocationKind
from kiln.valuechain.lots import Consume, Lot, LotState, Produce
from kiln.valuechain.master import MaterialKind
from kiln.valuechain.mrp import dependent_quantity
from kiln.valuechain.schema import CODE_LENGTH, VC_LOT_TRANSACTIONS, VC_LOTS, VC_ORDER_CONSUMPTION

if TYPE_CHECKING:
    from kiln.valuechain.engine import ValuechainEngine
    from kiln.valuechain.store import ValuechainStore

_LOGGER = logging.getLogger(__name__)

PRODUCTION_TARGET = "production"
CURSOR_NAME = "production-order-events"
BATCH = 200
# Sequence numbers behind the cursor read again every step: production's events can commit out
# of their numbers' order (PostgreSQL), so one numbered below the cursor may appear late.
OVERLAP = 100
assert OVERLAP < BATCH  # a full batch always holds new events: `run` reads on while it is full
# Tries of an event whose booking meets a database conflict or a lost connection.
ATTEMPTS = 3
_TRANSIENT = (OperationalError, IntegrityError)
_TX_ID = VC_LOT_TRANSACTIONS.c.id
_MADE = (MaterialKind.MADE, MaterialKind.FINISHED)
_BOOKED_STATES = ("paused", "completed")


def _units(value: Any) -> Decimal | None:
    """A count from production (a float of whole units, normally) as an exact decimal."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    # Whole units as an integer's decimal ("80", never "8E+1" or "80.0").
    return Decimal(int(number)) if number == number.to_integral_value() else number


class ProductionFollower:
    """Reads production's order events and books their lots (see the module docstring)."""

    def __init__(self, engine: ValuechainEngine) -> None:
        self.engine = engine
        self.booked = 0
        self.skipped = 0
        self.failed = 0
        self._follow_error: str | None = None
        self._booking_error: str | None = None
        # The sequence numbers in the window behind the cursor already read by this process:
        # the window is read again every step, but only an event that appeared late is booked.
        self._seen: set[int] = set()
        self._attempts: dict[int, int] = {}

    @property
    def last_error(self) -> str | None:
        """Why following production fails now, else the last booking that failed (until a
        booking succeeds again): the engine's health shows it."""
        return self._follow_error or self._booking_error

    async def run(self) -> None:
        while True:
            try:
                while await self.step() == BATCH:
                    pass  # a full batch: more may wait
                self._follow_error = None
            except (NoResponderError, TimeoutError):
                pass  # production is not running (yet): nothing to follow
            except CommandError as err:
                self._follow_error = f"following production: {err}"
                _LOGGER.warning("Value chain: %s", self._follow_error)
            except Exception as err:
                # The task outlives any one failure. The store unreachable, a reply of the wrong shape: tried again next time.
                self._follow_error = f"following production: {err!r}"
                _LOGGER.exception("Value chain: following production failed")
            await asyncio.sleep(self.engine.settings.follow_production_s)

    async def step(self) -> int:
        """Book what production reported since the cursor, and what appeared late in the
        window behind it; how many events were read."""
        e = self.engine
        store = e.store
        cursor = await e.read(lambda: store.document(CURSOR, CURSOR_NAME))
        done = cursor.doc.seq if cursor is not None else 0
        after = max(0, done - OVERLAP)
        reply = await e.platform.bus.request(
            Command(
                PRODUCTION_TARGET,
                "order_events",
                {"after": after, "limit": BATCH, "progress": True},
            ),
            timeout_s=10.0,
        )
        events = list(reply.get("events", []))
        self._seen = {s for s in self._seen if s > after}
        for event in events:
            seq = int(event["seq"])
            if seq in self._seen:
                continue
            await self._attempt(store, event, seq)
            self._seen.add(seq)
        return len(events)

    async def _attempt(self, store: ValuechainStore, event: Mapping[str, Any], seq: int) -> None:
        """Book one event; a booking that fails is recorded and passed over (the cursor moves
        on), so one bad event never stops the ones after it."""
        e = self.engine
        try:
            await e.write(functools.partial(self._book, store, event, seq))
        except _TRANSIENT as err:
            # A lost connection or a concurrent writer: the same event is tried again next
            # step (the cursor did not move), a few times before it counts as failed.
            self._attempts[seq] = self._attempts.get(seq, 0) + 1
            if self._attempts[seq] < ATTEMPTS:
                raise
            self._attempts.pop(seq, None)
            await e.write(functools.partial(self._record_failure, store, event, seq, err))
        except Exception as err:  # a refusal, a bad event: the same every time it is read
            await e.write(functools.partial(self._record_failure, store, event, seq, err))
        else:
            self._attempts.pop(seq, None)

    def _book(self, store: ValuechainStore, event: Mapping[str, Any], seq: int) -> None:
        """One event: its booking (if it reports new good units) and the cursor, together.
        Raises whatever refuses the booking, with nothing written."""
        order = event.get("order")
        good = _units(event.get("good"))
        with store.engine.begin() as conn:
            _advance(store, conn, seq)
            if (
                event.get("new_state") not in _BOOKED_STATES
                or not isinstance(order, Mapping)
                or good is None
            ):
                return
            order_id = str(order["id"])
            found = store.document_in(conn, ORDER_BOOKING, order_id, lock=True)
            booking = found.doc if found is not None else OrderBooking(order_id=order_id)
            new = good - booking.produced
            if new <= 0:
                return  # booked already (an event read again, or a later one's total)
            master = store.master_data()
            material = master.by_code().get(str(order["product"]))
            if material is None or material.kind not in _MADE:
                self.skipped += 1
                return
            line = str(order["line"])
            place = _line_side(store, line)
            n = booking.lots + 1
            time_us = int(event.get("time_us") or self.engine.now_us())
            consumed = _consumed_so_far(conn, booking)
            shortages: list[str] = []
            bom = master.bom_of().get(material.code)
            by_code = master.by_code()
            for i, bom_line in enumerate(bom.lines if bom is not None else ()):
                component = by_code[bom_line.component]
                # The need of all the order's good units so far, less what went in already:
                # rounded up once for the order, and a shortage is taken again next time.
                total = dependent_quantity(
                    good,
                    bom_line.quantity,
                    bom.output_quantity if bom is not None else Decimal(1),
                    bom_line.scrap_percent,
                    component.decimals,
                )
                need = total - consumed.get(component.code, Decimal(0))
                for j, (lot, take) in enumerate(_pick(store, component.code, need, place)):
                    store.apply_in(
                        conn,
                        Consume(
                            id=_free_id(conn, _TX_ID, f"bf-{order_id}-{n}-{i}-{j}"),
                            time_us=time_us,
                            user="production",
                            lot_id=lot.id,
                            quantity=take,
                            order_id=order_id,
                        ),
                    )
                    need -= take
                    consumed[component.code] = consumed.get(component.code, Decimal(0)) + take
                if need > 0:
                    shortages.append(f"{component.code} {need}")
            lot_id = _free_id(conn, VC_LOTS.c.id, f"{order_id}-{n}")
            store.apply_in(
                conn,
                Produce(
                    id=_free_id(conn, _TX_ID, f"pr-{order_id}-{n}"),
                    time_us=time_us,
                    user="production",
                    lot_id=lot_id,
                    material=material.code,
                    quantity=new,
                    unit=material.unit,
                    location=place or line,
                    order_id=order_id,
                ),
            )
            store.put_in(
                conn,
                ORDER_BOOKING,
                OrderBooking(
                    order_id=order_id,
                    produced=good,
                    lots=n,
                    shortages=(*booking.shortages, *shortages),
                    consumed=consumed,
                ),
            )
            store.emit(
                conn,
                "production",
                order_id,
                {
                    "order": order_id,
                    "lot": lot_id,
                    "material": material.code,
                    "quantity": str(new),
                    "shortages": shortages,
                },
            )
            self.booked += 1
            self._booking_error = None

    def _record_failure(
        self, store: ValuechainStore, event: Mapping[str, Any], seq: int, err: BaseException
    ) -> None:
        """A booking that failed: an outbox event `production_failed` saying which order and
        why, and the cursor past it, in one transaction; once per event, even when read
        again in the window behind the cursor."""
        order = event.get("order")
        order_id = str(order.get("id")) if isinstance(order, Mapping) else None
        # A refusal's message says why; another error (a KeyError: 'line') needs its name.
        reason = str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}"
        with store.engine.begin() as conn:
            cursor = _advance(store, conn, seq)
            if seq in cursor.failed:
                return  # recorded when it was first read
            store.put_in(
                conn,
                CURSOR,
                cursor.model_copy(update={"failed": (*cursor.failed, seq)}),
            )
            store.emit(
                conn,
                "production_failed",
                order_id or f"event-{seq}",
                {"order": order_id, "seq": seq, "state": event.get("new_state"), "reason": reason},
            )
        self.failed += 1
        self._booking_error = f"booking production order {order_id} (event {seq}) failed: {reason}"
        _LOGGER.warning("Value chain: %s", self._booking_error)


def _advance(store: ValuechainStore, conn: Connection, seq: int) -> FollowCursor:
    """The cursor moved to `seq` if that is further (never back: an event read again in the
    window behind it leaves it), forgetting failures that fell out of that window."""
    found = store.document_in(conn, CURSOR, CURSOR_NAME, lock=True)
    cursor = found.doc if found is not None else FollowCursor(name=CURSOR_NAME, seq=0)
    if seq <= cursor.seq:
        return cursor
    moved = FollowCursor(
        name=CURSOR_NAME, seq=seq, failed=tuple(s for s in cursor.failed if s > seq - OVERLAP)
    )
    store.put_in(conn, CURSOR, moved)
    return moved


def _free_id(conn: Connection, column: ColumnElement[str], plain: str) -> str:
    """`plain` if it fits in a code and `column` does not hold it yet; otherwise its first
    characters and a digest of it (and of a try number, should that be taken too). The
    digest keeps ids that a cut would make equal apart."""
    if len(plain) <= CODE_LENGTH and not _taken(conn, column, plain):
        return plain
    for attempt in range(100):
        digest = hashlib.sha256(f"{plain}#{attempt}".encode()).hexdigest()[:16]
        candidate = f"{plain[: CODE_LENGTH - 17]}-{digest}"
        if not _taken(conn, column, candidate):
            return candidate
    raise LookupError(f"no free id for {plain!r}")  # a hundred digests taken: not by chance


def _taken(conn: Connection, column: ColumnElement[str], value: str) -> bool:
    return conn.execute(select(column).where(column == value).limit(1)).first() is not None


def _consumed_so_far(conn: Connection, booking: OrderBooking) -> dict[str, Decimal]:
    """Component -> quantity backflushed into the order. A booking stored before it kept
    that (no `consumed` in it) takes it from the order's consumption in the ledger."""
    if "consumed" in booking.model_fields_set or booking.lots == 0:
        return dict(booking.consumed)
    c, lots = VC_ORDER_CONSUMPTION.c, VC_LOTS.c
    rows = conn.execute(
        select(lots.material, c.quantity)
        .join(VC_LOTS, lots.id == c.lot_id)
        .where(c.order_id == booking.order_id)
    ).all()
    out: dict[str, Decimal] = {}
    for material, quantity in rows:
        out[material] = out.get(material, Decimal(0)) + Decimal(quantity)
    return out


def _line_side(store: ValuechainStore, line: str) -> str | None:
    """The code of the line's line-side location, if master data has one."""
    for found in store.documents(LOCATION, limit=100_000):
        loc = found.doc
        if loc.kind is LocationKind.LINE_SIDE and loc.asset_path == line:
            return loc.code
    return None


def _pick(
    store: ValuechainStore, material: str, need: Decimal, place: str | None
) -> list[tuple[Lot, Decimal]]:
    """Available lots of `material` to consume `need` from, first in first out, the ones at
    `place` first; each with the quantity to take (the lot's all, or the rest of the need)."""
    if need <= 0:
        return []
    lots = store.lots(material=material, states=[LotState.AVAILABLE], limit=5000)
    lots.sort(key=lambda lot: (lot.location != place, lot.created_us, lot.id))
    out: list[tuple[Lot, Decimal]] = []
    for lot in lots:
        if need <= 0:
            break
        take = min(lot.quantity, need)
        if take > 0:
            out.append((lot, take))
            need -= take
    return out
