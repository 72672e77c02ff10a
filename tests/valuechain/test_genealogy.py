"""Genealogy traces and recalls: backward and forward on a hand-built graph with a diamond and a
cycle, truncation at max_nodes, and recall checked against a plain recursive traversal written
here (on the hand-built graph, on a ledger's own edges, and on random graphs)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.valuechain.genealogy import (
    OrderLots,
    Recall,
    backward,
    children_of,
    forward,
    orders_from_ledger,
    parents_of,
    recall,
)
from kiln.valuechain.lots import (
    Consume,
    EdgeKind,
    GenealogyEdge,
    Hold,
    Ledger,
    Lot,
    LotState,
    Produce,
    Receive,
    Ship,
    Split,
    SplitPart,
)

D = Decimal


def edge(source: str, target: str, kind: EdgeKind = EdgeKind.CONSUMED_INTO) -> GenealogyEdge:
    return GenealogyEdge(
        source=source,
        target=target,
        kind=kind,
        quantity=D(1),
        transaction_id=f"t-{source}-{target}",
        time_us=0,
    )


def lot(lot_id: str, state: LotState = LotState.AVAILABLE, **kw: object) -> Lot:
    fields: dict[str, object] = {
        "id": lot_id,
        "material": "m",
        "quantity": D(1),
        "unit": "kg",
        "location": "x",
        "state": state,
        "created_us": 0,
        "updated_us": 0,
        **kw,
    }
    return Lot.model_validate(fields)


# S1 is a supplier lot. S1 -> A -> C and S1 -> B -> C is a diamond; X also feeds C. C went into
# D (shipped) and E (in stock); E and F point at each other (bad data: a cycle); F -> G (held).
# S1 -> K is shipped in the same shipment as D. S2 -> H is another branch, shipped elsewhere.
EDGES = [
    edge("S1", "A"),
    edge("S1", "B", EdgeKind.SPLIT_INTO),
    edge("A", "C"),
    edge("B", "C"),
    edge("X", "C"),
    edge("C", "D"),
    edge("C", "E"),
    edge("E", "F"),
    edge("F", "E"),
    edge("F", "G"),
    edge("S1", "K", EdgeKind.SPLIT_INTO),
    edge("S2", "H"),
]
LOTS = {
    "S1": lot("S1", LotState.CONSUMED, quantity=D(0)),
    "S2": lot("S2", LotState.CONSUMED, quantity=D(0)),
    "X": lot("X"),
    "A": lot("A", LotState.CONSUMED, quantity=D(0)),
    "B": lot("B", LotState.CONSUMED, quantity=D(0)),
    "C": lot("C", LotState.CONSUMED, quantity=D(0)),
    "D": lot("D", LotState.SHIPPED, customer="globex", shipment_id="SH1"),
    "K": lot("K", LotState.SHIPPED, customer="globex", shipment_id="SH1"),
    "E": lot("E"),
    "F": lot("F", LotState.SCRAPPED, quantity=D(0)),
    "G": lot("G", LotState.HELD, hold_reason="q"),
    "H": lot("H", LotState.SHIPPED, customer="initech", shipment_id="SH2"),
}
ORDERS = [
    OrderLots("WO1", open=True, consumes=frozenset({"S1"}), produces=frozenset({"A"})),
    OrderLots("WO2", open=False, consumes=frozenset({"A", "B", "X"}), produces=frozenset({"C"})),
    OrderLots("WO3", open=True, consumes=frozenset({"E"})),
    OrderLots("WO4", open=True, consumes=frozenset({"S2"}), produces=frozenset({"H"})),
    OrderLots("WO5", open=True, produces=frozenset({"D"})),
    OrderLots("WO6", open=True, consumes=frozenset({"X"})),
]


def test_backward_through_a_diamond() -> None:
    trace = backward("C", parents_of(EDGES))
    assert [(n.lot_id, n.depth, n.path) for n in trace.nodes] == [
        ("C", 0, ("C",)),
        ("A", 1, ("C", "A")),
        ("B", 1, ("C", "B")),
        ("X", 1, ("C", "X")),
        # Reached through A first (edges are walked in order); B's way is the same length.
        ("S1", 2, ("C", "A", "S1")),
    ]
    assert trace.node("S1") is not None
    assert trace.node("S1").via == EDGES[0]
    assert trace.node("C").via is None
    # Both edges of the diamond are reported, though S1 is listed once.
    assert {(e.source, e.target) for e in trace.edges} == {
        ("A", "C"),
        ("B", "C"),
        ("X", "C"),
        ("S1", "A"),
        ("S1", "B"),
    }
    assert not trace.truncated
    assert trace.direction == "backward"


def test_forward_through_a_diamond_and_a_cycle() -> None:
    trace = forward("S1", children_of(EDGES))
    depths = {n.lot_id: n.depth for n in trace.nodes}
    assert depths == {"S1": 0, "A": 1, "B": 1, "K": 1, "C": 2, "D": 3, "E": 3, "F": 4, "G": 5}
    assert trace.node("G").path == ("S1", "A", "C", "E", "F", "G")
    # The cycle's edge back to E is seen once and not followed.
    assert sum(1 for e in trace.edges if (e.source, e.target) == ("F", "E")) == 1
    # Every edge leaving a reached lot: not X -> C (X is upstream) nor S2 -> H.
    assert len(trace.edges) == 10
    assert not trace.truncated


def test_a_cycle_through_the_start_ends() -> None:
    trace = backward("E", parents_of(EDGES))
    assert [(n.lot_id, n.depth) for n in trace.nodes] == [
        ("E", 0),
        ("C", 1),
        ("F", 1),
        ("A", 2),
        ("B", 2),
        ("X", 2),
        ("S1", 3),
    ]


def test_several_starts_and_max_depth() -> None:
    trace = forward(["S2", "E", "S2"], children_of(EDGES), max_depth=1)
    assert trace.starts == ("S2", "E")
    assert [(n.lot_id, n.depth) for n in trace.nodes] == [("S2", 0), ("E", 0), ("H", 1), ("F", 1)]
    assert not trace.truncated


def test_unknown_lot_traces_to_itself() -> None:
    trace = forward("nothing", children_of(EDGES))
    assert trace.lot_ids == ("nothing",)


@pytest.mark.parametrize(("max_nodes", "truncated"), [(1, True), (3, True), (8, True), (9, False)])
def test_truncation_at_max_nodes(max_nodes: int, truncated: bool) -> None:
    trace = forward("S1", children_of(EDGES), max_nodes=max_nodes)
    assert len(trace.nodes) == min(max_nodes, 9)
    assert trace.truncated is truncated
    # What it kept is the nearest part, in breadth-first order.
    full = forward("S1", children_of(EDGES))
    assert trace.lot_ids == full.lot_ids[:max_nodes]


def test_max_nodes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_nodes"):
        forward("S1", {}, max_nodes=0)


def test_a_chain_deeper_than_the_recursion_limit() -> None:
    n = sys.getrecursionlimit() * 5
    chain = [edge(f"L{i}", f"L{i + 1}") for i in range(n)]
    trace = backward(f"L{n}", parents_of(chain))
    assert len(trace.nodes) == n + 1
    assert trace.nodes[-1].lot_id == "L0"
    assert trace.nodes[-1].depth == n
    trace = forward("L0", children_of(chain), max_nodes=1000)
    assert (len(trace.nodes), trace.truncated) == (1000, True)


# -- recall against a plain recursive traversal -------------------------------------------------


def reference_recall(
    starts: Sequence[str],
    edges: Sequence[GenealogyEdge],
    lots: Mapping[str, Lot],
    orders: Sequence[OrderLots],
) -> dict[str, object]:
    """What a recall must find, computed the obvious way: recursive depth-first search."""
    reached: set[str] = set()

    def visit(lot_id: str) -> None:
        if lot_id in reached:
            return
        reached.add(lot_id)
        for e in edges:
            if e.source == lot_id:
                visit(e.target)

    for s in starts:
        visit(s)
    shipped = [lots[i] for i in reached if i in lots and lots[i].state is LotState.SHIPPED]
    return {
        "customers": sorted({lt.customer for lt in shipped if lt.customer}),
        "shipments": sorted({(lt.shipment_id, lt.customer, lt.id) for lt in shipped}),
        "orders": sorted(
            o.order_id for o in orders if o.open and (reached & (o.consumes | o.produces))
        ),
        "stock": sorted(i for i in reached if i in lots and lots[i].state is LotState.AVAILABLE),
        "held": sorted(i for i in reached if i in lots and lots[i].state is LotState.HELD),
        "reached": reached,
    }


def as_reference(r: Recall) -> dict[str, object]:
    return {
        "customers": list(r.customers),
        "shipments": sorted((s.shipment_id, s.customer, i) for s in r.shipments for i in s.lot_ids),
        "orders": list(r.orders_to_stop),
        "stock": list(r.quarantine),
        "held": list(r.held),
        "reached": set(r.trace.lot_ids),
    }


def test_recall_of_a_supplier_lot() -> None:
    r = recall("S1", lots=LOTS, children=children_of(EDGES), orders=ORDERS)
    assert r.customers == ("globex",)
    assert [(s.shipment_id, s.customer, s.lot_ids) for s in r.shipments] == [
        ("SH1", "globex", ("D", "K"))
    ]
    # WO1 consumed S1; WO3 is consuming E; WO5 makes D. WO2 is closed; WO4 and WO6 are elsewhere.
    assert r.orders_to_stop == ("WO1", "WO3", "WO5")
    assert r.quarantine == ("E",)
    assert r.held == ("G",)
    assert r.unknown == ()
    assert r.holds == ()
    assert not r.truncated
    assert as_reference(r) == reference_recall(["S1"], EDGES, LOTS, ORDERS)


@pytest.mark.parametrize("starts", [["S1"], ["S2"], ["X"], ["C"], ["E"], ["G"], ["S1", "S2"]])
def test_recall_matches_the_reference(starts: list[str]) -> None:
    r = recall(starts, lots=LOTS, children=children_of(EDGES), orders=ORDERS)
    assert as_reference(r) == reference_recall(starts, EDGES, LOTS, ORDERS)


def test_recall_places_holds_on_the_stock() -> None:
    r = recall(
        ["S1", "S2"],
        lots={**LOTS, "extra": lot("extra")},
        children=children_of([*EDGES, edge("H", "extra"), edge("H", "ghost")]),
        orders=ORDERS,
        hold_reason="supplier S1 recall",
        time_us=123,
        user="qa",
    )
    assert r.customers == ("globex", "initech")
    assert r.quarantine == ("E", "extra")
    assert r.unknown == ("ghost",)
    assert r.holds == (
        Hold(id="recall-E", time_us=123, user="qa", lot_id="E", reason="supplier S1 recall"),
        Hold(
            id="recall-extra", time_us=123, user="qa", lot_id="extra", reason="supplier S1 recall"
        ),
    )
    with pytest.raises(ValueError, match="time_us"):
        recall("S1", lots=LOTS, children=children_of(EDGES), hold_reason="x")


def test_a_truncated_recall_says_so() -> None:
    r = recall("S1", lots=LOTS, children=children_of(EDGES), orders=ORDERS, max_nodes=4)
    assert r.truncated
    assert len(r.trace.nodes) == 4


def test_recall_on_a_ledger_and_applying_its_holds() -> None:
    led = Ledger()
    n = iter(range(1, 1000))

    def t() -> dict[str, int | str]:
        i = next(n)
        return {"id": f"t{i}", "time_us": i}

    def rec(lot_id: str, supplier: str) -> Receive:
        return Receive(
            lot_id=lot_id,
            material="steel",
            quantity=D(10),
            unit="kg",
            location="store",
            supplier=supplier,
            **t(),
        )

    def make(lot_id: str, order: str) -> Produce:
        return Produce(
            lot_id=lot_id,
            material="frame",
            quantity=D(2),
            unit="pcs",
            location="fg",
            order_id=order,
            **t(),
        )

    led.apply(rec("BAD", "acme"))
    led.apply(rec("GOOD", "other"))
    led.apply(
        Split(
            lot_id="BAD",
            parts=(
                SplitPart(lot_id="BAD1", quantity=D(4)),
                SplitPart(lot_id="BAD2", quantity=D(6)),
            ),
            **t(),
        )
    )
    led.apply(Consume(lot_id="BAD1", quantity=D(4), order_id="WO1", **t()))
    led.apply(Consume(lot_id="GOOD", quantity=D(5), order_id="WO1", **t()))
    led.apply(make("F1", "WO1"))
    led.apply(make("F2", "WO1"))
    led.apply(Ship(lot_id="F1", customer="globex", shipment_id="SH1", **t()))
    led.apply(Consume(lot_id="BAD2", quantity=D(1), order_id="WO2", **t()))
    led.apply(Consume(lot_id="GOOD", quantity=D(1), order_id="WO3", **t()))
    orders = orders_from_ledger(led, open_orders={"WO2", "WO3"})
    r = recall(
        "BAD",
        lots=led.lots,
        children=children_of(led.edges),
        orders=orders,
        hold_reason="acme recall",
        time_us=10_000,
    )
    assert r.customers == ("globex",)
    assert [(s.shipment_id, s.lot_ids) for s in r.shipments] == [("SH1", ("F1",))]
    # WO1 is completed (not open); WO2 is consuming BAD2; WO3 only uses the good lot.
    assert r.orders_to_stop == ("WO2",)
    assert r.quarantine == ("BAD2", "F2")
    assert as_reference(r) == reference_recall(["BAD"], led.edges, led.lots, orders)
    for h in r.holds:
        led.apply(h)
    assert {i for i, x in led.lots.items() if x.state is LotState.HELD} == {"BAD2", "F2"}
    # The lot made from the good lot alone is untouched, and a backward trace of F2 finds both.
    assert backward("F2", parents_of(led.edges)).lot_ids == ("F2", "BAD1", "GOOD", "BAD")


STATES = st.sampled_from(
    [LotState.AVAILABLE, LotState.HELD, LotState.CONSUMED, LotState.SHIPPED, LotState.SCRAPPED]
)
NAMES = [f"N{i}" for i in range(12)]


@settings(max_examples=200, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(NAMES)), max_size=40),
    states=st.lists(STATES, min_size=len(NAMES), max_size=len(NAMES)),
    customers=st.lists(st.sampled_from(["c1", "c2", "c3"]), min_size=12, max_size=12),
    orders=st.lists(
        st.tuples(
            st.booleans(),
            st.frozensets(st.sampled_from(NAMES), max_size=3),
            st.frozensets(st.sampled_from(NAMES), max_size=2),
        ),
        max_size=5,
    ),
    starts=st.lists(st.sampled_from(NAMES), min_size=1, max_size=3),
)
def test_recall_matches_the_reference_on_random_graphs(
    pairs: list[tuple[str, str]],
    states: list[LotState],
    customers: list[str],
    orders: list[tuple[bool, frozenset[str], frozenset[str]]],
    starts: list[str],
) -> None:
    edges = [edge(a, b) for a, b in pairs]
    lots = {}
    for i, (name, s) in enumerate(zip(NAMES, states, strict=True)):
        shipped = s is LotState.SHIPPED
        lots[name] = lot(
            name,
            s,
            customer=customers[i] if shipped else None,
            shipment_id=f"SH{i % 4}" if shipped else None,
        )
    order_lots = [OrderLots(f"WO{i}", o, c, p) for i, (o, c, p) in enumerate(orders)]
    r = recall(starts, lots=lots, children=children_of(edges), orders=order_lots)
    assert as_reference(r) == reference_recall(starts, edges, lots, order_lots)
    # Every lot a forward trace reaches has the start among its backward trace, and depths agree
    # with the shortest path.
    back = parents_of(edges)
    for node in r.trace.nodes:
        assert set(backward(node.lot_id, back).lot_ids) & set(starts)
        assert len(node.path) == node.depth + 1


def test_hold_ids_stay_valid_and_unique_for_long_lot_ids() -> None:
    from kiln.valuechain.genealogy import _hold_id

    long_a, long_b = "L" * 60 + "a", "L" * 60 + "b"
    ids = {_hold_id("recall", long_a), _hold_id("recall", long_b)}
    assert len(ids) == 2 and all(len(i) <= 64 for i in ids)
    assert _hold_id("recall", "LOT-1") == "recall-LOT-1"
