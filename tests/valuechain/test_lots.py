"""Lots and their transactions: each transaction, each refusal (and that a refusal changes
nothing), and a property test over random sequences: quantities conserved exactly per material,
refusals change nothing, a held lot never moves."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from kiln.valuechain.lots import (
    Consume,
    EdgeKind,
    Hold,
    Ledger,
    LotState,
    Merge,
    Move,
    Produce,
    Receive,
    Release,
    Scrap,
    Ship,
    Split,
    SplitPart,
    Transaction,
    TransactionRefused,
)

D = Decimal
T0 = 1_700_000_000_000_000


class Ids:
    """Fresh transaction ids and times, so each test reads as its transactions."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> dict[str, object]:
        self.n += 1
        return {"id": f"t{self.n}", "time_us": T0 + self.n}


def receive(nid: Ids, lot: str, qty: str, material: str = "steel", **kw: object) -> Receive:
    fields: dict[str, object] = {
        "lot_id": lot,
        "material": material,
        "quantity": D(qty),
        "unit": "kg",
        "location": "site/store",
        "supplier": "acme",
        **nid(),
    }
    fields.update(kw)
    return Receive.model_validate(fields)


def state(ledger: Ledger) -> tuple[object, ...]:
    """Everything a ledger shows, to check that a refusal left it as it was."""
    orders = ledger.order_ids()
    return (
        dict(ledger.lots),
        ledger.edges,
        ledger.log,
        orders,
        {o: dict(ledger.consumption(o)) for o in orders},
        {o: ledger.produced(o) for o in orders},
    )


def refused(ledger: Ledger, tx: Transaction, match: str) -> None:
    before = state(ledger)
    with pytest.raises(TransactionRefused, match=match):
        ledger.apply(tx)
    assert state(ledger) == before


@pytest.fixture
def nid() -> Ids:
    return Ids()


@pytest.fixture
def ledger(nid: Ids) -> Ledger:
    led = Ledger()
    led.apply(receive(nid, "L1", "100.5", supplier_lot="S-9", purchase_order="PO1"))
    led.apply(receive(nid, "L2", "40", location="site/dock"))
    return led


def test_receive_creates_an_available_lot(ledger: Ledger) -> None:
    lot = ledger.lot("L1")
    assert lot.state is LotState.AVAILABLE
    assert lot.quantity == D("100.5")
    assert (lot.supplier, lot.supplier_lot, lot.purchase_order) == ("acme", "S-9", "PO1")
    assert lot.created_us == lot.updated_us == T0 + 1
    assert [tx.id for tx in ledger.log] == ["t1", "t2"]


def test_receive_refuses_a_lot_id_that_exists(ledger: Ledger, nid: Ids) -> None:
    refused(ledger, receive(nid, "L1", "1"), "lot 'L1' already exists")


def test_transaction_ids_are_unique(ledger: Ledger) -> None:
    tx = Move(id="t1", time_us=T0 + 50, lot_id="L1", location="site/line")
    refused(ledger, tx, "transaction 't1' was already applied")


def test_unknown_lot_is_refused(ledger: Ledger, nid: Ids) -> None:
    refused(ledger, Move(lot_id="nope", location="x", **nid()), "there is no lot 'nope'")


@pytest.mark.parametrize("bad", [0.5, "0", "-1", "NaN", "Infinity", "0.0000000001", "1E+15"])
def test_quantities_are_exact_positive_decimals(bad: object) -> None:
    with pytest.raises(ValidationError):
        Consume(id="t", time_us=0, lot_id="L1", quantity=bad, order_id="WO1")


def test_quantity_has_up_to_nine_places() -> None:
    tx = Consume(id="t", time_us=0, lot_id="L1", quantity=D("0.000000001"), order_id="WO1")
    assert tx.quantity == D("1E-9")


def test_consume_part_then_all(ledger: Ledger, nid: Ids) -> None:
    change = ledger.apply(Consume(lot_id="L1", quantity=D("0.5"), order_id="WO1", **nid()))
    assert change.consumed == (("WO1", "L1", D("0.5")),)
    assert ledger.lot("L1").quantity == D("100.0")
    assert ledger.lot("L1").state is LotState.AVAILABLE
    ledger.apply(Consume(lot_id="L1", quantity=D("100"), order_id="WO1", **nid()))
    assert ledger.lot("L1").quantity == 0
    assert ledger.lot("L1").state is LotState.CONSUMED
    assert dict(ledger.consumption("WO1")) == {"L1": D("100.5")}
    refused(
        ledger,
        Consume(lot_id="L1", quantity=D("1"), order_id="WO1", **nid()),
        "cannot consume lot 'L1': it is consumed",
    )


def test_consume_more_than_the_lot_holds_is_refused(ledger: Ledger, nid: Ids) -> None:
    tx = Consume(lot_id="L2", quantity=D("40.001"), order_id="WO1", **nid())
    refused(ledger, tx, r"cannot consume 40.001 kg of lot 'L2': it holds 40 kg")


def test_produce_links_the_lots_consumed_into_the_order(ledger: Ledger, nid: Ids) -> None:
    ledger.apply(Consume(lot_id="L1", quantity=D("10"), order_id="WO1", **nid()))
    ledger.apply(Consume(lot_id="L2", quantity=D("4"), order_id="WO1", **nid()))
    ledger.apply(Consume(lot_id="L1", quantity=D("2.5"), order_id="WO1", **nid()))
    ledger.apply(Consume(lot_id="L2", quantity=D("1"), order_id="WO2", **nid()))
    change = ledger.apply(
        Produce(
            lot_id="P1",
            material="frame",
            quantity=D("3"),
            unit="pcs",
            location="site/fg",
            order_id="WO1",
            **nid(),
        )
    )
    p1 = ledger.lot("P1")
    assert (p1.order_id, p1.material, p1.quantity, p1.state) == (
        "WO1",
        "frame",
        D(3),
        LotState.AVAILABLE,
    )
    assert [(e.source, e.target, e.kind, e.quantity, e.order_id) for e in change.edges] == [
        ("L1", "P1", EdgeKind.CONSUMED_INTO, D("12.5"), "WO1"),
        ("L2", "P1", EdgeKind.CONSUMED_INTO, D("4"), "WO1"),
    ]
    assert ledger.edges == change.edges
    assert ledger.produced("WO1") == ("P1",)
    # Named inputs: only those.
    change = ledger.apply(
        Produce(
            lot_id="P2",
            material="frame",
            quantity=D("1"),
            unit="pcs",
            location="site/fg",
            order_id="WO1",
            inputs=("L2",),
            **nid(),
        )
    )
    assert [(e.source, e.target) for e in change.edges] == [("L2", "P2")]


def test_produce_refuses_an_input_not_consumed_into_the_order(ledger: Ledger, nid: Ids) -> None:
    ledger.apply(Consume(lot_id="L2", quantity=D("1"), order_id="WO2", **nid()))
    tx = Produce(
        lot_id="P1",
        material="frame",
        quantity=D("1"),
        unit="pcs",
        location="site/fg",
        order_id="WO1",
        inputs=("L2",),
        **nid(),
    )
    refused(ledger, tx, "lot 'L2' was not consumed into order 'WO1'")
    refused(ledger, tx.model_copy(update={"lot_id": "L1", "inputs": None}), "already exists")


def test_split_into_parts_that_sum_exactly(ledger: Ledger, nid: Ids) -> None:
    change = ledger.apply(
        Split(
            lot_id="L1",
            parts=(
                SplitPart(lot_id="L1a", quantity=D("50.25")),
                SplitPart(lot_id="L1b", quantity=D("50.25"), location="site/line"),
            ),
            **nid(),
        )
    )
    assert ledger.lot("L1").state is LotState.CONSUMED
    assert ledger.lot("L1").quantity == 0
    a, b = ledger.lot("L1a"), ledger.lot("L1b")
    assert (a.quantity, a.location, a.supplier_lot) == (D("50.25"), "site/store", "S-9")
    assert (b.quantity, b.location) == (D("50.25"), "site/line")
    assert [(e.source, e.target, e.kind, e.quantity) for e in change.edges] == [
        ("L1", "L1a", EdgeKind.SPLIT_INTO, D("50.25")),
        ("L1", "L1b", EdgeKind.SPLIT_INTO, D("50.25")),
    ]


@pytest.mark.parametrize(
    ("qa", "qb", "match"),
    [
        ("50", "50", r"add up to 100 kg, not to its 100.5 kg"),
        ("50.25", "50.250000001", r"add up to 100.500000001 kg"),
    ],
)
def test_split_that_does_not_sum_exactly_is_refused(
    ledger: Ledger, nid: Ids, qa: str, qb: str, match: str
) -> None:
    parts = (SplitPart(lot_id="A", quantity=D(qa)), SplitPart(lot_id="B", quantity=D(qb)))
    refused(ledger, Split(lot_id="L1", parts=parts, **nid()), match)


def test_split_refuses_repeated_or_taken_ids(ledger: Ledger, nid: Ids) -> None:
    same = (SplitPart(lot_id="A", quantity=D(40)), SplitPart(lot_id="A", quantity=D("60.5")))
    refused(ledger, Split(lot_id="L1", parts=same, **nid()), "repeat within the transaction")
    taken = (SplitPart(lot_id="L2", quantity=D(40)), SplitPart(lot_id="A", quantity=D("60.5")))
    refused(ledger, Split(lot_id="L1", parts=taken, **nid()), "lot 'L2' already exists")


def test_merge_lots_of_one_material(ledger: Ledger, nid: Ids) -> None:
    ledger.apply(receive(nid, "L3", "9.5", supplier_lot="S-9", purchase_order="PO1"))
    change = ledger.apply(Merge(lot_ids=("L1", "L3"), into="M1", **nid()))
    merged = ledger.lot("M1")
    assert (merged.quantity, merged.location, merged.supplier_lot) == (D(110), "site/store", "S-9")
    assert ledger.lot("L1").state is ledger.lot("L3").state is LotState.CONSUMED
    assert [(e.source, e.target, e.kind, e.quantity) for e in change.edges] == [
        ("L1", "M1", EdgeKind.MERGED_INTO, D("100.5")),
        ("L3", "M1", EdgeKind.MERGED_INTO, D("9.5")),
    ]


def test_merge_across_locations_needs_a_location(ledger: Ledger, nid: Ids) -> None:
    refused(ledger, Merge(lot_ids=("L1", "L2"), into="M1", **nid()), "different locations")
    ledger.apply(Merge(lot_ids=("L1", "L2"), into="M1", location="site/line", **nid()))
    merged = ledger.lot("M1")
    # The sources disagree on supplier lot and purchase order: the merged lot keeps neither.
    assert (merged.location, merged.supplier_lot, merged.purchase_order, merged.supplier) == (
        "site/line",
        None,
        None,
        "acme",
    )


def test_merge_refuses_other_material_or_unit(ledger: Ledger, nid: Ids) -> None:
    ledger.apply(receive(nid, "C1", "5", material="copper"))
    ledger.apply(receive(nid, "G1", "5", unit="g"))
    refused(
        ledger,
        Merge(lot_ids=("L1", "C1"), into="M1", **nid()),
        "material and unit must match",
    )
    refused(
        ledger,
        Merge(lot_ids=("L1", "G1"), into="M1", **nid()),
        "material and unit must match",
    )
    refused(ledger, Merge(lot_ids=("L1", "L1"), into="M1", **nid()), "same lot twice")
    refused(
        ledger,
        Merge(lot_ids=("L1", "G1"), into="L2", location="x", **nid()),
        "must match",
    )


def test_move(ledger: Ledger, nid: Ids) -> None:
    ledger.apply(Move(lot_id="L1", location="site/line", **nid()))
    assert ledger.lot("L1").location == "site/line"
    refused(ledger, Move(lot_id="L1", location="site/line", **nid()), "already at")


def test_ship_a_whole_lot(ledger: Ledger, nid: Ids) -> None:
    ledger.apply(
        Ship(lot_id="L2", customer="globex", shipment_id="SH1", sales_order="SO1", **nid())
    )
    lot = ledger.lot("L2")
    assert (lot.state, lot.customer, lot.shipment_id, lot.sales_order, lot.quantity) == (
        LotState.SHIPPED,
        "globex",
        "SH1",
        "SO1",
        D(40),
    )
    assert lot.on_hand == 0
    refused(ledger, Ship(lot_id="L2", customer="x", shipment_id="SH2", **nid()), "it is shipped")
    refused(ledger, Move(lot_id="L2", location="x", **nid()), "it is shipped")
    refused(ledger, Hold(lot_id="L2", reason="q", **nid()), "cannot hold lot 'L2': it is shipped")
    refused(ledger, Scrap(lot_id="L2", quantity=D(1), **nid()), "it is shipped")


def test_hold_freezes_a_lot_until_release(ledger: Ledger, nid: Ids) -> None:
    ledger.apply(Hold(lot_id="L1", reason="supplier recall", **nid()))
    assert ledger.lot("L1").state is LotState.HELD
    assert ledger.lot("L1").hold_reason == "supplier recall"
    why = r"it is held \(supplier recall\)"
    refused(ledger, Move(lot_id="L1", location="site/line", **nid()), why)
    refused(ledger, Consume(lot_id="L1", quantity=D(1), order_id="WO1", **nid()), why)
    refused(ledger, Ship(lot_id="L1", customer="c", shipment_id="S", **nid()), why)
    parts = (SplitPart(lot_id="A", quantity=D(100)), SplitPart(lot_id="B", quantity=D("0.5")))
    refused(ledger, Split(lot_id="L1", parts=parts, **nid()), why)
    refused(ledger, Merge(lot_ids=("L2", "L1"), into="M", location="x", **nid()), why)
    refused(ledger, Hold(lot_id="L1", reason="again", **nid()), "already held")
    assert ledger.lot("L1").on_hand == D("100.5")
    ledger.apply(Release(lot_id="L1", **nid()))
    assert (ledger.lot("L1").state, ledger.lot("L1").hold_reason) == (LotState.AVAILABLE, None)
    refused(ledger, Release(lot_id="L1", **nid()), "it is available, not held")
    ledger.apply(Move(lot_id="L1", location="site/line", **nid()))


def test_scrap_part_then_all_even_when_held(ledger: Ledger, nid: Ids) -> None:
    ledger.apply(Scrap(lot_id="L1", quantity=D("0.5"), reason="dropped", **nid()))
    assert ledger.lot("L1").quantity == D(100)
    ledger.apply(Hold(lot_id="L1", reason="rust", **nid()))
    refused(ledger, Scrap(lot_id="L1", quantity=D("100.01"), **nid()), "it holds 100.0 kg")
    ledger.apply(Scrap(lot_id="L1", quantity=D(100), **nid()))
    assert (ledger.lot("L1").state, ledger.lot("L1").quantity) == (LotState.SCRAPPED, 0)
    refused(ledger, Scrap(lot_id="L1", quantity=D(1), **nid()), "it is scrapped")
    refused(ledger, Release(lot_id="L1", **nid()), "it is scrapped, not held")


def test_transactions_parse_by_kind() -> None:
    adapter: TypeAdapter[Transaction] = TypeAdapter(Transaction)
    tx = adapter.validate_python(
        {"kind": "move", "id": "t1", "time_us": 1, "lot_id": "L1", "location": "x"}
    )
    assert isinstance(tx, Move)
    assert adapter.validate_json(adapter.dump_json(tx)) == tx
    with pytest.raises(ValidationError):
        adapter.validate_python({"kind": "teleport", "id": "t", "time_us": 1})


# -- the property test -------------------------------------------------------------------------

MATERIALS = ("steel", "copper")
LOCATIONS = ("a", "b", "c")
# Quantities as integers of 0.001, drawn small so sequences often use a lot up or overdraw it.
qty = st.integers(min_value=1, max_value=5000).map(lambda n: D(n).scaleb(-3))
pick = st.integers(min_value=0, max_value=10_000)

ops = st.one_of(
    st.tuples(st.just("receive"), st.sampled_from(MATERIALS), qty, st.sampled_from(("kg", "g"))),
    st.tuples(st.just("consume"), pick, qty, st.sampled_from(("WO1", "WO2"))),
    st.tuples(st.just("produce"), st.sampled_from(("WO1", "WO2", "WO3")), qty, st.booleans()),
    st.tuples(st.just("split"), pick, st.integers(0, 6000).map(lambda n: D(n).scaleb(-3))),
    st.tuples(st.just("merge"), pick, pick, st.booleans()),
    st.tuples(st.just("move"), pick, st.sampled_from(LOCATIONS)),
    st.tuples(st.just("ship"), pick),
    st.tuples(st.just("hold"), pick),
    st.tuples(st.just("release"), pick),
    st.tuples(st.just("scrap"), pick, qty),
    st.tuples(st.just("ghost"), qty),
)


def build(op: tuple[object, ...], ledger: Ledger, n: int) -> Transaction:
    """A transaction for `op`, naming lots that exist (any state: many are refused)."""
    ids = sorted(ledger.lots) or ["none"]

    def lot(i: object) -> str:
        assert isinstance(i, int)
        return ids[i % len(ids)]

    base: dict[str, object] = {"id": f"t{n}", "time_us": T0 + n}
    kind = op[0]
    if kind == "receive":
        return Receive(
            lot_id=f"R{n}",
            material=str(op[1]),
            quantity=op[2],
            unit=str(op[3]),
            location="a",
            supplier="acme",
            **base,
        )
    if kind == "consume":
        return Consume(lot_id=lot(op[1]), quantity=op[2], order_id=str(op[3]), **base)
    if kind == "produce":
        return Produce(
            lot_id=f"P{n}",
            material="frame",
            quantity=op[2],
            unit="pcs",
            location="a",
            order_id=str(op[1]),
            inputs=None if op[3] else ("R0",),
            **base,
        )
    if kind == "split":
        source = ledger.lots.get(lot(op[1]))
        first = op[2]
        assert isinstance(first, Decimal)
        rest = source.quantity - first if source is not None else D(1)
        # When `first` is the whole lot or more the parts cannot sum right: refused.
        rest = rest if rest > 0 else D(1)
        parts = (
            SplitPart(lot_id=f"S{n}a", quantity=first if first > 0 else D(1)),
            SplitPart(lot_id=f"S{n}b", quantity=rest, location="b"),
        )
        return Split(lot_id=lot(op[1]), parts=parts, **base)
    if kind == "merge":
        return Merge(
            lot_ids=(lot(op[1]), lot(op[2])),
            into=f"M{n}",
            location="c" if op[3] else None,
            **base,
        )
    if kind == "move":
        return Move(lot_id=lot(op[1]), location=str(op[2]), **base)
    if kind == "ship":
        return Ship(lot_id=lot(op[1]), customer="globex", shipment_id=f"SH{n}", **base)
    if kind == "hold":
        return Hold(lot_id=lot(op[1]), reason="check", **base)
    if kind == "release":
        return Release(lot_id=lot(op[1]), **base)
    if kind == "scrap":
        return Scrap(lot_id=lot(op[1]), quantity=op[2], **base)
    return Consume(lot_id="ghost", quantity=op[1], order_id="WO1", **base)


def flows(ledger: Ledger) -> dict[tuple[str, str], dict[str, Decimal]]:
    """Per (material, unit): what came in and went out, from the log alone; and on hand from
    the lots. Split and merge move quantity between lots of one material: they must not show."""
    out: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    material = {}
    for tx in ledger.log:
        if isinstance(tx, Receive | Produce):
            material[tx.lot_id] = (tx.material, tx.unit)
    for lot in ledger.lots.values():
        material.setdefault(lot.id, (lot.material, lot.unit))
    for tx in ledger.log:
        if isinstance(tx, Receive):
            out[material[tx.lot_id]]["received"] += tx.quantity
        elif isinstance(tx, Produce):
            out[material[tx.lot_id]]["produced"] += tx.quantity
        elif isinstance(tx, Consume):
            out[material[tx.lot_id]]["consumed"] += tx.quantity
        elif isinstance(tx, Scrap):
            out[material[tx.lot_id]]["scrapped"] += tx.quantity
        elif isinstance(tx, Ship):
            out[material[tx.lot_id]]["shipped"] += ledger.lot(tx.lot_id).quantity
    for lot in ledger.lots.values():
        out[(lot.material, lot.unit)]["on_hand"] += lot.on_hand
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(ops, min_size=10, max_size=80))
def test_random_sequences_conserve_quantity_and_refusals_change_nothing(
    sequence: list[tuple[object, ...]],
) -> None:
    ledger = Ledger()
    ledger.apply(
        Receive(
            id="t0",
            time_us=T0,
            lot_id="R0",
            material="steel",
            quantity=D("10.5"),
            unit="kg",
            location="a",
            supplier="acme",
        )
    )
    applied = 1
    for n, op in enumerate(sequence, start=1):
        tx = build(op, ledger, n)
        before = state(ledger)
        held_before = {
            lot.id: lot.location for lot in ledger.lots.values() if lot.state is LotState.HELD
        }
        try:
            ledger.apply(tx)
            applied += 1
        except TransactionRefused:
            assert state(ledger) == before, f"refused {tx!r} changed the ledger"
        # A held lot never moves: after any transaction, a lot held before is where it was.
        for lot_id, location in held_before.items():
            assert ledger.lot(lot_id).location == location
        if isinstance(tx, Move) and tx.lot_id in held_before:
            assert ledger.log[-1] != tx
        assert all(lot.quantity >= 0 for lot in ledger.lots.values())
        for key, f in flows(ledger).items():
            came = f["received"] + f["produced"]
            went = f["on_hand"] + f["consumed"] + f["shipped"] + f["scrapped"]
            assert came == went, (key, dict(f))
    assert len(ledger.log) == applied
