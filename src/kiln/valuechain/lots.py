"""Lots of material and the transactions that change them, as a pure in-memory ledger.

A lot is an amount of one material in one unit at one location, in one of five states:

    available  --hold-->  held  --release-->  available
    available  --ship-->  shipped                 (the whole lot; split first to ship a part)
    available or held  --scrap all-->  scrapped   (scrap of a part leaves the lot as it was)
    available  --consume all / split / merge-->  consumed   (its quantity went elsewhere)

A held lot is frozen where it is: it cannot move, be consumed, shipped, split or merged; it
can be scrapped (quarantined stock is often destroyed) or released. Shipped, consumed and
scrapped are final.

`Ledger.apply` checks a transaction against the whole state before it changes anything, and
either applies all of it or raises `TransactionRefused` with the reason and changes nothing, so
a refused scan on the shop floor leaves no half-done move behind.

Quantities are `decimal.Decimal`, never float, and every sum or difference is computed in a
context that traps rounding, so conservation is exact: for each material, what was received or
produced equals what is on hand plus what was consumed into orders, shipped and scrapped, to
the last digit. Decimal rather than integers of a unit's smallest step because the step of a
unit is master data this module does not own (kg to 3 places at one plant, 6 at another): a
quantity carries its own exponent, is limited to `QUANTITY_PLACES` decimal places, and the
trapping context turns any loss of a digit into an error instead of a silent drift.

Genealogy edges are recorded as the transactions happen: a lot's material consumed into an
order goes *consumed_into* every lot the order produces afterwards; a split goes *split_into*
each part; a merge's sources go *merged_into* the new lot. `kiln.valuechain.genealogy` walks them.

Pure: no I/O, no clock (times are int microseconds since the epoch, given by the caller).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, Inexact, InvalidOperation, Rounded, localcontext
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

# A lot, material, order or transaction id: one path segment, the same rule as the production
# package's codes (`kiln.core.values`), so ids fit in URLs and topics as they are. Written out
# here because domains meet only through each one's package module (pyproject's contracts).
CODE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$"

# The most decimal places a quantity may carry. Nine covers grams of a tonne-unit and
# micrometres of a metre-unit; more is a unit chosen wrongly.
QUANTITY_PLACES = 9

# The largest quantity one transaction or lot may carry: with 9 places that is 24 digits, so a
# sum of a million of them still fits the 40 digits of the exact context below.
MAX_QUANTITY = Decimal(10) ** 15

# Any rounding raises rather than being hidden.
_EXACT = Context(prec=40, traps=[Inexact, Rounded, InvalidOperation])


def _no_float(value: object) -> object:
    # A float is already rounded (0.1 is not one tenth); accepting it would make conservation
    # depend on how the caller printed it. Strings, ints and Decimals are exact.
    if isinstance(value, float):
        raise ValueError("a quantity must be a Decimal, an int or a string, not a float")
    return value


def _checked(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("a quantity must be finite")
    if value < 0:
        raise ValueError("a quantity cannot be negative")
    if value >= MAX_QUANTITY:
        raise ValueError(f"a quantity must be less than {MAX_QUANTITY:,}")
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -QUANTITY_PLACES:
        raise ValueError(f"a quantity has at most {QUANTITY_PLACES} decimal places")
    return value


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("a quantity must be greater than zero")
    return value


# On hand, after use: zero is allowed (a used-up lot). Moved: must be more than zero.
Amount = Annotated[Decimal, BeforeValidator(_no_float), AfterValidator(_checked)]
Quantity = Annotated[Amount, AfterValidator(_positive)]
Code = Annotated[str, Field(pattern=CODE_PATTERN)]
Text = Annotated[str, Field(min_length=1, max_length=512)]


def add(*values: Decimal) -> Decimal:
    """The exact sum of `values`; `decimal.Inexact` or `Rounded` if a digit would be lost."""
    with localcontext(_EXACT):
        total = Decimal(0)
        for v in values:
            total = total + v
        return total


def sub(a: Decimal, b: Decimal) -> Decimal:
    """`a - b`, exactly."""
    with localcontext(_EXACT):
        return a - b


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LotState(StrEnum):
    AVAILABLE = "available"
    HELD = "held"
    CONSUMED = "consumed"
    SHIPPED = "shipped"
    SCRAPPED = "scrapped"


FINAL_STATES = frozenset({LotState.CONSUMED, LotState.SHIPPED, LotState.SCRAPPED})


class Lot(_Frozen):
    """A lot as it stands now. `quantity` is what it holds: on hand while available or held,
    what left while shipped, zero once consumed or scrapped (the log says where it went)."""

    id: Code
    material: Code
    quantity: Amount
    unit: str = Field(min_length=1, max_length=32)
    location: Text
    state: LotState = LotState.AVAILABLE
    supplier: str | None = None
    supplier_lot: str | None = None
    purchase_order: str | None = None
    order_id: str | None = Field(default=None, description="the production order that made it")
    customer: str | None = None
    shipment_id: str | None = None
    sales_order: str | None = None
    hold_reason: str | None = None
    created_us: int
    updated_us: int

    @property
    def on_hand(self) -> Decimal:
        """What is physically in stock: the quantity while available or held, else zero."""
        return self.quantity if self.state in (LotState.AVAILABLE, LotState.HELD) else Decimal(0)


class EdgeKind(StrEnum):
    CONSUMED_INTO = "consumed_into"
    SPLIT_INTO = "split_into"
    MERGED_INTO = "merged_into"


class GenealogyEdge(_Frozen):
    """Material of `source` went into `target`: `quantity` of the source's unit."""

    source: Code
    target: Code
    kind: EdgeKind
    quantity: Quantity
    transaction_id: Code
    order_id: str | None = None
    time_us: int


# -- transactions ------------------------------------------------------------------------------


# Times are µs since the epoch in a 64-bit column: 2^62 leaves room, and is far beyond any
# plausible date (about the year 148,000), so what is stored is what comes back.
MAX_TIME_US = 1 << 62


class _Tx(_Frozen):
    id: Code = Field(description="the transaction id, unique in a ledger")
    time_us: int = Field(ge=0, le=MAX_TIME_US, description="µs since the epoch")
    user: str = Field(default="", max_length=256)


class Receive(_Tx):
    """A new lot from a supplier, against a purchase order if there is one."""

    kind: Literal["receive"] = "receive"
    lot_id: Code
    material: Code
    quantity: Quantity
    unit: str = Field(min_length=1, max_length=32)
    location: Text
    supplier: Text
    supplier_lot: str | None = None
    purchase_order: str | None = None


class Consume(_Tx):
    """`quantity` of an available lot used by production order `order_id`."""

    kind: Literal["consume"] = "consume"
    lot_id: Code
    quantity: Quantity
    order_id: Code


class Produce(_Tx):
    """A new lot made by `order_id`. Its inputs are lots consumed into that order: the ones
    named, or, when `inputs` is None, every lot consumed into it so far."""

    kind: Literal["produce"] = "produce"
    lot_id: Code
    material: Code
    quantity: Quantity
    unit: str = Field(min_length=1, max_length=32)
    location: Text
    order_id: Code
    inputs: tuple[Code, ...] | None = None


class SplitPart(_Frozen):
    lot_id: Code
    quantity: Quantity
    location: str | None = Field(default=None, description="the source's location if None")


class Split(_Tx):
    """One lot into new lots whose quantities add up to exactly the lot's quantity."""

    kind: Literal["split"] = "split"
    lot_id: Code
    parts: tuple[SplitPart, ...] = Field(min_length=2)


class Merge(_Tx):
    """Several lots of one material and unit into a new lot `into` holding their sum."""

    kind: Literal["merge"] = "merge"
    lot_ids: tuple[Code, ...] = Field(min_length=2)
    into: Code
    location: str | None = Field(
        default=None, description="where the merged lot is; may be None if the sources agree"
    )


class Move(_Tx):
    kind: Literal["move"] = "move"
    lot_id: Code
    location: Text


class Ship(_Tx):
    """A whole available lot out to a customer in shipment `shipment_id`."""

    kind: Literal["ship"] = "ship"
    lot_id: Code
    customer: Text
    shipment_id: Text
    sales_order: str | None = None


class Hold(_Tx):
    kind: Literal["hold"] = "hold"
    lot_id: Code
    reason: Text


class Release(_Tx):
    kind: Literal["release"] = "release"
    lot_id: Code


class Scrap(_Tx):
    """`quantity` of an available or held lot destroyed; all of it makes the lot scrapped."""

    kind: Literal["scrap"] = "scrap"
    lot_id: Code
    quantity: Quantity
    reason: str = ""


Transaction = Annotated[
    Receive | Consume | Produce | Split | Merge | Move | Ship | Hold | Release | Scrap,
    Field(discriminator="kind"),
]


class TransactionRefused(ValueError):
    """A transaction the ledger's state does not allow; the message says why. Nothing changed."""


@dataclass(frozen=True)
class Change:
    """What one applied transaction did: the lots it created or changed (as they are now), the
    edges it added and the consumption it booked (order, lot, quantity). A store persists this."""

    transaction: Transaction
    lots: tuple[Lot, ...]
    edges: tuple[GenealogyEdge, ...] = ()
    consumed: tuple[tuple[str, str, Decimal], ...] = ()


class Ledger:
    """The lots, their genealogy edges and the transaction log, in memory.

    `apply` is the only way in; every read gives an immutable view or a copy."""

    def __init__(self) -> None:
        self._lots: dict[str, Lot] = {}
        self._edges: list[GenealogyEdge] = []
        self._log: list[Transaction] = []
        self._tx_ids: set[str] = set()
        # order -> lot -> quantity consumed into it, in booking order (a produce's inputs).
        self._consumed: dict[str, dict[str, Decimal]] = {}
        self._produced: dict[str, list[str]] = {}

    @property
    def lots(self) -> Mapping[str, Lot]:
        return MappingProxyType(self._lots)

    @property
    def edges(self) -> tuple[GenealogyEdge, ...]:
        return tuple(self._edges)

    @property
    def log(self) -> tuple[Transaction, ...]:
        return tuple(self._log)

    def lot(self, lot_id: str) -> Lot:
        """The lot `lot_id`; TransactionRefused if there is none."""
        try:
            return self._lots[lot_id]
        except KeyError:
            raise TransactionRefused(f"there is no lot {lot_id!r}") from None

    def consumption(self, order_id: str) -> Mapping[str, Decimal]:
        """lot -> quantity consumed into order `order_id` so far."""
        return MappingProxyType(dict(self._consumed.get(order_id, {})))

    def produced(self, order_id: str) -> tuple[str, ...]:
        """The lots order `order_id` produced, in order."""
        return tuple(self._produced.get(order_id, ()))

    def order_ids(self) -> tuple[str, ...]:
        """Every order that consumed or produced a lot in this ledger."""
        return tuple(dict.fromkeys([*self._consumed, *self._produced]))

    def apply(self, tx: Transaction) -> Change:
        """Apply `tx` whole, or raise TransactionRefused and change nothing."""
        if tx.id in self._tx_ids:
            raise TransactionRefused(f"transaction {tx.id!r} was already applied")
        change = self._plan(tx)
        booked = [
            (order_id, lot_id, add(self._consumed.get(order_id, {}).get(lot_id, Decimal(0)), qty))
            for order_id, lot_id, qty in change.consumed
        ]
        # Nothing above wrote; from here on nothing can refuse or fail.
        self._tx_ids.add(tx.id)
        self._log.append(tx)
        for lot in change.lots:
            self._lots[lot.id] = lot
        self._edges.extend(change.edges)
        for order_id, lot_id, total in booked:
            self._consumed.setdefault(order_id, {})[lot_id] = total
        if isinstance(tx, Produce):
            self._produced.setdefault(tx.order_id, []).append(tx.lot_id)
        return change

    def apply_all(self, txs: Iterable[Transaction]) -> list[Change]:
        """Apply each in turn; stops at the first refusal (earlier ones stay applied)."""
        return [self.apply(tx) for tx in txs]

    # -- planning: checks and computes, never writes ------------------------------------------

    def _plan(self, tx: Transaction) -> Change:
        match tx:
            case Receive():
                return self._receive(tx)
            case Consume():
                return self._consume(tx)
            case Produce():
                return self._produce(tx)
            case Split():
                return self._split(tx)
            case Merge():
                return self._merge(tx)
            case Move():
                return self._move(tx)
            case Ship():
                return self._ship(tx)
            case Hold():
                return self._hold(tx)
            case Release():
                return self._release(tx)
            case Scrap():
                return self._scrap(tx)

    def _new_ids(self, ids: Sequence[str]) -> None:
        if len(set(ids)) != len(ids):
            raise TransactionRefused(f"lot ids repeat within the transaction: {', '.join(ids)}")
        taken = [i for i in ids if i in self._lots]
        if taken:
            raise TransactionRefused(f"lot {taken[0]!r} already exists")

    def _usable(self, lot_id: str, doing: str) -> Lot:
        """The lot, if it is available for `doing` (held or final lots are not)."""
        lot = self.lot(lot_id)
        if lot.state is LotState.HELD:
            raise TransactionRefused(
                f"cannot {doing} lot {lot_id!r}: it is held ({lot.hold_reason})"
            )
        if lot.state is not LotState.AVAILABLE:
            raise TransactionRefused(f"cannot {doing} lot {lot_id!r}: it is {lot.state.value}")
        return lot

    def _receive(self, tx: Receive) -> Change:
        self._new_ids([tx.lot_id])
        lot = Lot(
            id=tx.lot_id,
            material=tx.material,
            quantity=tx.quantity,
            unit=tx.unit,
            location=tx.location,
            supplier=tx.supplier,
            supplier_lot=tx.supplier_lot,
            purchase_order=tx.purchase_order,
            created_us=tx.time_us,
            updated_us=tx.time_us,
        )
        return Change(tx, (lot,))

    def _consume(self, tx: Consume) -> Change:
        lot = self._usable(tx.lot_id, "consume")
        left = sub(lot.quantity, tx.quantity)
        if left < 0:
            raise TransactionRefused(
                f"cannot consume {tx.quantity} {lot.unit} of lot {lot.id!r}: "
                f"it holds {lot.quantity} {lot.unit}"
            )
        state = LotState.CONSUMED if left == 0 else LotState.AVAILABLE
        updated = lot.model_copy(
            update={"quantity": left, "state": state, "updated_us": tx.time_us}
        )
        return Change(tx, (updated,), consumed=((tx.order_id, lot.id, tx.quantity),))

    def _produce(self, tx: Produce) -> Change:
        self._new_ids([tx.lot_id])
        booked = self._consumed.get(tx.order_id, {})
        if tx.inputs is None:
            inputs = list(booked)
        else:
            inputs = list(dict.fromkeys(tx.inputs))
            missing = [i for i in inputs if i not in booked]
            if missing:
                raise TransactionRefused(
                    f"lot {missing[0]!r} was not consumed into order {tx.order_id!r}; "
                    "consume it before naming it as an input"
                )
        lot = Lot(
            id=tx.lot_id,
            material=tx.material,
            quantity=tx.quantity,
            unit=tx.unit,
            location=tx.location,
            order_id=tx.order_id,
            created_us=tx.time_us,
            updated_us=tx.time_us,
        )
        edges = tuple(
            GenealogyEdge(
                source=i,
                target=tx.lot_id,
                kind=EdgeKind.CONSUMED_INTO,
                quantity=booked[i],
                transaction_id=tx.id,
                order_id=tx.order_id,
                time_us=tx.time_us,
            )
            for i in inputs
        )
        return Change(tx, (lot,), edges)

    def _split(self, tx: Split) -> Change:
        lot = self._usable(tx.lot_id, "split")
        self._new_ids([p.lot_id for p in tx.parts])
        total = add(*(p.quantity for p in tx.parts))
        if total != lot.quantity:
            raise TransactionRefused(
                f"the parts of lot {lot.id!r} add up to {total} {lot.unit}, "
                f"not to its {lot.quantity} {lot.unit}"
            )
        parts = tuple(
            lot.model_copy(
                update={
                    "id": p.lot_id,
                    "quantity": p.quantity,
                    "location": p.location or lot.location,
                    "created_us": tx.time_us,
                    "updated_us": tx.time_us,
                }
            )
            for p in tx.parts
        )
        emptied = lot.model_copy(
            update={"quantity": Decimal(0), "state": LotState.CONSUMED, "updated_us": tx.time_us}
        )
        edges = tuple(
            GenealogyEdge(
                source=lot.id,
                target=p.lot_id,
                kind=EdgeKind.SPLIT_INTO,
                quantity=p.quantity,
                transaction_id=tx.id,
                time_us=tx.time_us,
            )
            for p in tx.parts
        )
        return Change(tx, (emptied, *parts), edges)

    def _merge(self, tx: Merge) -> Change:
        if len(set(tx.lot_ids)) != len(tx.lot_ids):
            raise TransactionRefused("a merge names the same lot twice")
        sources = [self._usable(i, "merge") for i in tx.lot_ids]
        first = sources[0]
        for s in sources[1:]:
            if (s.material, s.unit) != (first.material, first.unit):
                raise TransactionRefused(
                    f"cannot merge lot {s.id!r} ({s.material} in {s.unit}) with lot "
                    f"{first.id!r} ({first.material} in {first.unit}): material and unit must match"
                )
        self._new_ids([tx.into])
        locations = {s.location for s in sources}
        if tx.location is None and len(locations) > 1:
            raise TransactionRefused(
                "the lots to merge are at different locations; say where the merged lot is"
            )
        location = tx.location or first.location

        # A reference the sources share carries over; one they disagree on does not.
        def shared(name: str) -> str | None:
            values = {getattr(s, name) for s in sources}
            return values.pop() if len(values) == 1 else None

        merged = Lot(
            id=tx.into,
            material=first.material,
            quantity=add(*(s.quantity for s in sources)),
            unit=first.unit,
            location=location,
            supplier=shared("supplier"),
            supplier_lot=shared("supplier_lot"),
            purchase_order=shared("purchase_order"),
            order_id=shared("order_id"),
            created_us=tx.time_us,
            updated_us=tx.time_us,
        )
        emptied = tuple(
            s.model_copy(
                update={
                    "quantity": Decimal(0),
                    "state": LotState.CONSUMED,
                    "updated_us": tx.time_us,
                }
            )
            for s in sources
        )
        edges = tuple(
            GenealogyEdge(
                source=s.id,
                target=tx.into,
                kind=EdgeKind.MERGED_INTO,
                quantity=s.quantity,
                transaction_id=tx.id,
                time_us=tx.time_us,
            )
            for s in sources
        )
        return Change(tx, (*emptied, merged), edges)

    def _move(self, tx: Move) -> Change:
        lot = self._usable(tx.lot_id, "move")
        if lot.location == tx.location:
            raise TransactionRefused(f"lot {lot.id!r} is already at {tx.location!r}")
        return Change(
            tx, (lot.model_copy(update={"location": tx.location, "updated_us": tx.time_us}),)
        )

    def _ship(self, tx: Ship) -> Change:
        lot = self._usable(tx.lot_id, "ship")
        shipped = lot.model_copy(
            update={
                "state": LotState.SHIPPED,
                "customer": tx.customer,
                "shipment_id": tx.shipment_id,
                "sales_order": tx.sales_order,
                "updated_us": tx.time_us,
            }
        )
        return Change(tx, (shipped,))

    def _hold(self, tx: Hold) -> Change:
        lot = self.lot(tx.lot_id)
        if lot.state is LotState.HELD:
            raise TransactionRefused(f"lot {lot.id!r} is already held ({lot.hold_reason})")
        if lot.state is not LotState.AVAILABLE:
            raise TransactionRefused(f"cannot hold lot {lot.id!r}: it is {lot.state.value}")
        held = lot.model_copy(
            update={"state": LotState.HELD, "hold_reason": tx.reason, "updated_us": tx.time_us}
        )
        return Change(tx, (held,))

    def _release(self, tx: Release) -> Change:
        lot = self.lot(tx.lot_id)
        if lot.state is not LotState.HELD:
            raise TransactionRefused(
                f"cannot release lot {lot.id!r}: it is {lot.state.value}, not held"
            )
        released = lot.model_copy(
            update={"state": LotState.AVAILABLE, "hold_reason": None, "updated_us": tx.time_us}
        )
        return Change(tx, (released,))

    def _scrap(self, tx: Scrap) -> Change:
        lot = self.lot(tx.lot_id)
        if lot.state in FINAL_STATES:
            raise TransactionRefused(f"cannot scrap lot {lot.id!r}: it is {lot.state.value}")
        left = sub(lot.quantity, tx.quantity)
        if left < 0:
            raise TransactionRefused(
                f"cannot scrap {tx.quantity} {lot.unit} of lot {lot.id!r}: "
                f"it holds {lot.quantity} {lot.unit}"
            )
        update: dict[str, object] = {"quantity": left, "updated_us": tx.time_us}
        if left == 0:
            update["state"] = LotState.SCRAPPED
        return Change(tx, (lot.model_copy(update=update),))
