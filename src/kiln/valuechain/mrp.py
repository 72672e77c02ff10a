"""Material planning (MRP-lite): from sales order lines, stock and open orders to proposed work
and purchase orders, each with the reasons a planner needs to confirm it.

A run is deterministic and in daily buckets: the same inputs, in any order, give the same
proposals. The rules, exactly:

1. **Buckets.** Time is counted in days. A demand or open order dated before `today` counts on
   `today` (past-due demand is needed now, overdue supply is expected now).
2. **Level by level.** Materials are planned in the order of their low-level code (0, the
   finished goods, first; see `kiln.valuechain.master`), then of their code. So a component's
   gross demand holds all its parents' planned orders before it is netted.
3. **Dependent demand.** A planned order of `P` of a parent whose bill makes `O` per batch
   needs, of each component line (quantity `q`, scrap `s` percent),
   `P x q / O / (1 - s / 100)`, computed exactly and rounded UP (towards +infinity) to the
   component's unit precision (`decimals` places: whole pieces for "pcs"; 0.1 kg for a kg
   unit with one decimal). Each planned order is rounded on its own. It is needed on the
   parent order's release date, and pegged to that proposal.
4. **Netting.** Projected available starts at stock on hand - reservations - safety stock. Day
   by day, it rises by the open orders due that day and falls by that day's gross demand. A net
   requirement arises on the first day projected available is below zero (day of need) and is
   what brings it back to zero; if it starts below zero (reservations or safety stock above the
   stock), the first day is today. Planned orders raise it from their day of need on, and the
   walk goes on to the next day. Open work orders are taken to have their components reserved
   already: they add no dependent demand.
5. **Lot sizing.** While the net requirement left exceeds `lot_max`, an order of `lot_max` is
   proposed and the rest carried; the last (or only) order is `max(rest, lot_min)` rounded UP
   to a whole multiple of `lot_multiple`. So every order respects the minimum, the maximum and
   the multiple. Master data whose `lot_max` is not a multiple of `lot_multiple`, or is below
   `lot_min`, is refused before planning (`Material`). Any excess is carried forward as
   projected available.
6. **Dates.** due = day of need - safety lead days; release = due - (purchasing lead + supplier
   lead) days for bought materials (raw, purchased), due - manufacturing lead days for made ones
   (made, finished). A release before today is planned for today and flagged `late`, with the
   release the lead times asked for kept in the explanation; a due date before today becomes
   today too. Days are calendar days.
7. **One day, one proposal.** The orders of one day of need are never merged with another day's:
   one proposal (or one split set, by rule 5) per material per day of need, pegged to exactly
   the demands due that day.

Pure: no I/O, no clock (`today` is given).
"""

from __future__ import annotations

import functools
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from pydantic import BaseModel, ConfigDict, Field

from kiln.valuechain.master import BOUGHT_KINDS, MasterData, Material

_ID = Field(min_length=1, max_length=128)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MrpInputError(ValueError):
    """Planning inputs that do not fit the master data; the message names them."""


class OrderKind(StrEnum):
    WORK_ORDER = "work_order"
    PURCHASE_ORDER = "purchase_order"


class Demand(_Frozen):
    """A gross demand: a sales order line for `quantity` of `material` due on `due`."""

    id: str = _ID
    material: str
    quantity: Decimal = Field(gt=0)
    due: date


class OpenSupply(_Frozen):
    """An open work or purchase order that will bring `quantity` of `material` on `due`."""

    id: str = _ID
    kind: OrderKind
    material: str
    quantity: Decimal = Field(gt=0)
    due: date


class PegKind(StrEnum):
    SALES_ORDER = "sales_order"
    PROPOSAL = "proposal"  # a parent's planned order (dependent demand)


class Peg(_Frozen):
    """One demand a proposal covers: a sales order line or a parent's planned order, with the
    quantity it asks for and the date it asks for it (before bucketing)."""

    kind: PegKind
    id: str
    quantity: Decimal
    needed: date


class LotRule(StrEnum):
    NET = "net"  # the quantity is the net requirement as it is
    LOT_MIN = "lot_min"  # raised to the minimum lot
    LOT_MULTIPLE = "lot_multiple"  # rounded up to a whole multiple
    LOT_MAX = "lot_max"  # a full maximum lot of a split requirement


class Explanation(_Frozen):
    """Why a proposal is what it is. Netting holds, on the day of need before its proposals:
    projected_available = stock_on_hand - reserved - safety_stock + open_supply_quantity
    + planned_before - gross_requirement (< 0), and net_requirement = -projected_available."""

    pegging: tuple[Peg, ...]
    stock_on_hand: Decimal
    reserved: Decimal
    safety_stock: Decimal
    open_supply: tuple[str, ...] = Field(description="open orders due by the day of need")
    open_supply_quantity: Decimal
    planned_before: Decimal = Field(description="this material's proposals of earlier days")
    gross_requirement: Decimal = Field(description="all gross demand through the day of need")
    projected_available: Decimal
    net_requirement: Decimal
    lot_rules: tuple[LotRule, ...]
    split: int = Field(ge=1, description="this order's place in its day's set, from 1")
    splits: int = Field(ge=1, description="how many orders the day's requirement took")
    need: date
    safety_lead_days: int
    purchasing_lead_days: int
    supplier_lead_days: int
    manufacturing_lead_days: int
    planned_release: date = Field(description="the release the lead times ask for")
    late: bool


class Proposal(_Frozen):
    """A proposed work or purchase order, for a planner to confirm."""

    id: str
    kind: OrderKind
    material: str
    quantity: Decimal
    release: date
    due: date
    supplier: str | None = None
    explanation: Explanation

    def summary(self) -> str:
        """The explanation in one sentence, for a planner."""
        e = self.explanation
        pegs = ", ".join(f"{p.id} ({p.quantity} on {p.needed})" for p in e.pegging) or (
            "reservations and safety stock"
        )
        supply = ", ".join(e.open_supply) or "none"
        rules = " then ".join(r.value for r in e.lot_rules)
        late = f" LATE (lead times ask for release on {e.planned_release})" if e.late else ""
        return (
            f"{self.kind.value.replace('_', ' ')} for {self.quantity} {self.material}"
            f" ({e.split} of {e.splits}), release {self.release}, due {self.due}{late}: "
            f"needed on {e.need} for {pegs}; projected available {e.projected_available} from "
            f"stock {e.stock_on_hand} - reserved {e.reserved} - safety {e.safety_stock}"
            f" + open supply {e.open_supply_quantity} ({supply}) + planned {e.planned_before}"
            f" - gross {e.gross_requirement}; lot rule: {rules}"
        )


class MrpPlan(_Frozen):
    today: date
    proposals: tuple[Proposal, ...]


def ceil_to_precision(value: Fraction, decimals: int) -> Decimal:
    """`value` rounded up (towards +infinity) to `decimals` decimal places."""
    scale = 10**decimals
    return Decimal(math.ceil(value * scale)).scaleb(-decimals)


def dependent_quantity(
    parent_quantity: Decimal,
    line_quantity: Decimal,
    output_quantity: Decimal,
    scrap_percent: Decimal,
    decimals: int,
) -> Decimal:
    """Rule 3: parent x line / output / (1 - scrap / 100), exact, rounded up to the unit."""
    ratio = _line_ratio(line_quantity, output_quantity, scrap_percent)
    # Integers all the way: the quantities' exact Fractions and one ceiling division (a
    # million Fraction products were a sixth of a large plan).
    parent = Fraction(parent_quantity)
    scale = 10**decimals
    numerator = parent.numerator * ratio.numerator * scale
    denominator = parent.denominator * ratio.denominator
    return Decimal(-(-numerator // denominator)).scaleb(-decimals)


@functools.lru_cache(maxsize=65_536)
def _line_ratio(
    line_quantity: Decimal, output_quantity: Decimal, scrap_percent: Decimal
) -> Fraction:
    """line x 100 / (output x (100 - scrap)): one bill line's need per parent unit, exact."""
    return (
        Fraction(line_quantity)
        * 100
        / (Fraction(output_quantity) * (100 - Fraction(scrap_percent)))
    )


def lot_sizes(material: Material, net: Decimal) -> list[tuple[Decimal, tuple[LotRule, ...]]]:
    """Rule 5: the orders covering a net requirement `net` > 0, each with the rules that set
    its quantity."""
    orders: list[tuple[Decimal, tuple[LotRule, ...]]] = []
    rest = net
    if material.lot_max is not None:
        while rest > material.lot_max:
            orders.append((material.lot_max, (LotRule.LOT_MAX,)))
            rest -= material.lot_max
    rules: list[LotRule] = []
    quantity = rest
    if quantity < material.lot_min:
        quantity = material.lot_min
        rules.append(LotRule.LOT_MIN)
    if material.lot_multiple is not None:
        multiple = material.lot_multiple
        rounded = Decimal(math.ceil(Fraction(quantity) / Fraction(multiple))) * multiple
        if rounded != quantity:
            quantity = rounded
            rules.append(LotRule.LOT_MULTIPLE)
    orders.append((quantity, tuple(rules) or (LotRule.NET,)))
    return orders


def _check_inputs(
    master: MasterData,
    demands: tuple[Demand, ...],
    open_supply: tuple[OpenSupply, ...],
    stock: Mapping[str, Decimal],
    reserved: Mapping[str, Decimal],
) -> None:
    by_code = master.by_code()
    named = {d.material for d in demands} | {s.material for s in open_supply}
    unknown = sorted((named | set(stock) | set(reserved)) - set(by_code))
    if unknown:
        raise MrpInputError("planning inputs name unknown materials: " + ", ".join(unknown))
    for what, ids in (
        ("demand", [d.id for d in demands]),
        ("open order", [s.id for s in open_supply]),
    ):
        twice = sorted(i for i, n in Counter(ids).items() if n > 1)
        if twice:
            raise MrpInputError(f"{what} ids given more than once: " + ", ".join(twice))
    problems: list[str] = []
    for name, amounts in (("stock", stock), ("reserved", reserved)):
        for code, quantity in sorted(amounts.items()):
            if quantity < 0:
                problems.append(f"{name} of {code} is negative ({quantity})")
            else:
                problems.append(by_code[code].quantity_precision_error(name, quantity) or "")
    items: list[Demand | OpenSupply] = [*demands, *open_supply]
    for item in items:
        problems.append(
            by_code[item.material].quantity_precision_error(item.id, item.quantity) or ""
        )
    problems = [p for p in problems if p]
    if problems:
        raise MrpInputError("; ".join(problems))


def run_mrp(
    master: MasterData,
    *,
    today: date,
    demands: Iterable[Demand] = (),
    open_supply: Iterable[OpenSupply] = (),
    stock: Mapping[str, Decimal] | None = None,
    reserved: Mapping[str, Decimal] | None = None,
) -> MrpPlan:
    """Plan `master`'s materials by the rules of the module docstring. `stock` and `reserved`
    map material codes to quantities (missing: 0). MrpInputError if an input does not fit."""
    demands = tuple(demands)
    open_supply = tuple(open_supply)
    stock = dict(stock or {})
    reserved = dict(reserved or {})
    _check_inputs(master, demands, open_supply, stock, reserved)
    by_code = master.by_code()
    bom_of = master.bom_of()
    levels = master.low_level_codes()

    # Gross demand per material and bucket day; dependent demand is added as parents are planned.
    gross: dict[str, dict[date, list[Peg]]] = defaultdict(lambda: defaultdict(list))
    for d in demands:
        peg = Peg(kind=PegKind.SALES_ORDER, id=d.id, quantity=d.quantity, needed=d.due)
        gross[d.material][max(d.due, today)].append(peg)
    supply: dict[str, dict[date, list[OpenSupply]]] = defaultdict(lambda: defaultdict(list))
    for s in open_supply:
        supply[s.material][max(s.due, today)].append(s)

    proposals: list[Proposal] = []
    for code in sorted(by_code, key=lambda c: (levels[c], c)):
        material = by_code[code]
        on_hand = stock.get(code, Decimal(0))
        held = reserved.get(code, Decimal(0))
        projected = on_hand - held - material.safety_stock
        open_ids: list[str] = []
        open_quantity = Decimal(0)
        planned = Decimal(0)
        gross_total = Decimal(0)
        for day in sorted({today} | set(gross[code]) | set(supply[code])):
            for s in sorted(supply[code].get(day, ()), key=lambda s: s.id):
                projected += s.quantity
                open_quantity += s.quantity
                open_ids.append(s.id)
            pegs = tuple(sorted(gross[code].get(day, ()), key=lambda p: (p.kind, p.id)))
            for p in pegs:
                projected -= p.quantity
                gross_total += p.quantity
            if projected >= 0:
                continue
            net = -projected
            orders = lot_sizes(material, net)
            for split, (quantity, rules) in enumerate(orders, start=1):
                proposal = _propose(
                    material,
                    today=today,
                    need=day,
                    quantity=quantity,
                    explanation={
                        "pegging": pegs,
                        "stock_on_hand": on_hand,
                        "reserved": held,
                        "safety_stock": material.safety_stock,
                        "open_supply": tuple(open_ids),
                        "open_supply_quantity": open_quantity,
                        "planned_before": planned,
                        "gross_requirement": gross_total,
                        "projected_available": projected,
                        "net_requirement": net,
                        "lot_rules": rules,
                        "split": split,
                        "splits": len(orders),
                    },
                )
                proposals.append(proposal)
                bom = bom_of.get(code)
                if bom is None:
                    continue
                for line in bom.lines:
                    component = by_code[line.component]
                    need = dependent_quantity(
                        quantity,
                        line.quantity,
                        bom.output_quantity,
                        line.scrap_percent,
                        component.decimals,
                    )
                    gross[line.component][proposal.release].append(
                        Peg(
                            kind=PegKind.PROPOSAL,
                            id=proposal.id,
                            quantity=need,
                            needed=proposal.release,
                        )
                    )
            total = sum((q for q, _ in orders), Decimal(0))
            projected += total
            planned += total
    return MrpPlan(today=today, proposals=tuple(proposals))


def _propose(
    material: Material,
    *,
    today: date,
    need: date,
    quantity: Decimal,
    explanation: dict[str, object],
) -> Proposal:
    """Rule 6: a proposal's dates from its day of need and the material's lead times."""
    bought = material.kind in BOUGHT_KINDS
    due = need - timedelta(days=material.safety_lead_days)
    lead = (
        material.purchasing_lead_days + material.supplier_lead_days
        if bought
        else material.manufacturing_lead_days
    )
    planned_release = due - timedelta(days=lead)
    split = explanation["split"]
    return Proposal(
        id=f"plan-{material.code}-{need:%Y%m%d}-{split}",
        kind=OrderKind.PURCHASE_ORDER if bought else OrderKind.WORK_ORDER,
        material=material.code,
        quantity=quantity,
        release=max(planned_release, today),
        due=max(due, today),
        supplier=material.supplier if bought else None,
        explanation=Explanation.model_validate(
            {
                **explanation,
                "need": need,
                "safety_lead_days": material.safety_lead_days,
                "purchasing_lead_days": material.purchasing_lead_days if bought else 0,
                "supplier_lead_days": material.supplier_lead_days if bought else 0,
                "manufacturing_lead_days": 0 if bought else material.manufacturing_lead_days,
                "planned_release": planned_release,
                "late": planned_release < today,
            }
        ),
    )
