"""Sales orders and purchase orders: their lines, shipments and goods receipts, and the life of
each order as a pure state machine.

A **sales order** moves only along this table; anything else is refused with the actions its
state allows:

    draft  --confirm-->  confirmed  --start_production-->  in_production
    confirmed, in_production  --ship-->  shipped  --close-->  closed
    confirmed, in_production  --close-->  closed        (short: the rest is not delivered)
    draft, confirmed, in_production  --cancel-->  cancelled

`ship()` records a shipment on one line; the order takes the *ship* action when its last line is
fully shipped, and only then (the action is refused while a line is open). Once something has
shipped the order can no longer be cancelled, only closed; closing short an order with nothing
shipped is refused too (that is a cancel), so the two final states always mean what they say.

A **purchase order**:

    draft  --send-->  sent  --confirm-->  confirmed
    sent, confirmed, partially_received  --receive_part-->  partially_received
    sent, confirmed, partially_received  --receive_all-->   received
    partially_received, received  --close-->  closed    (from partially_received: closed short)
    draft, sent, confirmed  --cancel-->  cancelled

`receive()` books a goods receipt on one line and takes *receive_all* when every line has
received at least its ordered quantity, else *receive_part*. Goods may arrive before the
supplier confirmed (sent). A line may receive more than ordered only within a tolerance percent
given to `receive()` (0 by default: never). Once received the order takes no more receipts.

Quantities are exact decimals (`kiln.valuechain.lots`): shipped and received sums are computed
in a context that raises rather than rounds.

**Open quantities for planning**: a purchase line's open quantity is what it ordered less what
it received, never below zero; purchase orders count once sent (a draft has not been ordered)
and until received, closed or cancelled. A sales line's open demand is what it ordered less what
shipped; sales orders count while confirmed or in production (a draft is a quote). The helpers
sum them by material and day, and give them as `kiln.valuechain.mrp` inputs.

Pure: no I/O, no clock: every function returns a new frozen order.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from decimal import Context, Decimal, Inexact, InvalidOperation, Rounded, localcontext
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from kiln.valuechain.lots import Code, Quantity, add, sub
from kiln.valuechain.mrp import Demand, OpenSupply, OrderKind

# Products of quantities are exact too (see `kiln.valuechain.lots`): any rounding raises.
_EXACT = Context(prec=40, traps=[Inexact, Rounded, InvalidOperation])


def _day(value: object) -> object:
    """A date as a date or ISO text ("2026-03-16"): pydantic would also take a number of
    seconds since 1970 for one, which no one sending an order means."""
    if not isinstance(value, (dt.date, str)):
        raise ValueError("a date must be written YYYY-MM-DD")
    return value


Day = Annotated[dt.date, BeforeValidator(_day)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TradeRefused(ValueError):
    """An action, shipment or receipt the order does not allow; the message says why."""


# -- sales orders ------------------------------------------------------------------------------


class SalesState(StrEnum):
    DRAFT = "draft"
    CONFIRMED = "confirmed"
    IN_PRODUCTION = "in_production"
    SHIPPED = "shipped"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class SalesAction(StrEnum):
    CONFIRM = "confirm"
    START_PRODUCTION = "start_production"
    SHIP = "ship"
    CLOSE = "close"
    CANCEL = "cancel"


SALES_TRANSITIONS: dict[tuple[SalesState, SalesAction], SalesState] = {
    (SalesState.DRAFT, SalesAction.CONFIRM): SalesState.CONFIRMED,
    (SalesState.CONFIRMED, SalesAction.START_PRODUCTION): SalesState.IN_PRODUCTION,
    (SalesState.CONFIRMED, SalesAction.SHIP): SalesState.SHIPPED,
    (SalesState.IN_PRODUCTION, SalesAction.SHIP): SalesState.SHIPPED,
    (SalesState.SHIPPED, SalesAction.CLOSE): SalesState.CLOSED,
    (SalesState.CONFIRMED, SalesAction.CLOSE): SalesState.CLOSED,
    (SalesState.IN_PRODUCTION, SalesAction.CLOSE): SalesState.CLOSED,
    (SalesState.DRAFT, SalesAction.CANCEL): SalesState.CANCELLED,
    (SalesState.CONFIRMED, SalesAction.CANCEL): SalesState.CANCELLED,
    (SalesState.IN_PRODUCTION, SalesAction.CANCEL): SalesState.CANCELLED,
}

# The states in which goods may leave against the order.
_SHIPPABLE = frozenset({SalesState.CONFIRMED, SalesState.IN_PRODUCTION})
_OPEN_SALES = _SHIPPABLE


class Shipment(_Frozen):
    """`quantity` of a line left for the customer on `date` in shipment `id`."""

    id: Code
    quantity: Quantity
    date: Day


class SalesLine(_Frozen):
    line_no: int = Field(strict=True, ge=1)
    material: Code
    quantity: Quantity
    due: Day = Field(description="when the customer wants it")
    promised: Day | None = Field(default=None, description="when we said it will ship")
    shipments: tuple[Shipment, ...] = ()

    @property
    def shipped(self) -> Decimal:
        return add(*(s.quantity for s in self.shipments))

    @property
    def open(self) -> Decimal:
        """Ordered less shipped."""
        return sub(self.quantity, self.shipped)

    @model_validator(mode="after")
    def _not_over_shipped(self) -> Self:
        if self.shipped > self.quantity:
            raise ValueError(
                f"line {self.line_no} ships {self.shipped}, more than its {self.quantity} ordered"
            )
        return self


class SalesOrder(_Frozen):
    """A customer's order (`customer` is an organisation code) with its lines."""

    id: Code
    customer: Code
    lines: tuple[SalesLine, ...] = Field(min_length=1)
    state: SalesState = SalesState.DRAFT

    @model_validator(mode="after")
    def _check(self) -> Self:
        _distinct_lines(self.id, [line.line_no for line in self.lines])
        ids = [s.id for line in self.lines for s in line.shipments]
        if len(set(ids)) != len(ids):
            raise ValueError(f"sales order {self.id!r} records a shipment id twice")
        return self

    def line(self, line_no: int) -> SalesLine:
        """Line `line_no`; TradeRefused naming the lines there are if there is none."""
        for line in self.lines:
            if line.line_no == line_no:
                return line
        there = ", ".join(str(line.line_no) for line in self.lines)
        raise TradeRefused(f"sales order {self.id!r} has no line {line_no}; its lines: {there}")

    @property
    def shipped_anything(self) -> bool:
        return any(line.shipments for line in self.lines)

    @property
    def fully_shipped(self) -> bool:
        return all(line.open == 0 for line in self.lines)


def sales_allowed_actions(state: SalesState) -> tuple[SalesAction, ...]:
    """The actions a sales order in `state` accepts, in the table's order."""
    return tuple(action for (s, action) in SALES_TRANSITIONS if s is state)


def sales_next_state(state: SalesState, action: SalesAction) -> SalesState:
    """The state `action` takes a sales order in `state` to; TradeRefused if it may not."""
    try:
        return SALES_TRANSITIONS[(state, action)]
    except KeyError:
        raise TradeRefused(
            _refusal("a sales order", state, action, sales_allowed_actions(state))
        ) from None


def act_sales(order: SalesOrder, action: SalesAction) -> SalesOrder:
    """`order` after `action`, checked against the table and against what has shipped."""
    new_state = sales_next_state(order.state, action)
    if action is SalesAction.SHIP and not order.fully_shipped:
        open_lines = ", ".join(
            f"line {line.line_no} ({line.open} open)" for line in order.lines if line.open
        )
        raise TradeRefused(
            f"cannot mark sales order {order.id!r} shipped: {open_lines}; ship() them first"
        )
    if action is SalesAction.CANCEL and order.shipped_anything:
        raise TradeRefused(
            f"cannot cancel sales order {order.id!r}: goods have shipped against it; close it"
        )
    if action is SalesAction.CLOSE and not order.shipped_anything:
        raise TradeRefused(
            f"cannot close sales order {order.id!r}: nothing has shipped against it; cancel it"
        )
    return order.model_copy(update={"state": new_state})


def ship(
    order: SalesOrder, line_no: int, quantity: Decimal, date: dt.date, shipment_id: str
) -> SalesOrder:
    """`order` with `quantity` of line `line_no` shipped on `date` as `shipment_id`; shipped
    when it was the last open quantity. TradeRefused if the order's state does not ship, the
    line is unknown, or the line would ship more than it ordered."""
    if order.state not in _SHIPPABLE:
        raise TradeRefused(
            f"cannot ship against sales order {order.id!r}: it is {order.state.value};"
            " only confirmed or in-production orders ship"
        )
    line = order.line(line_no)
    shipment = Shipment(id=shipment_id, quantity=quantity, date=date)
    if any(s.id == shipment.id for ln in order.lines for s in ln.shipments):
        raise TradeRefused(f"shipment {shipment.id!r} is already recorded on {order.id!r}")
    if shipment.quantity > line.open:
        raise TradeRefused(
            f"cannot ship {shipment.quantity} on line {line_no} of {order.id!r}: it ordered"
            f" {line.quantity} and has shipped {line.shipped}, so {line.open} is open"
        )
    new_line = line.model_copy(update={"shipments": (*line.shipments, shipment)})
    lines = tuple(new_line if ln.line_no == line_no else ln for ln in order.lines)
    shipped = order.model_copy(update={"lines": lines})
    return act_sales(shipped, SalesAction.SHIP) if shipped.fully_shipped else shipped


# -- purchase orders ---------------------------------------------------------------------------


class PurchaseState(StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    CONFIRMED = "confirmed"
    PARTIALLY_RECEIVED = "partially_received"
    RECEIVED = "received"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class PurchaseAction(StrEnum):
    SEND = "send"
    CONFIRM = "confirm"
    RECEIVE_PART = "receive_part"
    RECEIVE_ALL = "receive_all"
    CLOSE = "close"
    CANCEL = "cancel"


PURCHASE_TRANSITIONS: dict[tuple[PurchaseState, PurchaseAction], PurchaseState] = {
    (PurchaseState.DRAFT, PurchaseAction.SEND): PurchaseState.SENT,
    (PurchaseState.SENT, PurchaseAction.CONFIRM): PurchaseState.CONFIRMED,
    (PurchaseState.SENT, PurchaseAction.RECEIVE_PART): PurchaseState.PARTIALLY_RECEIVED,
    (PurchaseState.CONFIRMED, PurchaseAction.RECEIVE_PART): PurchaseState.PARTIALLY_RECEIVED,
    (
        PurchaseState.PARTIALLY_RECEIVED,
        PurchaseAction.RECEIVE_PART,
    ): PurchaseState.PARTIALLY_RECEIVED,
    (PurchaseState.SENT, PurchaseAction.RECEIVE_ALL): PurchaseState.RECEIVED,
    (PurchaseState.CONFIRMED, PurchaseAction.RECEIVE_ALL): PurchaseState.RECEIVED,
    (PurchaseState.PARTIALLY_RECEIVED, PurchaseAction.RECEIVE_ALL): PurchaseState.RECEIVED,
    (PurchaseState.PARTIALLY_RECEIVED, PurchaseAction.CLOSE): PurchaseState.CLOSED,
    (PurchaseState.RECEIVED, PurchaseAction.CLOSE): PurchaseState.CLOSED,
    (PurchaseState.DRAFT, PurchaseAction.CANCEL): PurchaseState.CANCELLED,
    (PurchaseState.SENT, PurchaseAction.CANCEL): PurchaseState.CANCELLED,
    (PurchaseState.CONFIRMED, PurchaseAction.CANCEL): PurchaseState.CANCELLED,
}

_OPEN_PURCHASE = frozenset(
    {PurchaseState.SENT, PurchaseState.CONFIRMED, PurchaseState.PARTIALLY_RECEIVED}
)
_RECEIVE_ACTIONS = frozenset({PurchaseAction.RECEIVE_PART, PurchaseAction.RECEIVE_ALL})


class GoodsReceipt(_Frozen):
    """`quantity` of line `line_no` of purchase order `po_id` arrived on `date` as lot `lot_id`."""

    po_id: Code
    line_no: int = Field(strict=True, ge=1)
    quantity: Quantity
    date: Day
    lot_id: Code


class PurchaseLine(_Frozen):
    line_no: int = Field(strict=True, ge=1)
    material: Code
    quantity: Quantity
    promised: Day = Field(description="when the supplier promised it")
    receipts: tuple[GoodsReceipt, ...] = ()

    @property
    def received(self) -> Decimal:
        return add(*(r.quantity for r in self.receipts))

    @property
    def open(self) -> Decimal:
        """Ordered less received, never below zero (an over-receipt within tolerance)."""
        return max(sub(self.quantity, self.received), Decimal(0))


class PurchaseOrder(_Frozen):
    """An order to supplier `supplier` (an organisation code) with its lines and receipts."""

    id: Code
    supplier: Code
    lines: tuple[PurchaseLine, ...] = Field(min_length=1)
    state: PurchaseState = PurchaseState.DRAFT

    @model_validator(mode="after")
    def _check(self) -> Self:
        _distinct_lines(self.id, [line.line_no for line in self.lines])
        lots: set[str] = set()
        for line in self.lines:
            for r in line.receipts:
                if r.po_id != self.id or r.line_no != line.line_no:
                    raise ValueError(
                        f"line {line.line_no} of purchase order {self.id!r} holds a receipt"
                        f" for {r.po_id!r} line {r.line_no}"
                    )
                if r.lot_id in lots:
                    raise ValueError(f"purchase order {self.id!r} receives lot {r.lot_id!r} twice")
                lots.add(r.lot_id)
        return self

    def line(self, line_no: int) -> PurchaseLine:
        """Line `line_no`; TradeRefused naming the lines there are if there is none."""
        for line in self.lines:
            if line.line_no == line_no:
                return line
        there = ", ".join(str(line.line_no) for line in self.lines)
        raise TradeRefused(f"purchase order {self.id!r} has no line {line_no}; its lines: {there}")

    @property
    def fully_received(self) -> bool:
        return all(line.received >= line.quantity for line in self.lines)


def purchase_allowed_actions(state: PurchaseState) -> tuple[PurchaseAction, ...]:
    """The actions a purchase order in `state` accepts, in the table's order."""
    return tuple(action for (s, action) in PURCHASE_TRANSITIONS if s is state)


def purchase_next_state(state: PurchaseState, action: PurchaseAction) -> PurchaseState:
    """The state `action` takes a purchase order in `state` to; TradeRefused if it may not."""
    try:
        return PURCHASE_TRANSITIONS[(state, action)]
    except KeyError:
        raise TradeRefused(
            _refusal("a purchase order", state, action, purchase_allowed_actions(state))
        ) from None


def act_purchase(order: PurchaseOrder, action: PurchaseAction) -> PurchaseOrder:
    """`order` after `action` (send, confirm, close, cancel). The receive actions are taken by
    `receive()` from the quantities, never asked for directly."""
    new_state = purchase_next_state(order.state, action)
    if action in _RECEIVE_ACTIONS:
        raise TradeRefused(f"{action.value} follows from a goods receipt: use receive()")
    return order.model_copy(update={"state": new_state})


def receive(
    order: PurchaseOrder, receipt: GoodsReceipt, *, tolerance_percent: Decimal = Decimal(0)
) -> PurchaseOrder:
    """`order` with `receipt` booked, partially_received or received by the quantities.

    TradeRefused if the receipt is for another order or an unknown line, its lot was already
    received on this order, the state takes no receipt, or the line would then have received
    more than ordered plus `tolerance_percent` of it."""
    if not Decimal(0) <= tolerance_percent <= Decimal(100):
        raise ValueError("tolerance_percent must be between 0 and 100")
    if receipt.po_id != order.id:
        raise TradeRefused(f"receipt is for purchase order {receipt.po_id!r}, not {order.id!r}")
    line = order.line(receipt.line_no)
    if any(r.lot_id == receipt.lot_id for ln in order.lines for r in ln.receipts):
        raise TradeRefused(f"lot {receipt.lot_id!r} is already received on {order.id!r}")
    # The state check first names the actions the order allows; the action itself follows
    # from the quantities below, and either receive action is allowed in the same states.
    purchase_next_state(order.state, PurchaseAction.RECEIVE_PART)
    total = add(line.received, receipt.quantity)
    with localcontext(_EXACT):
        # received * 100 <= ordered * (100 + tolerance): no division, so nothing to round.
        over = total * 100 > line.quantity * (100 + tolerance_percent)
    if over:
        limit = f" plus the {tolerance_percent}% tolerance" if tolerance_percent else ""
        raise TradeRefused(
            f"cannot receive {receipt.quantity} on line {line.line_no} of {order.id!r}: it"
            f" ordered {line.quantity}{limit} and has received {line.received}; that would be"
            f" {total}"
        )
    new_line = line.model_copy(update={"receipts": (*line.receipts, receipt)})
    lines = tuple(new_line if ln.line_no == line.line_no else ln for ln in order.lines)
    booked = order.model_copy(update={"lines": lines})
    action = PurchaseAction.RECEIVE_ALL if booked.fully_received else PurchaseAction.RECEIVE_PART
    return booked.model_copy(update={"state": purchase_next_state(order.state, action)})


# -- open quantities for planning --------------------------------------------------------------


def open_quantity(line: SalesLine | PurchaseLine) -> Decimal:
    """What a line still has to ship or receive (never below zero)."""
    return max(line.open, Decimal(0))


def open_purchase_quantities(
    orders: Iterable[PurchaseOrder],
) -> dict[tuple[str, dt.date], Decimal]:
    """Open purchase quantity by (material, promised date), over the open orders."""
    totals: dict[tuple[str, dt.date], Decimal] = defaultdict(Decimal)
    for order in orders:
        if order.state in _OPEN_PURCHASE:
            for line in order.lines:
                if line.open:
                    key = (line.material, line.promised)
                    totals[key] = add(totals[key], line.open)
    return dict(totals)


def open_sales_demand(orders: Iterable[SalesOrder]) -> dict[tuple[str, dt.date], Decimal]:
    """Open sales demand by (material, due date), over the open orders."""
    totals: dict[tuple[str, dt.date], Decimal] = defaultdict(Decimal)
    for order in orders:
        if order.state in _OPEN_SALES:
            for line in order.lines:
                if line.open:
                    key = (line.material, line.due)
                    totals[key] = add(totals[key], line.open)
    return dict(totals)


def open_supply(orders: Iterable[PurchaseOrder]) -> list[OpenSupply]:
    """The open purchase lines as planning's open supply, one per line, id "<order>/<line>"."""
    return [
        OpenSupply(
            id=f"{order.id}/{line.line_no}",
            kind=OrderKind.PURCHASE_ORDER,
            material=line.material,
            quantity=line.open,
            due=line.promised,
        )
        for order in orders
        if order.state in _OPEN_PURCHASE
        for line in order.lines
        if line.open
    ]


def sales_demands(orders: Iterable[SalesOrder]) -> list[Demand]:
    """The open sales lines as planning's gross demand, one per line, id "<order>/<line>"."""
    return [
        Demand(
            id=f"{order.id}/{line.line_no}",
            material=line.material,
            quantity=line.open,
            due=line.due,
        )
        for order in orders
        if order.state in _OPEN_SALES
        for line in order.lines
        if line.open
    ]


# -- shared ------------------------------------------------------------------------------------


def _distinct_lines(order_id: str, numbers: list[int]) -> None:
    seen: set[int] = set()
    for n in numbers:
        if n in seen:
            raise ValueError(f"order {order_id!r} has line {n} twice")
        seen.add(n)


def _refusal(what: str, state: StrEnum, action: StrEnum, allowed: tuple[StrEnum, ...]) -> str:
    then = (
        "it allows: " + ", ".join(a.value for a in allowed)
        if allowed
        else "it is final and allows no action"
    )
    return f"cannot {action.value} {what} that is {state.value}; {then}"
