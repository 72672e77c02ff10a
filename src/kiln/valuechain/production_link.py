"""Lots from production: what an order made becomes a lot, and what it used is consumed.

The value chain engine follows production's order events with a cursor (bus command
`order_events` of target `production`, after the last sequence number it booked), so it works
in one process or several, and after a restart it goes on where it stopped. When an order pauses
or completes, the good units production counted for it since the last booking are booked:

1. **Backflush**: each component of the product's bill of materials is consumed into the order,
   `dependent_quantity(good, line, output, scrap)` of it (rounded up to the component's unit, the
   planning rule 3), from available lots first-in first-out: the lots at the line's line-side
   location first (a location of kind `line_side` whose asset path is the line), then any. When
   there is not enough, what there is is consumed and the shortage is recorded (the booking and
   its event say which component lacked how much): production has happened, and the books say
   so rather than refusing it.
2. **Produce**: a lot `<order>-<n>` of the product holding the new good units, at the line-side
   location (or the line's path), linked to every lot consumed into the order so far.

Each booking (its transactions, the order's booking record and the cursor) is one database
transaction: a crash before it commits books it again, after it never twice. A product that
master data does not know as a made or finished material is passed over (the cursor moves on).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from kiln.core.bus import Command, CommandError, NoResponderError
from kiln.valuechain.documents import CURSOR, LOCATION, ORDER_BOOKING, FollowCursor, OrderBooking
from kiln.valuechain.locations import LocationKind
from kiln.valuechain.lots import Consume, Lot, LotState, Produce
from kiln.valuechain.master import MaterialKind
from kiln.valuechain.mrp import dependent_quantity

if TYPE_CHECKING:
    from kiln.valuechain.engine import ValuechainEngine
    from kiln.valuechain.store import ValuechainStore

_LOGGER = logging.getLogger(__name__)

PRODUCTION_TARGET = "production"
CURSOR_NAME = "production-order-events"
BATCH = 200
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
        self.last_error: str | None = None

    async def run(self) -> None:
        while True:
            try:
                while await self.step() == BATCH:
                    pass  # a full batch: more may wait
                self.last_error = None
            except (NoResponderError, TimeoutError):
                pass  # production is not running (yet): nothing to follow
            except CommandError as err:
                self.last_error = f"following production: {err}"
                _LOGGER.warning("Value chain: %s", self.last_error)
            await asyncio.sleep(self.engine.settings.follow_production_s)

    async def step(self) -> int:
        """Book what production reported since the cursor; how many events were read."""
        e = self.engine
        store = e.store
        cursor = await e.read(lambda: store.document(CURSOR, CURSOR_NAME))
        after = cursor.doc.seq if cursor is not None else 0
        reply = await e.platform.bus.request(
            Command(
                PRODUCTION_TARGET,
                "order_events",
                {"after": after, "limit": BATCH, "progress": True},
            ),
            timeout_s=10.0,
        )
        events = list(reply.get("events", []))
        for event in events:
            seq = int(event["seq"])
            await e.write(functools.partial(self._book, store, event, seq))
        return len(events)

    def _book(self, store: ValuechainStore, event: Mapping[str, Any], seq: int) -> None:
        """One event: its booking (if it reports new good units) and the cursor, together."""
        order = event.get("order")
        good = _units(event.get("good"))
        with store.engine.begin() as conn:
            store.put_in(conn, CURSOR, FollowCursor(name=CURSOR_NAME, seq=seq))
            if (
                event.get("new_state") not in _BOOKED_STATES
                or not isinstance(order, Mapping)
                or good is None
            ):
                return
            order_id = str(order["id"])
            master = store.master_data()
            material = master.by_code().get(str(order["product"]))
            if material is None or material.kind not in _MADE:
                self.skipped += 1
                return
            found = store.document(ORDER_BOOKING, order_id)
            booking = found.doc if found is not None else OrderBooking(order_id=order_id)
            new = good - booking.produced
            if new <= 0:
                return
            line = str(order["line"])
            place = _line_side(store, line)
            n = booking.lots + 1
            time_us = int(event.get("time_us") or self.engine.now_us())
            shortages = list(booking.shortages)
            bom = master.bom_of().get(material.code)
            by_code = master.by_code()
            for i, bom_line in enumerate(bom.lines if bom is not None else ()):
                component = by_code[bom_line.component]
                need = dependent_quantity(
                    new,
                    bom_line.quantity,
                    bom.output_quantity if bom is not None else Decimal(1),
                    bom_line.scrap_percent,
                    component.decimals,
                )
                for j, (lot, take) in enumerate(_pick(store, component.code, need, place)):
                    store.apply_in(
                        conn,
                        Consume(
                            id=f"bf-{order_id}-{n}-{i}-{j}"[:64],
                            time_us=time_us,
                            user="production",
                            lot_id=lot.id,
                            quantity=take,
                            order_id=order_id,
                        ),
                    )
                    need -= take
                if need > 0:
                    shortages.append(f"{component.code} {need}")
            lot_id = f"{order_id}-{n}"[:64]
            store.apply_in(
                conn,
                Produce(
                    id=f"pr-{order_id}-{n}"[:64],
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
                OrderBooking(order_id=order_id, produced=good, lots=n, shortages=tuple(shortages)),
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
                    "shortages": shortages[len(booking.shortages) :],
                },
            )
            self.booked += 1


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
