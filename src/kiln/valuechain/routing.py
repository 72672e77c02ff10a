"""Routings: the operations a product or made material goes through, where, and how long each
takes; what material planning's lead times and production's ideal cycle times come from.

An operation is numbered (10, 20, 30, ... by habit, so one can be put between two later) and
runs at a **work centre**, which is either a line of the ISA-95 hierarchy, named by its asset
path (`acme/plant1/packing/line2`), or an asset type (`filler`): the operation then runs on
whichever asset of that type the order is dispatched to. `work_centre_kind` says which of the
two the name is, since a one-segment type name and a path cannot always be told apart.

Times are seconds, floats, as production's ideal cycle times are (`kiln.production.orders`):
`cycle_s` per unit (above 0), `setup_s` once per order, and `move_s` and `queue_s`, the wait
before the next operation (all three at least 0). An operation may name the bill-of-materials
components it consumes; components no operation names are consumed at the first one.

**Lead time** of an order of `quantity`: the operations run one after the other, each taking
its whole batch before passing it on, so the lead time is the sum over operations of
setup + quantity * cycle + move + queue. That is the longest an order should take; overlapping
operations (passing units on one by one) only shortens it.

**Ideal cycle time** derived for production (the bottleneck rule): when units flow through
the operations one by one, the output rate of the whole is the rate of its slowest operation.
So the product's ideal cycle on a line is the longest `cycle_s` among the operations at that
line, and its general ideal cycle (`Product.ideal_cycle_s`, used on lines the routing does not
name) is the longest `cycle_s` of all its operations. Setup is left out: OEE counts it as
lost time (a changeover stop), not as slower running.

Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kiln.core.errors import InvalidPathError
from kiln.core.values import validate_path
from kiln.production import Product
from kiln.valuechain.master import CODE_PATTERN, MADE_KINDS, BomLine, MasterData

# An asset type's name, as the asset model allows it (`kiln.model.definitions`).
TYPE_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WorkCentreKind(StrEnum):
    LINE = "line"  # a line's asset path in the ISA-95 hierarchy
    ASSET_TYPE = "asset_type"  # the name of an asset type


class Operation(_Frozen):
    """One step of a routing: where it runs, and its times in seconds."""

    number: int = Field(strict=True, gt=0, description="the operation's number, e.g. 10, 20, 30")
    name: str = Field(min_length=1, max_length=128)
    work_centre_kind: WorkCentreKind
    work_centre: str = Field(min_length=1, max_length=512)
    cycle_s: float = Field(gt=0, allow_inf_nan=False, description="per unit")
    setup_s: float = Field(default=0.0, ge=0, allow_inf_nan=False, description="per order")
    move_s: float = Field(default=0.0, ge=0, allow_inf_nan=False, description="to the next")
    queue_s: float = Field(default=0.0, ge=0, allow_inf_nan=False, description="waiting")
    components: tuple[str, ...] = Field(
        default=(), description="codes of the bill-of-materials components consumed here"
    )

    @field_validator("components")
    @classmethod
    def _components(cls, components: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for code in components:
            if not _matches(CODE_PATTERN, code):
                raise ValueError(f"component {code!r} is not a material code")
            if code in seen:
                raise ValueError(f"component {code} is named twice")
            seen.add(code)
        return components

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.work_centre_kind is WorkCentreKind.LINE:
            try:
                validate_path(self.work_centre)
            except InvalidPathError as exc:
                raise ValueError(f"operation {self.number}: work centre: {exc}") from None
        elif not _matches(TYPE_NAME_PATTERN, self.work_centre):
            raise ValueError(
                f"operation {self.number}: work centre {self.work_centre!r} is no asset type "
                "name (1-64 letters, digits, '_', '-', '.')"
            )
        return self

    def time_s(self, quantity: float) -> float:
        """How long this operation holds an order of `quantity`, waiting after it included."""
        return self.setup_s + quantity * self.cycle_s + self.move_s + self.queue_s


class Routing(_Frozen):
    """The operations of `product` (a material code, the same as production's product code),
    in ascending order of their numbers."""

    product: str = Field(pattern=CODE_PATTERN)
    operations: tuple[Operation, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Self:
        seen: set[int] = set()
        consumed: dict[str, int] = {}
        previous = 0
        for op in self.operations:
            if op.number in seen:
                raise ValueError(f"routing of {self.product}: operation {op.number} is given twice")
            seen.add(op.number)
            if op.number < previous:
                raise ValueError(
                    f"routing of {self.product}: operation {op.number} comes after {previous}; "
                    "give operations in ascending order"
                )
            previous = op.number
            for code in op.components:
                if code in consumed:
                    raise ValueError(
                        f"routing of {self.product}: component {code} is consumed at operation "
                        f"{consumed[code]} and again at {op.number}"
                    )
                consumed[code] = op.number
        return self

    def operation(self, number: int) -> Operation:
        for op in self.operations:
            if op.number == number:
                return op
        raise KeyError(f"routing of {self.product} has no operation {number}")


def lead_time_s(routing: Routing, quantity: float | Decimal) -> float:
    """Seconds an order of `quantity` takes through `routing`, operations one after the other
    (see the module docstring)."""
    qty = float(quantity)
    if not qty > 0 or math.isinf(qty):
        raise ValueError(f"quantity must be a positive number, not {quantity}")
    return sum(op.time_s(qty) for op in routing.operations)


def ideal_cycles(routing: Routing) -> tuple[float, dict[str, float]]:
    """The bottleneck rule: (the longest cycle of all operations, {line path: the longest
    cycle of the operations at that line})."""
    per_line: dict[str, float] = {}
    for op in routing.operations:
        if op.work_centre_kind is WorkCentreKind.LINE:
            per_line[op.work_centre] = max(per_line.get(op.work_centre, 0.0), op.cycle_s)
    return max(op.cycle_s for op in routing.operations), per_line


def with_routing_cycles(product: Product, routing: Routing) -> Product:
    """`product` with its ideal cycle times taken from `routing` by the bottleneck rule: the
    general one replaced, the routing's lines set, entries for other assets kept."""
    if product.code != routing.product:
        raise ValueError(f"routing of {routing.product} is not the routing of {product.code}")
    general, per_line = ideal_cycles(routing)
    return product.model_copy(
        update={"ideal_cycle_s": general, "per_asset": {**product.per_asset, **per_line}}
    )


def consumption_by_operation(
    routing: Routing, lines: Iterable[BomLine]
) -> dict[int, tuple[BomLine, ...]]:
    """The bill-of-materials lines each operation consumes: those it names, plus, at the first
    operation, the lines no operation names. Every operation has an entry."""
    by_component = {line.component: line for line in lines}
    named = {code for op in routing.operations for code in op.components}
    out: dict[int, tuple[BomLine, ...]] = {}
    for i, op in enumerate(routing.operations):
        mine = [by_component[c] for c in op.components if c in by_component]
        if i == 0:
            mine += [ln for code, ln in sorted(by_component.items()) if code not in named]
        out[op.number] = tuple(mine)
    return out


@dataclass(frozen=True, slots=True)
class RoutingProblem:
    """Why a routing does not fit the rest of the master data. `operation` is None for the
    routing as a whole; `field` is the routing's or the operation's field at fault."""

    product: str
    operation: int | None
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"routing of {self.product}"
        if self.operation is not None:
            where += f", operation {self.operation}"
        return f"{where}: {self.reason}"


class RoutingError(ValueError):
    """Routings that do not fit the master data; `problems` holds every reason."""

    def __init__(self, problems: Iterable[RoutingProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


def routing_problems(
    routings: Iterable[Routing],
    master: MasterData | None = None,
    *,
    products: Iterable[str] | None = None,
    lines: Iterable[str] | None = None,
    asset_types: Iterable[str] | None = None,
) -> list[RoutingProblem]:
    """Every way `routings` disagree with what is given: one routing per product; with
    `master`, the product is a made or finished material and operations consume only
    components of its bill of materials; with `products` (production's product codes), the
    product is one of them; with `lines` and `asset_types`, work centres are known."""
    known_products = None if products is None else frozenset(products)
    known_lines = None if lines is None else frozenset(lines)
    known_types = None if asset_types is None else frozenset(asset_types)
    materials = None if master is None else master.by_code()
    boms = {} if master is None else master.bom_of()
    problems: list[RoutingProblem] = []
    seen: set[str] = set()
    for routing in routings:
        code = routing.product

        def problem(op: int | None, field: str, reason: str, code: str = code) -> None:
            problems.append(RoutingProblem(code, op, field, reason))

        if code in seen:
            problem(None, "product", f"{code} has two routings")
        seen.add(code)
        if known_products is not None and code not in known_products:
            problem(None, "product", f"{code} is no product of production")
        bom_components: frozenset[str] = frozenset()
        if materials is not None:
            material = materials.get(code)
            if material is None:
                problem(None, "product", f"{code} is no known material")
            elif material.kind not in MADE_KINDS:
                problem(None, "product", f"{code} is {material.kind.value}: bought, so not routed")
            bom = boms.get(code)
            if bom is not None:
                bom_components = frozenset(line.component for line in bom.lines)
        for op in routing.operations:
            if materials is not None:
                for component in op.components:
                    if component not in materials:
                        problem(op.number, "components", f"{component} is no known material")
                    elif component not in bom_components:
                        problem(
                            op.number,
                            "components",
                            f"{component} is no component of the bill of materials of {code}",
                        )
            if op.work_centre_kind is WorkCentreKind.LINE:
                if known_lines is not None and op.work_centre not in known_lines:
                    problem(op.number, "work_centre", f"line {op.work_centre} is not known")
            elif known_types is not None and op.work_centre not in known_types:
                problem(op.number, "work_centre", f"asset type {op.work_centre} is not known")
    return problems


def check_routings(
    routings: Iterable[Routing],
    master: MasterData | None = None,
    *,
    products: Iterable[str] | None = None,
    lines: Iterable[str] | None = None,
    asset_types: Iterable[str] | None = None,
) -> None:
    """Raise RoutingError with every problem `routing_problems` finds, if it finds any."""
    problems = routing_problems(
        routings, master, products=products, lines=lines, asset_types=asset_types
    )
    if problems:
        raise RoutingError(problems)


def _matches(pattern: str, text: str) -> bool:
    return re.fullmatch(pattern, text) is not None
