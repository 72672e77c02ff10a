"""Work orders as a B2MML operations schedule, and what orders consumed and produced as an
operations performance.

The production package exports no work order type through its package module (the layer
rule in pyproject lets the value chain import nothing else of it), so the schedule is written
from anything shaped like `kiln.production`'s WorkOrder (`WorkOrderLike`) and read back as a
`ScheduledOrder` with exactly its fields: `WorkOrder.model_validate(o.model_dump())` turns one
into the other.

**Schedule** (`ProcessOperationsSchedule`: the receiver is asked to carry the orders out, ISA-95
Part 5's Process). One `OperationsRequest` per order: the order number is its `ID`, the comment
its `Description`, the order's version its `Version`, the due time its `EndTime`, the state its
`RequestState` (`REQUEST_STATE`). Its one `SegmentRequirement` makes the product: the product
code is the operations definition and segment (Kiln has one way to make a product per line),
the process segment is `PROCESS_SEGMENT`, the line is the `EquipmentRequirement`, and the
`MaterialRequirement` "Produced" carries the product and quantity (a float in the production
package: written with Python's shortest exact repr, read back to the same float). The created
and updated times are segment parameters.

**Performance** (`ShowOperationsPerformance`: reporting what happened, Part 5's Show). One
`OperationsResponse` per order, answering the request of the same id, in `ResponseState`
(`RESPONSE_STATE`), with one `SegmentResponse` whose `MaterialActual`s are the lots the order
consumed and produced (lot, material, exact Decimal quantity and unit, MaterialUse Consumed or
Produced).

ISA-95's older ProductionSchedule and ProductionPerformance are not in the 0700 schemas (they
were replaced by the operations schedule and performance); Kiln writes and reads the newer ones.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from decimal import Decimal
from enum import StrEnum
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kiln.valuechain.b2mml.document import (
    B2mmlError,
    child,
    children,
    data_area,
    envelope,
    format_decimal,
    format_time,
    local,
    parse,
    quantity,
    read_decimal,
    read_int,
    read_time,
    reason,
    serialise,
    sub,
    text,
    value,
    values,
)
from kiln.valuechain.lots import Amount, Code, Consume, Ledger, Produce

# `kiln.production`'s order states, by value.
OrderStateName = Literal["planned", "released", "running", "paused", "completed", "cancelled"]

SCHEDULE_VERB = "Process"
PERFORMANCE_VERB = "Show"
READ_VERBS = ("Process", "Sync", "Show", "Change")

PROCESS_SEGMENT = "make"

# Kiln's order states and ISA-95's request states, both ways for the ones Kiln writes.
REQUEST_STATE = {
    "planned": "Forecast",
    "released": "Released",
    "running": "Running",
    "paused": "Suspended",
    "completed": "Completed",
    "cancelled": "Cancelled",
}
# Other systems' request states, read as the nearest of Kiln's.
STATE_OF_REQUEST = {v: k for k, v in REQUEST_STATE.items()} | {
    "Waiting": "planned",
    "Ready": "released",
    "Held": "paused",
    "Aborted": "cancelled",
    "Closed": "completed",
}
RESPONSE_STATE = {
    "planned": "Waiting",
    "released": "Ready",
    "running": "Running",
    "paused": "Paused",
    "completed": "Completed",
    "cancelled": "Aborted",
}
STATE_OF_RESPONSE = {v: k for k, v in RESPONSE_STATE.items()} | {
    "Held": "paused",
    "Suspended": "paused",
    "Closed": "completed",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WorkOrderLike(Protocol):
    """What the schedule reads of `kiln.production`'s WorkOrder."""

    @property
    def id(self) -> str: ...
    @property
    def product(self) -> str: ...
    @property
    def line(self) -> str: ...
    @property
    def quantity(self) -> float: ...
    @property
    def state(self) -> str: ...
    @property
    def due_us(self) -> int | None: ...
    @property
    def created_us(self) -> int: ...
    @property
    def updated_us(self) -> int: ...
    @property
    def version(self) -> int: ...
    @property
    def comment(self) -> str: ...


class ScheduledOrder(_Frozen):
    """A work order read from a schedule: the fields of `kiln.production`'s WorkOrder."""

    id: Code
    product: Code
    line: str = Field(min_length=1, max_length=512)
    quantity: float = Field(gt=0)
    state: OrderStateName = "planned"
    due_us: int | None = None
    created_us: int
    updated_us: int
    version: int = Field(default=1, ge=1)
    comment: str = ""


class OperationsScheduleDoc(_Frozen):
    """A schedule: its id and its orders."""

    id: str
    orders: tuple[ScheduledOrder, ...]


class MaterialUse(StrEnum):
    CONSUMED = "Consumed"
    PRODUCED = "Produced"


class MaterialMovement(_Frozen):
    """One lot an order consumed from or produced."""

    lot_id: Code
    material: Code
    quantity: Amount
    unit: str = Field(min_length=1, max_length=32)
    use: MaterialUse


class OrderPerformance(_Frozen):
    """What one order did: its state, when it ran (if known), the lots it used and made."""

    order_id: Code
    state: OrderStateName | None = None
    start_us: int | None = None
    end_us: int | None = None
    movements: tuple[MaterialMovement, ...] = ()


class OperationsPerformanceDoc(_Frozen):
    """A performance report: its id, the schedule it answers (if any) and its orders."""

    id: str
    schedule_id: str | None = None
    orders: tuple[OrderPerformance, ...]


def order_performance(
    ledger: Ledger,
    order_id: str,
    *,
    state: OrderStateName | None = None,
    start_us: int | None = None,
    end_us: int | None = None,
) -> OrderPerformance:
    """`order_id`'s consumption (per lot, summed) and production (per produced lot, the
    quantity made) from a lot ledger, in the order of the ledger's log."""
    consumed: dict[str, Decimal] = dict(ledger.consumption(order_id))
    movements: list[MaterialMovement] = []
    written: set[str] = set()
    for tx in ledger.log:
        if isinstance(tx, Consume) and tx.order_id == order_id and tx.lot_id not in written:
            lot = ledger.lot(tx.lot_id)
            movements.append(
                MaterialMovement(
                    lot_id=lot.id,
                    material=lot.material,
                    quantity=consumed[lot.id],
                    unit=lot.unit,
                    use=MaterialUse.CONSUMED,
                )
            )
            written.add(lot.id)
        elif isinstance(tx, Produce) and tx.order_id == order_id:
            movements.append(
                MaterialMovement(
                    lot_id=tx.lot_id,
                    material=tx.material,
                    quantity=tx.quantity,
                    unit=tx.unit,
                    use=MaterialUse.PRODUCED,
                )
            )
    return OrderPerformance(
        order_id=order_id,
        state=state,
        start_us=start_us,
        end_us=end_us,
        movements=tuple(movements),
    )


# -- schedule --------------------------------------------------------------------------------


def export_operations_schedule(
    orders: Iterable[WorkOrderLike],
    *,
    schedule_id: str,
    created_us: int,
    sender: str | None = None,
) -> bytes:
    """`ProcessOperationsSchedule` of `orders` (at least one); UTF-8 bytes that validate."""
    root, data = envelope(SCHEDULE_VERB, "OperationsSchedule", created_us=created_us, sender=sender)
    schedule = sub(data, "OperationsSchedule")
    sub(schedule, "ID", schedule_id)
    sub(schedule, "OperationsType", "Production")
    count = 0
    for order in orders:
        count += 1
        state = str(order.state)
        request = sub(schedule, "OperationsRequest")
        sub(request, "ID", order.id)
        if order.comment:
            sub(request, "Description", order.comment)
        sub(request, "Version", str(order.version))
        if order.due_us is not None:
            sub(request, "EndTime", format_time(order.due_us))
        sub(request, "OperationsType", "Production")
        sub(request, "RequestState", REQUEST_STATE[state])
        segment = sub(request, "SegmentRequirement")
        sub(segment, "ID", PROCESS_SEGMENT)
        sub(segment, "OperationsType", "Production")
        sub(segment, "ProcessSegmentID", PROCESS_SEGMENT)
        sub(segment, "OperationsDefinitionID", order.product)
        sub(segment, "OperationsSegmentID", order.product)
        sub(segment, "SegmentState", REQUEST_STATE[state])
        value(segment, "SegmentParameter", "createdTime", format_time(order.created_us), "dateTime")
        value(segment, "SegmentParameter", "updatedTime", format_time(order.updated_us), "dateTime")
        equipment = sub(segment, "EquipmentRequirement")
        sub(equipment, "ID", "line")
        sub(equipment, "EquipmentID", order.line)
        sub(equipment, "EquipmentLevel", "ProductionLine")
        material = sub(segment, "MaterialRequirement")
        sub(material, "ID", "output")
        sub(material, "MaterialDefinitionID", order.product)
        sub(material, "MaterialUse", MaterialUse.PRODUCED.value)
        quantity(material, repr(float(order.quantity)), "double", None)
    if count == 0:
        raise ValueError("a B2MML operations schedule needs at least one order")
    return serialise(root)


def import_operations_schedule(data: bytes | str) -> OperationsScheduleDoc:
    """The orders of a B2MML OperationsSchedule document (any of `READ_VERBS`, or a bare
    `OperationsSchedule`), validated against the schemas."""
    root = parse(data, [v + "OperationsSchedule" for v in READ_VERBS] + ["OperationsSchedule"])
    path = "/" + local(root.tag)
    if local(root.tag) == "OperationsSchedule":
        schedule = root
    else:
        found = child(data_area(root), "OperationsSchedule")
        assert found is not None  # required by the schema
        schedule, path = found, f"{path}/DataArea/OperationsSchedule"
    orders = []
    for i, request in enumerate(children(schedule, "OperationsRequest"), 1):
        orders.append(_read_request(request, f"{path}/OperationsRequest[{i}]"))
    return OperationsScheduleDoc(id=text(schedule, "ID") or "", orders=tuple(orders))


def _read_request(request: ET.Element, here: str) -> ScheduledOrder:
    fields: dict[str, object] = {"id": text(request, "ID") or ""}
    comment = text(request, "Description")
    if comment:
        fields["comment"] = comment
    version = text(request, "Version")
    if version is not None:
        fields["version"] = read_int(version, f"{here}/Version")
    due = text(request, "EndTime")
    if due is not None:
        fields["due_us"] = read_time(due, f"{here}/EndTime")
    state = text(request, "RequestState")
    if state is not None:
        if state not in STATE_OF_REQUEST:
            raise B2mmlError(f"{here}/RequestState: Kiln has no order state for {state!r}")
        fields["state"] = STATE_OF_REQUEST[state]
    segment = child(request, "SegmentRequirement")
    assert segment is not None  # required by the schema
    seg_at = f"{here}/SegmentRequirement"
    params = values(segment, "SegmentParameter")
    for name, ident in (("created_us", "createdTime"), ("updated_us", "updatedTime")):
        if ident not in params:
            raise B2mmlError(f"{seg_at}: the SegmentParameter {ident} is missing")
        fields[name] = read_time(params[ident][0], f"{seg_at}/SegmentParameter[{ident}]")
    equipment = child(segment, "EquipmentRequirement")
    line = None if equipment is None else text(equipment, "EquipmentID")
    if not line:
        raise B2mmlError(f"{seg_at}: the line is missing (EquipmentRequirement/EquipmentID)")
    fields["line"] = line
    produced = next(
        (
            m
            for m in children(segment, "MaterialRequirement")
            if text(m, "MaterialUse") == MaterialUse.PRODUCED.value
        ),
        None,
    )
    amount = None if produced is None else child(produced, "Quantity")
    if produced is None or amount is None:
        raise B2mmlError(
            f"{seg_at}: no MaterialRequirement with MaterialUse Produced and a Quantity"
        )
    # The product is what the segment produces; a partner's operations definition may be a
    # routing of its own, so that is only the fallback.
    fields["product"] = (
        text(produced, "MaterialDefinitionID") or text(segment, "OperationsDefinitionID") or ""
    )
    fields["quantity"] = float(
        read_decimal(text(amount, "QuantityString") or "", f"{seg_at}/Quantity")
    )
    try:
        return ScheduledOrder.model_validate(fields)
    except ValidationError as e:
        raise B2mmlError(f"{here}: {reason(e)}") from None


# -- performance -----------------------------------------------------------------------------


def export_operations_performance(
    orders: Iterable[OrderPerformance],
    *,
    performance_id: str,
    created_us: int,
    schedule_id: str | None = None,
    sender: str | None = None,
) -> bytes:
    """`ShowOperationsPerformance` of `orders` (at least one); UTF-8 bytes that validate."""
    root, data = envelope(
        PERFORMANCE_VERB, "OperationsPerformance", created_us=created_us, sender=sender
    )
    performance = sub(data, "OperationsPerformance")
    sub(performance, "ID", performance_id)
    sub(performance, "OperationsType", "Production")
    if schedule_id is not None:
        sub(performance, "OperationsScheduleID", schedule_id)
    count = 0
    for order in orders:
        count += 1
        response = sub(performance, "OperationsResponse")
        sub(response, "ID", order.order_id)
        if order.start_us is not None:
            sub(response, "StartTime", format_time(order.start_us))
        if order.end_us is not None:
            sub(response, "EndTime", format_time(order.end_us))
        sub(response, "OperationsType", "Production")
        sub(response, "OperationsRequestID", order.order_id)
        if order.state is not None:
            sub(response, "ResponseState", RESPONSE_STATE[order.state])
        segment = sub(response, "SegmentResponse")
        sub(segment, "ID", PROCESS_SEGMENT)
        sub(segment, "ProcessSegmentID", PROCESS_SEGMENT)
        for n, movement in enumerate(order.movements, 1):
            actual = sub(segment, "MaterialActual")
            sub(actual, "ID", str(n))
            sub(actual, "MaterialDefinitionID", movement.material)
            sub(actual, "MaterialLotID", movement.lot_id)
            sub(actual, "MaterialUse", movement.use.value)
            quantity(actual, format_decimal(movement.quantity), "decimal", movement.unit)
    if count == 0:
        raise ValueError("a B2MML operations performance needs at least one order")
    return serialise(root)


def import_operations_performance(data: bytes | str) -> OperationsPerformanceDoc:
    """The orders' material actuals of a B2MML OperationsPerformance document (any of
    `READ_VERBS`, or a bare `OperationsPerformance`), validated against the schemas."""
    names = [v + "OperationsPerformance" for v in READ_VERBS] + ["OperationsPerformance"]
    root = parse(data, names)
    path = "/" + local(root.tag)
    if local(root.tag) == "OperationsPerformance":
        performance = root
    else:
        found = child(data_area(root), "OperationsPerformance")
        assert found is not None  # required by the schema
        performance, path = found, f"{path}/DataArea/OperationsPerformance"
    orders = [
        _read_response(response, f"{path}/OperationsResponse[{i}]")
        for i, response in enumerate(children(performance, "OperationsResponse"), 1)
    ]
    return OperationsPerformanceDoc(
        id=text(performance, "ID") or "",
        schedule_id=text(performance, "OperationsScheduleID"),
        orders=tuple(orders),
    )


def _read_response(response: ET.Element, here: str) -> OrderPerformance:
    fields: dict[str, object] = {
        "order_id": text(response, "OperationsRequestID") or text(response, "ID") or ""
    }
    for name, tag in (("start_us", "StartTime"), ("end_us", "EndTime")):
        moment = text(response, tag)
        if moment is not None:
            fields[name] = read_time(moment, f"{here}/{tag}")
    state = text(response, "ResponseState")
    if state is not None:
        if state not in STATE_OF_RESPONSE:
            raise B2mmlError(f"{here}/ResponseState: Kiln has no order state for {state!r}")
        fields["state"] = STATE_OF_RESPONSE[state]
    movements: list[MaterialMovement] = []
    for s, segment in enumerate(children(response, "SegmentResponse"), 1):
        for a, actual in enumerate(children(segment, "MaterialActual"), 1):
            at = f"{here}/SegmentResponse[{s}]/MaterialActual[{a}]"
            movements.append(_read_actual(actual, at))
    fields["movements"] = tuple(movements)
    try:
        return OrderPerformance.model_validate(fields)
    except ValidationError as e:
        raise B2mmlError(f"{here}: {reason(e)}") from None


def _read_actual(actual: ET.Element, at: str) -> MaterialMovement:
    use = text(actual, "MaterialUse")
    if use not in {u.value for u in MaterialUse}:
        raise B2mmlError(f"{at}/MaterialUse: Kiln books Consumed or Produced, not {use!r}")
    amount = child(actual, "Quantity")
    if amount is None:
        raise B2mmlError(f"{at}: a material actual needs its Quantity")
    fields = {
        "lot_id": text(actual, "MaterialLotID") or "",
        "material": text(actual, "MaterialDefinitionID") or "",
        "quantity": read_decimal(text(amount, "QuantityString") or "", f"{at}/Quantity"),
        "unit": text(amount, "UnitOfMeasure") or "",
        "use": use,
    }
    try:
        return MaterialMovement.model_validate(fields)
    except ValidationError as e:
        raise B2mmlError(f"{at}: {reason(e)}") from None
