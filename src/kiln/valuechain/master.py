"""Master data for material planning: materials with their lead times and lot sizes, and bills
of materials with scrap, checked as a whole (`MasterData`).

A material is of one **kind**: `raw` and `purchased` materials are bought (planning proposes
purchase orders, offset by purchasing and supplier lead times); `made` and `finished` ones are
made (planning proposes work orders, offset by the manufacturing lead time). Only made and
finished materials have a bill of materials.

Quantities are exact decimals. A material's unit has a **precision**, `decimals`: the number of
decimal places its quantities may have, 0 for pieces ("pcs" must be 0). Every quantity of the
material (safety stock, lot sizes, demand, stock, proposals) has at most that many places, so
planning never rounds a given number, only the ones it computes, and always up.

Lot sizes: `lot_min` (an order is never smaller), `lot_multiple` (an order is a whole number of
multiples), `lot_max` (a larger requirement is split into several orders). `lot_max` must be a
multiple of `lot_multiple` and at least `lot_min`: master data where it is not is refused, since
then no order could respect all three.

A bill of materials says how much of each component one batch of the parent takes, and what
share of a component is lost to scrap (0 to under 100 percent). Bills of materials must not form
a cycle (the cycle is named) and name only known materials (the unknown ones are named).

The **low-level code** of a material is the deepest level it appears at in any bill of materials:
0 for what is no component of anything, else one more than the deepest of its parents. Planning
goes level by level in that order, so a component is planned only once all its parents are.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

# A material code: one path segment, as product codes are (`kiln.production.orders`).
CODE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$"

# Units counted in whole things: their precision must be 0.
COUNTED_UNITS = frozenset({"pcs"})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MasterDataError(ValueError):
    """Master data that planning cannot use; the message names what is wrong."""


class MaterialKind(StrEnum):
    RAW = "raw"
    PURCHASED = "purchased"
    MADE = "made"
    FINISHED = "finished"


BOUGHT_KINDS = frozenset({MaterialKind.RAW, MaterialKind.PURCHASED})
MADE_KINDS = frozenset({MaterialKind.MADE, MaterialKind.FINISHED})


def decimal_places(value: Decimal) -> int:
    """How many decimal places `value` needs (trailing zeros do not count): 0 for 12.00."""
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite: pydantic refuses NaN and infinities by default
    return max(0, -exponent)


class Material(_Frozen):
    """A material or product, with what planning needs to know of it."""

    code: str = Field(pattern=CODE_PATTERN)
    name: str = ""
    unit: str = Field(default="pcs", min_length=1, max_length=32)
    decimals: int = Field(strict=True, default=0, ge=0, le=6, description="the unit's precision")
    kind: MaterialKind
    purchasing_lead_days: int = Field(
        strict=True, default=0, ge=0, description="ordering, for bought ones"
    )
    manufacturing_lead_days: int = Field(
        strict=True, default=0, ge=0, description="making, for made ones"
    )
    safety_lead_days: int = Field(
        strict=True, default=0, ge=0, description="due this much before needed"
    )
    supplier: str | None = Field(default=None, pattern=CODE_PATTERN)
    supplier_lead_days: int = Field(
        strict=True, default=0, ge=0, description="the supplier's delivery"
    )
    safety_stock: Decimal = Field(default=Decimal(0), ge=0)
    lot_min: Decimal = Field(default=Decimal(0), ge=0)
    lot_max: Decimal | None = Field(default=None, gt=0)
    lot_multiple: Decimal | None = Field(default=None, gt=0)

    @property
    def bought(self) -> bool:
        return self.kind in BOUGHT_KINDS

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.unit in COUNTED_UNITS and self.decimals != 0:
            raise ValueError(
                f"material {self.code}: unit {self.unit} is counted, decimals must be 0"
            )
        for name in ("safety_stock", "lot_min", "lot_max", "lot_multiple"):
            value = getattr(self, name)
            if value is not None and decimal_places(value) > self.decimals:
                raise ValueError(
                    f"material {self.code}: {name} {value} has more decimal places than its "
                    f"unit's precision ({self.decimals})"
                )
        if self.supplier is not None and not self.bought:
            raise ValueError(f"material {self.code}: a supplier is for bought materials only")
        if self.lot_max is not None:
            if self.lot_max < self.lot_min:
                raise ValueError(
                    f"material {self.code}: lot_max {self.lot_max} is below lot_min {self.lot_min}"
                )
            if self.lot_multiple is not None and self.lot_max % self.lot_multiple != 0:
                raise ValueError(
                    f"material {self.code}: lot_max {self.lot_max} is not a multiple of "
                    f"lot_multiple {self.lot_multiple}, so no order could respect both"
                )
        return self

    def quantity_precision_error(self, what: str, quantity: Decimal) -> str | None:
        """Why `quantity` cannot be one of this material's quantities, or None if it can."""
        if decimal_places(quantity) > self.decimals:
            return (
                f"{what}: quantity {quantity} of {self.code} has more decimal places than its "
                f"unit {self.unit} allows ({self.decimals})"
            )
        return None


class BomLine(_Frozen):
    """One component of a bill of materials: `quantity` per batch of the parent, of which
    `scrap_percent` is lost (so more is needed: quantity / (1 - scrap_percent / 100))."""

    component: str = Field(pattern=CODE_PATTERN)
    quantity: Decimal = Field(gt=0)
    scrap_percent: Decimal = Field(default=Decimal(0), ge=0, lt=100)


class Bom(_Frozen):
    """The bill of materials of `parent`: one batch yields `output_quantity` of it."""

    parent: str = Field(pattern=CODE_PATTERN)
    output_quantity: Decimal = Field(default=Decimal(1), gt=0)
    lines: tuple[BomLine, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Self:
        seen: set[str] = set()
        for line in self.lines:
            if line.component in seen:
                raise ValueError(
                    f"bill of materials of {self.parent}: component {line.component} is listed "
                    "twice; give it once with the summed quantity"
                )
            seen.add(line.component)
        return self


def find_cycle(boms: Iterable[Bom]) -> tuple[str, ...] | None:
    """A cycle in the bills of materials as the path that closes it (first == last), or None.
    Deterministic: parents and components are visited in code order."""
    children = {bom.parent: sorted(line.component for line in bom.lines) for bom in boms}
    done: set[str] = set()
    for root in sorted(children):
        if root in done:
            continue
        # Iterative depth-first search: `path` is the current chain, `on_path` its members.
        path = [root]
        on_path = {root}
        stack = [iter(children.get(root, ()))]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                continue
            if child in on_path:
                return (*path[path.index(child) :], child)
            if child in done:
                continue
            path.append(child)
            on_path.add(child)
            stack.append(iter(children.get(child, ())))
    return None


def low_level_codes(codes: Iterable[str], boms: Iterable[Bom]) -> dict[str, int]:
    """Each material's low-level code: the deepest level it appears at (0: no component of
    anything). The bills of materials must be free of cycles (`find_cycle`)."""
    boms = list(boms)
    level = dict.fromkeys(codes, 0)
    children = {bom.parent: [line.component for line in bom.lines] for bom in boms}
    # Kahn's order: a material's level is final once every parent using it has been placed.
    parents_left = dict.fromkeys(level, 0)
    for components in children.values():
        for c in components:
            parents_left[c] += 1
    ready = sorted(code for code, n in parents_left.items() if n == 0)
    while ready:
        code = ready.pop()
        for c in children.get(code, ()):
            level[c] = max(level[c], level[code] + 1)
            parents_left[c] -= 1
            if parents_left[c] == 0:
                ready.append(c)
    return level


class MasterData(_Frozen):
    """Materials and bills of materials checked together: codes unique, every bill of a made
    or finished material, components known, no cycle."""

    materials: tuple[Material, ...]
    boms: tuple[Bom, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Self:
        codes: set[str] = set()
        for m in self.materials:
            if m.code in codes:
                raise ValueError(f"material {m.code} is given twice")
            codes.add(m.code)
        by_code = {m.code: m for m in self.materials}
        parents: set[str] = set()
        for bom in self.boms:
            if bom.parent in parents:
                raise ValueError(f"material {bom.parent} has two bills of materials")
            parents.add(bom.parent)
        unknown = sorted(
            {bom.parent for bom in self.boms if bom.parent not in by_code}
            | {ln.component for bom in self.boms for ln in bom.lines if ln.component not in by_code}
        )
        if unknown:
            raise ValueError("bills of materials name unknown materials: " + ", ".join(unknown))
        bought = sorted(bom.parent for bom in self.boms if by_code[bom.parent].bought)
        if bought:
            raise ValueError(
                "bought materials cannot have a bill of materials: " + ", ".join(bought)
            )
        cycle = find_cycle(self.boms)
        if cycle is not None:
            raise ValueError("bills of materials form a cycle: " + " -> ".join(cycle))
        return self

    def material(self, code: str) -> Material:
        for m in self.materials:
            if m.code == code:
                return m
        raise MasterDataError(f"unknown material {code}")

    def by_code(self) -> Mapping[str, Material]:
        return {m.code: m for m in self.materials}

    def bom_of(self) -> Mapping[str, Bom]:
        return {bom.parent: bom for bom in self.boms}

    def low_level_codes(self) -> dict[str, int]:
        """Each material's low-level code (see the module docstring)."""
        return low_level_codes((m.code for m in self.materials), self.boms)
