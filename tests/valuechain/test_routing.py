"""Routings (issue 16): operations and their validation, lead time, the bottleneck rule giving
production's ideal cycle times, and the checks against master data, products and the plant."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from pydantic import ValidationError

from kiln.production import Product
from kiln.valuechain.master import Bom, BomLine, MasterData, Material, MaterialKind
from kiln.valuechain.routing import (
    Operation,
    Routing,
    RoutingError,
    RoutingProblem,
    WorkCentreKind,
    check_routings,
    consumption_by_operation,
    ideal_cycles,
    lead_time_s,
    routing_problems,
    with_routing_cycles,
)

LINE = WorkCentreKind.LINE
TYPE = WorkCentreKind.ASSET_TYPE
MOULDING = "acme/plant1/moulding/line1"
ASSEMBLY = "acme/plant1/assembly/line2"


def op(number: int, cycle: float, *, where: str = ASSEMBLY, **more: object) -> Operation:
    kind = TYPE if "/" not in where else LINE
    return Operation.model_validate(
        {
            "number": number,
            "name": f"op {number}",
            "work_centre_kind": kind,
            "work_centre": where,
            "cycle_s": cycle,
            **more,
        }
    )


MASTER = MasterData(
    materials=(
        Material(code="LAMP", kind=MaterialKind.FINISHED),
        Material(code="HEAD", kind=MaterialKind.MADE),
        Material(code="CORD", kind=MaterialKind.PURCHASED),
        Material(code="SCREW", kind=MaterialKind.PURCHASED),
        Material(code="RESIN", kind=MaterialKind.RAW, unit="kg", decimals=1),
    ),
    boms=(
        Bom(
            parent="LAMP",
            lines=(
                BomLine(component="HEAD", quantity=D(1)),
                BomLine(component="CORD", quantity=D(2)),
                BomLine(component="SCREW", quantity=D(4)),
            ),
        ),
        Bom(parent="HEAD", lines=(BomLine(component="RESIN", quantity=D("0.3")),)),
    ),
)

# LAMP: moulding press type (no line), then two operations on the assembly line, then packing
# on the moulding line (contrived, to have two lines).
LAMP = Routing(
    product="LAMP",
    operations=(
        op(10, 12.0, where="press", setup_s=600.0),
        op(20, 30.0, setup_s=900.0, move_s=60.0, components=("HEAD", "SCREW")),
        op(30, 45.0, queue_s=300.0, components=("CORD",)),
        op(40, 8.0, where=MOULDING, setup_s=120.0),
    ),
)


def test_lead_time_is_the_sum_of_setup_run_move_and_queue() -> None:
    # 10: 600 + 100*12 = 1800; 20: 900 + 100*30 + 60 = 3960; 30: 100*45 + 300 = 4800;
    # 40: 120 + 100*8 = 920. Total 11480 s.
    assert lead_time_s(LAMP, 100) == 11480.0
    assert lead_time_s(LAMP, D("100")) == 11480.0
    # One unit: 612 + 990 + 345 + 128.
    assert lead_time_s(LAMP, 1) == 2075.0


@pytest.mark.parametrize("quantity", [0, -1, float("inf"), float("nan")])
def test_lead_time_refuses_a_quantity_that_is_not_positive(quantity: float) -> None:
    with pytest.raises(ValueError, match="quantity must be a positive number"):
        lead_time_s(LAMP, quantity)


def test_bottleneck_rule_gives_each_line_its_slowest_operation() -> None:
    general, per_line = ideal_cycles(LAMP)
    assert general == 45.0  # the slowest of all, the press type included
    assert per_line == {ASSEMBLY: 45.0, MOULDING: 8.0}


def test_product_takes_its_ideal_cycles_from_the_routing() -> None:
    product = Product(
        code="LAMP",
        name="Desk lamp",
        ideal_cycle_s=20.0,
        per_asset={ASSEMBLY: 40.0, "acme/plant1/other/line9": 11.0},
    )
    derived = with_routing_cycles(product, LAMP)
    assert derived.ideal_cycle_s == 45.0
    assert derived.per_asset == {
        ASSEMBLY: 45.0,
        MOULDING: 8.0,
        "acme/plant1/other/line9": 11.0,  # a line the routing does not name keeps its entry
    }
    assert derived.ideal_cycle_for(ASSEMBLY + "/station3") == 45.0
    assert derived.name == "Desk lamp"
    with pytest.raises(ValueError, match="routing of LAMP is not the routing of HEAD"):
        with_routing_cycles(Product(code="HEAD", name="Head"), LAMP)


def test_components_no_operation_names_are_consumed_at_the_first() -> None:
    bom = MASTER.bom_of()["LAMP"]
    by_op = consumption_by_operation(LAMP, bom.lines)
    assert {n: [ln.component for ln in lines] for n, lines in by_op.items()} == {
        10: [],
        20: ["HEAD", "SCREW"],
        30: ["CORD"],
        40: [],
    }
    bare = Routing(product="LAMP", operations=(op(10, 1.0), op(20, 1.0, components=("CORD",))))
    by_op = consumption_by_operation(bare, bom.lines)
    assert [ln.component for ln in by_op[10]] == ["HEAD", "SCREW"]
    assert [ln.component for ln in by_op[20]] == ["CORD"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cycle_s": 0}, "cycle_s\n  Input should be greater than 0"),
        ({"cycle_s": -3.0}, "cycle_s\n  Input should be greater than 0"),
        ({"cycle_s": float("inf")}, "cycle_s\n  Input should be a finite number"),
        ({"setup_s": -1.0}, "setup_s\n  Input should be greater than or equal to 0"),
        ({"move_s": -0.5}, "move_s\n  Input should be greater than or equal to 0"),
        ({"queue_s": float("nan")}, "queue_s\n  Input should be a finite number"),
        ({"number": 0}, "number\n  Input should be greater than 0"),
        ({"name": ""}, "name\n  String should have at least 1 character"),
        ({"components": ("HEAD", "HEAD")}, "component HEAD is named twice"),
        ({"components": ("no code",)}, "component 'no code' is not a material code"),
        (
            {"work_centre_kind": "line", "work_centre": "press"},
            "operation 10: work centre: path 'press' has one segment",
        ),
        (
            {"work_centre_kind": "asset_type", "work_centre": "a/b"},
            "operation 10: work centre 'a/b' is no asset type name",
        ),
        (
            {"work_centre_kind": "cell"},
            "work_centre_kind\n  Input should be 'line' or 'asset_type'",
        ),
    ],
)
def test_an_operation_says_what_is_wrong(fields: dict[str, object], message: str) -> None:
    data: dict[str, object] = {
        "number": 10,
        "name": "press",
        "work_centre_kind": "asset_type",
        "work_centre": "press",
        "cycle_s": 1.0,
        **fields,
    }
    with pytest.raises(ValidationError) as caught:
        Operation.model_validate(data)
    assert message in str(caught.value)


def test_an_operation_is_found_by_its_number() -> None:
    assert LAMP.operation(30).cycle_s == 45.0
    with pytest.raises(KeyError, match="routing of LAMP has no operation 35"):
        LAMP.operation(35)


def test_setup_move_and_queue_may_be_zero() -> None:
    zero = op(10, 0.5, setup_s=0.0, move_s=0.0, queue_s=0.0)
    assert zero.time_s(4) == 2.0


@pytest.mark.parametrize(
    ("operations", "message"),
    [
        ((op(10, 1.0), op(10, 2.0)), "routing of LAMP: operation 10 is given twice"),
        ((op(20, 1.0), op(10, 2.0)), "routing of LAMP: operation 10 comes after 20"),
        (
            (op(10, 1.0, components=("CORD",)), op(20, 1.0, components=("HEAD", "CORD"))),
            "routing of LAMP: component CORD is consumed at operation 10 and again at 20",
        ),
        ((), "operations\n  Tuple should have at least 1 item"),
    ],
)
def test_a_routing_says_what_is_wrong(operations: tuple[Operation, ...], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Routing(product="LAMP", operations=operations)
    assert message in str(caught.value)


def test_routings_that_fit_the_master_data_pass() -> None:
    head = Routing(product="HEAD", operations=(op(10, 20.0, where="press"),))
    check_routings(
        (LAMP, head),
        MASTER,
        products=("LAMP", "HEAD"),
        lines=(ASSEMBLY, MOULDING),
        asset_types=("press",),
    )
    assert routing_problems((LAMP, head)) == []  # nothing given, nothing to check


def test_every_problem_against_master_data_and_plant_is_named() -> None:
    routings = (
        Routing(
            product="LAMP",
            operations=(
                op(10, 1.0, where="press", components=("GHOST", "RESIN")),
                op(20, 1.0, where="acme/plant1/nowhere/line7"),
            ),
        ),
        Routing(product="CORD", operations=(op(10, 1.0, where="crimper"),)),
        Routing(product="NOPE", operations=(op(10, 1.0),)),
        Routing(product="LAMP", operations=(op(10, 1.0),)),
    )
    problems = routing_problems(
        routings,
        MASTER,
        products=("LAMP",),
        lines=(ASSEMBLY,),
        asset_types=("press",),
    )
    assert problems == [
        RoutingProblem("LAMP", 10, "components", "GHOST is no known material"),
        RoutingProblem(
            "LAMP", 10, "components", "RESIN is no component of the bill of materials of LAMP"
        ),
        RoutingProblem("LAMP", 20, "work_centre", "line acme/plant1/nowhere/line7 is not known"),
        RoutingProblem("CORD", None, "product", "CORD is no product of production"),
        RoutingProblem("CORD", None, "product", "CORD is purchased: bought, so not routed"),
        RoutingProblem("CORD", 10, "work_centre", "asset type crimper is not known"),
        RoutingProblem("NOPE", None, "product", "NOPE is no product of production"),
        RoutingProblem("NOPE", None, "product", "NOPE is no known material"),
        RoutingProblem("LAMP", None, "product", "LAMP has two routings"),
    ]
    with pytest.raises(RoutingError) as caught:
        check_routings(routings, MASTER, products=("LAMP",))
    assert caught.value.problems[0] == problems[0]
    assert str(caught.value).startswith(
        "routing of LAMP, operation 10: GHOST is no known material; "
    )
