"""Material planning (issue 16): the scripted scenario, hand-computed, and the rules one by one.

The scenario's numbers are worked out by hand in the comments from the rules written in
`kiln.valuechain.mrp`'s docstring, not by running the code; the test asserts every field of
every proposal.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal as D
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kiln.valuechain.master import Bom, BomLine, MasterData, Material, MaterialKind
from kiln.valuechain.mrp import (
    Demand,
    Explanation,
    LotRule,
    MrpInputError,
    MrpPlan,
    OpenSupply,
    OrderKind,
    Peg,
    PegKind,
    Proposal,
    dependent_quantity,
    lot_sizes,
    run_mrp,
)

TODAY = date(2026, 3, 2)  # a Monday
WO, PO = OrderKind.WORK_ORDER, OrderKind.PURCHASE_ORDER
SO, PP = PegKind.SALES_ORDER, PegKind.PROPOSAL


def d(day: int) -> date:
    """A day of March 2026."""
    return date(2026, 3, day)


# --- The scripted scenario ---------------------------------------------------------------------
#
# A desk lamp (LAMP, finished) is made of one lamp head (HEAD, made) and two cords (CORD,
# purchased); a head is moulded from 0.3 kg of resin (RESIN, raw, kg to 0.1 kg) with 10 % scrap.
#
#   material  kind       lead days                      safety  lot min/max/multiple  stock
#   LAMP      finished   manufacturing 2, safety 1      0       -/-/5                 20 (5 reserved)
#   HEAD      made       manufacturing 3                0       40/100/20             10
#   CORD      purchased  purchasing 1 + supplier 4,     20      -/-/100               60
#                        safety 2
#   RESIN     raw        purchasing 2 + supplier 14,    0       25/-/5                12.0 kg
#                        safety 1
#
# Low-level codes: LAMP 0; HEAD and CORD 1; RESIN 2. Planned in that order, CORD before HEAD
# (code order within a level).
#
# Sales orders: SO-1 30 LAMP and SO-2 12 LAMP due Mon 16 March, SO-3 146 LAMP due Mon 23 March.
# Open orders: WO-5 10 HEAD due 12 March; PO-7 30 CORD due 9 March, PO-8 40 CORD due 18 March;
# PO-9 10 kg RESIN due 5 March. Today is Mon 2 March.

MATERIALS = (
    Material(
        code="LAMP",
        name="Desk lamp",
        kind=MaterialKind.FINISHED,
        manufacturing_lead_days=2,
        safety_lead_days=1,
        lot_multiple=D(5),
    ),
    Material(
        code="HEAD",
        name="Lamp head",
        kind=MaterialKind.MADE,
        manufacturing_lead_days=3,
        lot_min=D(40),
        lot_max=D(100),
        lot_multiple=D(20),
    ),
    Material(
        code="CORD",
        name="Power cord",
        kind=MaterialKind.PURCHASED,
        purchasing_lead_days=1,
        supplier="ELEC",
        supplier_lead_days=4,
        safety_lead_days=2,
        safety_stock=D(20),
        lot_multiple=D(100),
    ),
    Material(
        code="RESIN",
        name="Moulding resin",
        unit="kg",
        decimals=1,
        kind=MaterialKind.RAW,
        purchasing_lead_days=2,
        supplier="POLY",
        supplier_lead_days=14,
        safety_lead_days=1,
        lot_min=D(25),
        lot_multiple=D(5),
    ),
)
BOMS = (
    Bom(
        parent="LAMP",
        lines=(BomLine(component="HEAD", quantity=D(1)), BomLine(component="CORD", quantity=D(2))),
    ),
    Bom(parent="HEAD", lines=(BomLine(component="RESIN", quantity=D("0.3"), scrap_percent=D(10)),)),
)
DEMANDS = (
    Demand(id="SO-1", material="LAMP", quantity=D(30), due=d(16)),
    Demand(id="SO-2", material="LAMP", quantity=D(12), due=d(16)),
    Demand(id="SO-3", material="LAMP", quantity=D(146), due=d(23)),
)
OPEN = (
    OpenSupply(id="WO-5", kind=WO, material="HEAD", quantity=D(10), due=d(12)),
    OpenSupply(id="PO-7", kind=PO, material="CORD", quantity=D(30), due=d(9)),
    OpenSupply(id="PO-8", kind=PO, material="CORD", quantity=D(40), due=d(18)),
    OpenSupply(id="PO-9", kind=PO, material="RESIN", quantity=D(10), due=d(5)),
)
STOCK = {"LAMP": D(20), "HEAD": D(10), "CORD": D(60), "RESIN": D("12.0")}
RESERVED = {"LAMP": D(5)}


def explanation(**fields: object) -> Explanation:
    return Explanation.model_validate(fields)


# LAMP (level 0). Projected available starts at 20 - 5 reserved - 0 safety = 15.
#   16 March: gross 30 + 12 = 42 -> 15 - 42 = -27: net 27. No min; 27 rounded up to a multiple
#     of 5 is 30 (rule lot_multiple). Projected 3. Due 16 - 1 safety = 15 March; release
#     15 - 2 manufacturing = 13 March.
#   23 March: gross 146 -> 3 - 146 = -143: net 143 -> 145 (multiple of 5). Projected 2.
#     Due 22 March, release 20 March.
LAMP_16 = Proposal(
    id="plan-LAMP-20260316-1",
    kind=WO,
    material="LAMP",
    quantity=D(30),
    release=d(13),
    due=d(15),
    supplier=None,
    explanation=explanation(
        pegging=(
            Peg(kind=SO, id="SO-1", quantity=D(30), needed=d(16)),
            Peg(kind=SO, id="SO-2", quantity=D(12), needed=d(16)),
        ),
        stock_on_hand=D(20),
        reserved=D(5),
        safety_stock=D(0),
        open_supply=(),
        open_supply_quantity=D(0),
        planned_before=D(0),
        gross_requirement=D(42),
        projected_available=D(-27),
        net_requirement=D(27),
        lot_rules=(LotRule.LOT_MULTIPLE,),
        split=1,
        splits=1,
        need=d(16),
        safety_lead_days=1,
        purchasing_lead_days=0,
        supplier_lead_days=0,
        manufacturing_lead_days=2,
        planned_release=d(13),
        late=False,
    ),
)
LAMP_23 = Proposal(
    id="plan-LAMP-20260323-1",
    kind=WO,
    material="LAMP",
    quantity=D(145),
    release=d(20),
    due=d(22),
    supplier=None,
    explanation=explanation(
        pegging=(Peg(kind=SO, id="SO-3", quantity=D(146), needed=d(23)),),
        stock_on_hand=D(20),
        reserved=D(5),
        safety_stock=D(0),
        open_supply=(),
        open_supply_quantity=D(0),
        planned_before=D(30),
        gross_requirement=D(188),  # 42 + 146
        projected_available=D(-143),  # 20 - 5 - 0 + 0 + 30 - 188
        net_requirement=D(143),
        lot_rules=(LotRule.LOT_MULTIPLE,),
        split=1,
        splits=1,
        need=d(23),
        safety_lead_days=1,
        purchasing_lead_days=0,
        supplier_lead_days=0,
        manufacturing_lead_days=2,
        planned_release=d(20),
        late=False,
    ),
)
# CORD (level 1). Dependent demand 2 per lamp at the lamp orders' releases: 60 on 13 March,
# 290 on 20 March. Projected starts at 60 - 0 - 20 safety = 40.
#   9 March: + PO-7 30 -> 70.   13 March: - 60 -> 10 (no need).   18 March: + PO-8 40 -> 50.
#   20 March: - 290 -> -240: net 240 -> 300 (multiple of 100). Projected 60.
#   Due 20 - 2 safety = 18 March; release 18 - (1 purchasing + 4 supplier) = 13 March.
CORD_20 = Proposal(
    id="plan-CORD-20260320-1",
    kind=PO,
    material="CORD",
    quantity=D(300),
    release=d(13),
    due=d(18),
    supplier="ELEC",
    explanation=explanation(
        pegging=(Peg(kind=PP, id="plan-LAMP-20260323-1", quantity=D(290), needed=d(20)),),
        stock_on_hand=D(60),
        reserved=D(0),
        safety_stock=D(20),
        open_supply=("PO-7", "PO-8"),
        open_supply_quantity=D(70),
        planned_before=D(0),
        gross_requirement=D(350),  # 60 + 290
        projected_available=D(-240),  # 60 - 0 - 20 + 70 + 0 - 350
        net_requirement=D(240),
        lot_rules=(LotRule.LOT_MULTIPLE,),
        split=1,
        splits=1,
        need=d(20),
        safety_lead_days=2,
        purchasing_lead_days=1,
        supplier_lead_days=4,
        manufacturing_lead_days=0,
        planned_release=d(13),
        late=False,
    ),
)
# HEAD (level 1). Dependent demand 1 per lamp: 30 on 13 March, 145 on 20 March. Starts at 10.
#   12 March: + WO-5 10 -> 20.
#   13 March: - 30 -> -10: net 10, below the minimum 40 -> 40 (a multiple of 20 already: rule
#     lot_min only). Projected 30. Due 13 March (no safety lead), release 13 - 3 = 10 March.
#   20 March: - 145 -> -115: net 115 is above the maximum 100, so one order of 100 (lot_max),
#     rest 15 -> raised to the minimum 40 (a multiple of 20). Projected -115 + 140 = 25.
#     Both due 20 March, released 17 March.
HEAD_13 = Proposal(
    id="plan-HEAD-20260313-1",
    kind=WO,
    material="HEAD",
    quantity=D(40),
    release=d(10),
    due=d(13),
    supplier=None,
    explanation=explanation(
        pegging=(Peg(kind=PP, id="plan-LAMP-20260316-1", quantity=D(30), needed=d(13)),),
        stock_on_hand=D(10),
        reserved=D(0),
        safety_stock=D(0),
        open_supply=("WO-5",),
        open_supply_quantity=D(10),
        planned_before=D(0),
        gross_requirement=D(30),
        projected_available=D(-10),
        net_requirement=D(10),
        lot_rules=(LotRule.LOT_MIN,),
        split=1,
        splits=1,
        need=d(13),
        safety_lead_days=0,
        purchasing_lead_days=0,
        supplier_lead_days=0,
        manufacturing_lead_days=3,
        planned_release=d(10),
        late=False,
    ),
)
_HEAD_20_EXPLANATION = {
    "pegging": (Peg(kind=PP, id="plan-LAMP-20260323-1", quantity=D(145), needed=d(20)),),
    "stock_on_hand": D(10),
    "reserved": D(0),
    "safety_stock": D(0),
    "open_supply": ("WO-5",),
    "open_supply_quantity": D(10),
    "planned_before": D(40),
    "gross_requirement": D(175),  # 30 + 145
    "projected_available": D(-115),  # 10 + 10 + 40 - 175
    "net_requirement": D(115),
    "splits": 2,
    "need": d(20),
    "safety_lead_days": 0,
    "purchasing_lead_days": 0,
    "supplier_lead_days": 0,
    "manufacturing_lead_days": 3,
    "planned_release": d(17),
    "late": False,
}
HEAD_20_1 = Proposal(
    id="plan-HEAD-20260320-1",
    kind=WO,
    material="HEAD",
    quantity=D(100),
    release=d(17),
    due=d(20),
    explanation=explanation(**_HEAD_20_EXPLANATION, lot_rules=(LotRule.LOT_MAX,), split=1),
)
HEAD_20_2 = Proposal(
    id="plan-HEAD-20260320-2",
    kind=WO,
    material="HEAD",
    quantity=D(40),
    release=d(17),
    due=d(20),
    explanation=explanation(**_HEAD_20_EXPLANATION, lot_rules=(LotRule.LOT_MIN,), split=2),
)
# RESIN (level 2). Per head 0.3 / (1 - 0.10) = 1/3 kg, rounded up to 0.1 kg per head order:
#   40 heads released 10 March -> 13.33.. -> 13.4 kg on 10 March;
#   100 heads released 17 March -> 33.33.. -> 33.4 kg; 40 heads on 17 March -> 13.4 kg
#   (each order rounded on its own: 46.8 kg on 17 March, not 46.7).
# Starts at 12.0. 5 March: + PO-9 10 -> 22.0. 10 March: - 13.4 -> 8.6.
#   17 March: - 46.8 -> -38.2: net 38.2, above the minimum 25 -> 40 (multiple of 5).
#   Due 17 - 1 safety = 16 March; release 16 - (2 + 14) = 28 February, before today: planned
#   for today, 2 March, and flagged late.
RESIN_17 = Proposal(
    id="plan-RESIN-20260317-1",
    kind=PO,
    material="RESIN",
    quantity=D(40),
    release=TODAY,
    due=d(16),
    supplier="POLY",
    explanation=explanation(
        pegging=(
            Peg(kind=PP, id="plan-HEAD-20260320-1", quantity=D("33.4"), needed=d(17)),
            Peg(kind=PP, id="plan-HEAD-20260320-2", quantity=D("13.4"), needed=d(17)),
        ),
        stock_on_hand=D("12.0"),
        reserved=D(0),
        safety_stock=D(0),
        open_supply=("PO-9",),
        open_supply_quantity=D(10),
        planned_before=D(0),
        gross_requirement=D("60.2"),  # 13.4 + 33.4 + 13.4
        projected_available=D("-38.2"),  # 12.0 + 10 - 60.2
        net_requirement=D("38.2"),
        lot_rules=(LotRule.LOT_MULTIPLE,),
        split=1,
        splits=1,
        need=d(17),
        safety_lead_days=1,
        purchasing_lead_days=2,
        supplier_lead_days=14,
        manufacturing_lead_days=0,
        planned_release=date(2026, 2, 28),
        late=True,
    ),
)
EXPECTED = (LAMP_16, LAMP_23, CORD_20, HEAD_13, HEAD_20_1, HEAD_20_2, RESIN_17)


def scenario_master() -> MasterData:
    return MasterData(materials=MATERIALS, boms=BOMS)


def run_scenario() -> MrpPlan:
    return run_mrp(
        scenario_master(),
        today=TODAY,
        demands=DEMANDS,
        open_supply=OPEN,
        stock=STOCK,
        reserved=RESERVED,
    )


def test_scenario_low_level_codes() -> None:
    assert scenario_master().low_level_codes() == {"LAMP": 0, "HEAD": 1, "CORD": 1, "RESIN": 2}


def test_scenario_gives_exactly_the_hand_computed_proposals() -> None:
    plan = run_scenario()
    assert plan.today == TODAY
    for got, expected in zip(plan.proposals, EXPECTED, strict=True):
        assert got == expected, got.id
    assert plan.proposals == EXPECTED


def test_scenario_explanations_add_up() -> None:
    for p in run_scenario().proposals:
        e = p.explanation
        assert e.projected_available == (
            e.stock_on_hand
            - e.reserved
            - e.safety_stock
            + e.open_supply_quantity
            + e.planned_before
            - e.gross_requirement
        )
        assert e.net_requirement == -e.projected_available > 0


def test_summary_names_demand_stock_rule_and_lateness() -> None:
    text = RESIN_17.summary()
    for part in ("plan-HEAD-20260320-1", "PO-9", "stock 12.0", "lot_multiple", "LATE"):
        assert part in text
    assert "LATE" not in LAMP_16.summary()


# --- Determinism -------------------------------------------------------------------------------


def test_same_input_same_output_in_any_order() -> None:
    first = run_scenario()
    assert run_scenario() == first
    rng = random.Random(16)
    for _ in range(10):
        materials, boms = list(MATERIALS), list(BOMS)
        demands, supply = list(DEMANDS), list(OPEN)
        stock = list(STOCK.items())
        for items in (materials, boms, demands, supply, stock):
            rng.shuffle(items)
        shuffled = run_mrp(
            MasterData(materials=tuple(materials), boms=tuple(boms)),
            today=TODAY,
            demands=demands,
            open_supply=supply,
            stock=dict(stock),
            reserved=RESERVED,
        )
        assert shuffled == first


# --- Master data -------------------------------------------------------------------------------


def _made(code: str) -> Material:
    return Material(code=code, kind=MaterialKind.MADE)


def _line(component: str) -> BomLine:
    return BomLine(component=component, quantity=D(1))


def test_cycle_is_refused_naming_it() -> None:
    materials = tuple(_made(c) for c in "ABCD")
    boms = (
        Bom(parent="A", lines=(_line("B"), _line("D"))),
        Bom(parent="B", lines=(_line("C"),)),
        Bom(parent="C", lines=(_line("A"),)),
    )
    with pytest.raises(ValidationError, match="form a cycle: A -> B -> C -> A"):
        MasterData(materials=materials, boms=boms)


def test_self_cycle_is_refused() -> None:
    with pytest.raises(ValidationError, match="form a cycle: A -> A"):
        MasterData(materials=(_made("A"),), boms=(Bom(parent="A", lines=(_line("A"),)),))


def test_shared_component_is_no_cycle_and_takes_its_deepest_level() -> None:
    # D is used by A directly (level 1) and through B and C (level 3): its code is 3.
    materials = tuple(_made(c) for c in "ABCD")
    boms = (
        Bom(parent="A", lines=(_line("B"), _line("D"))),
        Bom(parent="B", lines=(_line("C"),)),
        Bom(parent="C", lines=(_line("D"),)),
    )
    master = MasterData(materials=materials, boms=boms)
    assert master.low_level_codes() == {"A": 0, "B": 1, "C": 2, "D": 3}


def test_unknown_components_are_named() -> None:
    with pytest.raises(ValidationError, match="unknown materials: X, Y"):
        MasterData(materials=(_made("A"),), boms=(Bom(parent="A", lines=(_line("Y"), _line("X"))),))


def test_bought_material_has_no_bom() -> None:
    bought = Material(code="P", kind=MaterialKind.PURCHASED)
    with pytest.raises(ValidationError, match="bought materials cannot have a bill"):
        MasterData(materials=(bought, _made("A")), boms=(Bom(parent="P", lines=(_line("A"),)),))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"lot_max": D(25), "lot_multiple": D(10)}, "lot_max 25 is not a multiple of"),
        ({"lot_min": D(50), "lot_max": D(40)}, "lot_max 40 is below lot_min 50"),
        ({"decimals": 2}, "unit pcs is counted"),
        ({"lot_min": D("2.5")}, "lot_min 2.5 has more decimal places"),
        ({"supplier": "S1"}, "a supplier is for bought materials only"),
    ],
)
def test_lot_sizes_that_cannot_all_hold_are_refused(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Material.model_validate({"code": "M", "kind": "made", **fields})


def test_inputs_that_do_not_fit_are_refused() -> None:
    master = scenario_master()
    with pytest.raises(MrpInputError, match="unknown materials: NOPE"):
        run_mrp(
            master, today=TODAY, demands=[Demand(id="S", material="NOPE", quantity=D(1), due=TODAY)]
        )
    with pytest.raises(MrpInputError, match="demand ids given more than once: S"):
        run_mrp(master, today=TODAY, demands=[DEMANDS[0].model_copy(update={"id": "S"})] * 2)
    with pytest.raises(MrpInputError, match=r"S: quantity 2.5 of LAMP has more decimal places"):
        run_mrp(
            master,
            today=TODAY,
            demands=[Demand(id="S", material="LAMP", quantity=D("2.5"), due=TODAY)],
        )
    with pytest.raises(MrpInputError, match="stock of CORD is negative"):
        run_mrp(master, today=TODAY, stock={"CORD": D(-1)})


# --- Rules one by one --------------------------------------------------------------------------


def _single(**fields: object) -> MasterData:
    return MasterData(
        materials=(Material.model_validate({"code": "M", "kind": "purchased", **fields}),)
    )


def test_lot_max_splits_into_orders_that_each_respect_min_max_and_multiple() -> None:
    material = Material(
        code="M", kind=MaterialKind.PURCHASED, lot_min=D(30), lot_max=D(100), lot_multiple=D(10)
    )
    # 250: two full lots of 100, rest 50 (a multiple already).
    assert lot_sizes(material, D(250)) == [
        (D(100), (LotRule.LOT_MAX,)),
        (D(100), (LotRule.LOT_MAX,)),
        (D(50), (LotRule.NET,)),
    ]
    # 205: two full lots, rest 5 -> raised to the minimum 30 (already a multiple of 10).
    assert lot_sizes(material, D(205)) == [
        (D(100), (LotRule.LOT_MAX,)),
        (D(100), (LotRule.LOT_MAX,)),
        (D(30), (LotRule.LOT_MIN,)),
    ]
    # Exactly the maximum is one order; just above it is two.
    assert lot_sizes(material, D(100)) == [(D(100), (LotRule.NET,))]
    assert lot_sizes(material, D(101)) == [
        (D(100), (LotRule.LOT_MAX,)),
        (D(30), (LotRule.LOT_MIN,)),
    ]
    # Above the minimum, only the multiple applies: 33 -> 40.
    assert lot_sizes(material, D(33)) == [(D(40), (LotRule.LOT_MULTIPLE,))]
    odd = Material(code="M", kind=MaterialKind.PURCHASED, lot_min=D(25), lot_multiple=D(10))
    assert lot_sizes(odd, D(3)) == [(D(30), (LotRule.LOT_MIN, LotRule.LOT_MULTIPLE))]


def test_split_orders_share_the_day_and_are_numbered() -> None:
    master = _single(lot_max=D(100), lot_multiple=D(10), supplier_lead_days=3)
    plan = run_mrp(
        master, today=TODAY, demands=[Demand(id="S", material="M", quantity=D(250), due=d(20))]
    )
    assert [(p.id, p.quantity, p.due, p.release) for p in plan.proposals] == [
        ("plan-M-20260320-1", D(100), d(20), d(17)),
        ("plan-M-20260320-2", D(100), d(20), d(17)),
        ("plan-M-20260320-3", D(50), d(20), d(17)),
    ]
    assert [(p.explanation.split, p.explanation.splits) for p in plan.proposals] == [
        (1, 3),
        (2, 3),
        (3, 3),
    ]


def test_scrap_rounds_up_exactly_to_the_unit() -> None:
    # 9 / (1 - 10 %) is exactly 10: no spurious 11 (binary floats give 10.000000000000002).
    assert dependent_quantity(D(9), D(1), D(1), D(10), 0) == D(10)
    # 7 / 0.97 = 7.216.. -> 8 pieces.
    assert dependent_quantity(D(7), D(1), D(1), D(3), 0) == D(8)
    # 7 x 0.125 kg / 0.9 = 0.97222.. -> 0.98 kg with two decimals.
    assert dependent_quantity(D(7), D("0.125"), D(1), D(10), 2) == D("0.98")
    # A batch of 4 takes 3: 10 parents take 7.5 -> 8.
    assert dependent_quantity(D(10), D(3), D(4), D(0), 0) == D(8)


def test_dependent_demand_in_a_plan_uses_output_quantity_and_scrap() -> None:
    master = MasterData(
        materials=(
            Material(code="F", kind=MaterialKind.FINISHED),
            Material(code="C", kind=MaterialKind.PURCHASED),
        ),
        boms=(
            Bom(
                parent="F",
                output_quantity=D(4),
                lines=(BomLine(component="C", quantity=D(3), scrap_percent=D(5)),),
            ),
        ),
    )
    plan = run_mrp(
        master, today=TODAY, demands=[Demand(id="S", material="F", quantity=D(10), due=d(9))]
    )
    # 10 x 3 / 4 / 0.95 = 7.894.. -> 8.
    component = plan.proposals[1]
    assert component.material == "C"
    assert component.quantity == D(8)
    assert component.explanation.pegging == (
        Peg(kind=PP, id="plan-F-20260309-1", quantity=D(8), needed=d(9)),
    )


def test_past_due_demand_is_needed_today_and_flagged_late() -> None:
    master = _single(purchasing_lead_days=1, supplier_lead_days=2, safety_lead_days=1)
    plan = run_mrp(
        master, today=TODAY, demands=[Demand(id="S", material="M", quantity=D(5), due=d(1))]
    )
    (p,) = plan.proposals
    assert (p.release, p.due, p.explanation.need) == (TODAY, TODAY, TODAY)
    assert p.explanation.planned_release == date(2026, 2, 26)  # 2 March - 1 - 3
    assert p.explanation.late
    assert p.explanation.pegging == (Peg(kind=SO, id="S", quantity=D(5), needed=d(1)),)


def test_release_just_today_is_not_late() -> None:
    master = _single(supplier_lead_days=3)
    plan = run_mrp(
        master, today=TODAY, demands=[Demand(id="S", material="M", quantity=D(5), due=d(5))]
    )
    (p,) = plan.proposals
    assert (p.release, p.explanation.late) == (TODAY, False)


def test_safety_stock_below_stock_is_replenished_today_without_demand() -> None:
    plan = run_mrp(_single(safety_stock=D(10)), today=TODAY, stock={"M": D(4)})
    (p,) = plan.proposals
    assert (p.quantity, p.explanation.need, p.explanation.pegging) == (D(6), TODAY, ())


def test_one_proposal_per_day_of_need_never_merged() -> None:
    plan = run_mrp(
        _single(lot_min=D(1)),
        today=TODAY,
        demands=[
            Demand(id="S1", material="M", quantity=D(3), due=d(10)),
            Demand(id="S2", material="M", quantity=D(4), due=d(11)),
            Demand(id="S3", material="M", quantity=D(5), due=d(11)),
        ],
    )
    assert [
        (p.explanation.need, p.quantity, [g.id for g in p.explanation.pegging])
        for p in plan.proposals
    ] == [
        (d(10), D(3), ["S1"]),
        (d(11), D(9), ["S2", "S3"]),
    ]


def test_lot_excess_carries_forward() -> None:
    # A lot of 50 on the 10th covers the 20 of the 10th and the 20 of the 11th.
    plan = run_mrp(
        _single(lot_min=D(50)),
        today=TODAY,
        demands=[
            Demand(id="S1", material="M", quantity=D(20), due=d(10)),
            Demand(id="S2", material="M", quantity=D(20), due=d(11)),
            Demand(id="S3", material="M", quantity=D(20), due=d(12)),
        ],
    )
    assert [(p.explanation.need, p.quantity) for p in plan.proposals] == [
        (d(10), D(50)),
        (d(12), D(50)),
    ]
    assert plan.proposals[1].explanation.net_requirement == D(10)


def test_open_supply_after_the_need_does_not_count() -> None:
    plan = run_mrp(
        _single(),
        today=TODAY,
        demands=[Demand(id="S", material="M", quantity=D(10), due=d(10))],
        open_supply=[OpenSupply(id="P", kind=PO, material="M", quantity=D(10), due=d(11))],
    )
    (p,) = plan.proposals
    assert (p.quantity, p.explanation.open_supply) == (D(10), ())


def test_empty_plan_when_stock_and_open_supply_cover_everything() -> None:
    plan = run_mrp(
        scenario_master(),
        today=TODAY,
        demands=DEMANDS,
        open_supply=[OpenSupply(id="PO-1", kind=PO, material="CORD", quantity=D(100), due=d(3))],
        stock={"LAMP": D(188), "CORD": D(20)},
    )
    assert plan.proposals == ()
    # Without demand, only safety stock asks for anything: CORD's 20 held is enough.
    assert run_mrp(scenario_master(), today=TODAY, stock={"CORD": D(20)}).proposals == ()


# --- Property: planned supply covers every demand by its date -----------------------------------


@st.composite
def one_level(
    draw: st.DrawFn,
) -> tuple[MasterData, list[Demand], list[OpenSupply], dict[str, D], dict[str, D]]:
    def lots(decimals: int) -> dict[str, object]:
        unit = D(1).scaleb(-decimals)
        multiple = draw(st.one_of(st.none(), st.integers(1, 20)))
        lot_min = draw(st.integers(0, 60))
        fields: dict[str, object] = {
            "lot_min": lot_min * unit,
            "safety_stock": draw(st.integers(0, 30)) * unit,
        }
        if multiple is not None:
            fields["lot_multiple"] = multiple * unit
        if draw(st.booleans()):
            step = multiple or 1
            fewest = max(1, -(-lot_min // step))  # lot_max is a multiple of step, >= lot_min
            fields["lot_max"] = step * draw(st.integers(fewest, fewest + 30)) * unit
        return fields

    def leads() -> dict[str, int]:
        return {
            "safety_lead_days": draw(st.integers(0, 3)),
            "purchasing_lead_days": draw(st.integers(0, 5)),
            "supplier_lead_days": draw(st.integers(0, 10)),
            "manufacturing_lead_days": draw(st.integers(0, 5)),
        }

    n = draw(st.integers(1, 3))
    components = []
    lines = []
    for i in range(n):
        decimals = draw(st.sampled_from([0, 1, 2]))
        unit = "pcs" if decimals == 0 else "kg"
        code = f"C{i}"
        components.append(
            Material.model_validate(
                {"code": code, "kind": "purchased", "unit": unit, "decimals": decimals}
                | leads()
                | lots(decimals)
            )
        )
        lines.append(
            BomLine(
                component=code,
                quantity=D(draw(st.integers(1, 50))) / 10,
                scrap_percent=D(draw(st.integers(0, 99))) / draw(st.sampled_from([1, 10])),
            )
        )
    product = Material.model_validate({"code": "F", "kind": "finished"} | leads() | lots(0))
    bom = Bom(parent="F", output_quantity=D(draw(st.integers(1, 5))), lines=tuple(lines))
    master = MasterData(materials=(product, *components), boms=(bom,))
    codes = ["F", *(c.code for c in components)]

    def quantity(code: str) -> D:
        decimals = 0 if code == "F" else next(c.decimals for c in components if c.code == code)
        return D(draw(st.integers(1, 400))).scaleb(-decimals)

    day = st.integers(-5, 40).map(lambda k: TODAY + timedelta(days=k))
    demands = [
        Demand(id=f"S{k}", material=code, quantity=quantity(code), due=draw(day))
        for k, code in enumerate(draw(st.lists(st.sampled_from(codes), max_size=8)))
    ]
    supply = [
        OpenSupply(id=f"O{k}", kind=PO, material=code, quantity=quantity(code), due=draw(day))
        for k, code in enumerate(draw(st.lists(st.sampled_from(codes), max_size=4)))
    ]
    stock = {code: quantity(code) for code in draw(st.lists(st.sampled_from(codes), unique=True))}
    reserved = {
        code: quantity(code) for code in draw(st.lists(st.sampled_from(codes), unique=True))
    }
    return master, demands, supply, stock, reserved


@settings(max_examples=150, deadline=None)
@given(one_level())
def test_planned_supply_covers_every_demand_by_its_date(
    case: tuple[MasterData, list[Demand], list[OpenSupply], dict[str, D], dict[str, D]],
) -> None:
    master, demands, supply, stock, reserved = case
    plan = run_mrp(
        master, today=TODAY, demands=demands, open_supply=supply, stock=stock, reserved=reserved
    )
    by_code = master.by_code()
    (bom,) = master.boms

    def bucket(day: date) -> date:
        return max(day, TODAY)

    # Gross demand, recomputed here: the sales orders, and for each planned F order the
    # components it takes (exact, rounded up to the unit) at its release.
    gross: dict[str, list[tuple[date, D]]] = defaultdict(list)
    for dm in demands:
        gross[dm.material].append((bucket(dm.due), dm.quantity))
    for p in plan.proposals:
        if p.material != "F":
            continue
        for line in bom.lines:
            exact = (
                Fraction(p.quantity)
                * Fraction(line.quantity)
                / Fraction(bom.output_quantity)
                / (1 - Fraction(line.scrap_percent) / 100)
            )
            decimals = by_code[line.component].decimals
            need = D(math.ceil(exact * 10**decimals)).scaleb(-decimals)
            gross[line.component].append((p.release, need))

    for code, material in by_code.items():
        mine = [p for p in plan.proposals if p.material == code]
        for p in mine:
            assert p.quantity >= material.lot_min
            if material.lot_max is not None:
                assert p.quantity <= material.lot_max
            if material.lot_multiple is not None:
                assert p.quantity % material.lot_multiple == 0
            assert TODAY <= p.release <= p.due <= p.explanation.need
        days = {TODAY} | {day for day, _ in gross[code]}
        for day in sorted(days):
            available = (
                stock.get(code, D(0))
                - reserved.get(code, D(0))
                + sum(
                    (s.quantity for s in supply if s.material == code and bucket(s.due) <= day),
                    D(0),
                )
                + sum((p.quantity for p in mine if p.due <= day), D(0))
            )
            demanded = sum((q for due, q in gross[code] if due <= day), D(0))
            assert available - demanded >= material.safety_stock, (code, day)
