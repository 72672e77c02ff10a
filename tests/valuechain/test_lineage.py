"""The genealogy index (`kiln.valuechain.lineage`) against the plain walk of
`kiln.valuechain.genealogy`: the same `Trace` (nodes, depths, paths, via edges, edges seen,
truncation) on hand-built graphs (a diamond, a cycle, several starts, max_nodes, max_depth),
on 150 seeded random graphs with edges appended between traces (each with the buffer folded
often and left unfolded), and after loading from an SQLite value chain store.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from kiln.db.urls import sqlite_url
from kiln.testing.clock import FakeClock
from kiln.valuechain import lineage
from kiln.valuechain.genealogy import Trace, backward, children_of, forward, parents_of
from kiln.valuechain.lineage import LineageIndex, load
from kiln.valuechain.lots import (
    Consume,
    EdgeKind,
    GenealogyEdge,
    Ledger,
    Merge,
    Produce,
    Receive,
    Split,
    SplitPart,
    Transaction,
)
from kiln.valuechain.store import ValuechainStore

D = Decimal
T0 = 1_767_225_600_000_000


def edge(
    source: str,
    target: str,
    kind: EdgeKind = EdgeKind.CONSUMED_INTO,
    n: int = 0,
    order: str | None = None,
    quantity: str = "1",
) -> GenealogyEdge:
    return GenealogyEdge(
        source=source,
        target=target,
        kind=kind,
        quantity=D(quantity),
        transaction_id=f"t{n}-{source}-{target}",
        order_id=order,
        time_us=T0 + n,
    )


# S1 -> A -> C and S1 -> B -> C is a diamond; X feeds C too; C -> D, C -> E; E and F point at
# each other (a cycle); F -> G; S1 -> K; S2 -> H; C -> C (a self-loop) and a duplicate A -> C.
EDGES = [
    edge("S1", "A", order="WO1", quantity="2.500"),
    edge("S1", "B", EdgeKind.SPLIT_INTO),
    edge("A", "C", order="WO2"),
    edge("B", "C", order="WO2"),
    edge("X", "C", order="WO2"),
    edge("C", "D"),
    edge("C", "E", EdgeKind.MERGED_INTO),
    edge("E", "F"),
    edge("F", "E"),
    edge("F", "G"),
    edge("S1", "K", EdgeKind.SPLIT_INTO),
    edge("S2", "H"),
    edge("C", "C"),
    edge("A", "C", n=1, order="WO3"),
]


def expected(
    direction: str, edges: Sequence[GenealogyEdge], start: str | Sequence[str], **kw: int | None
) -> Trace:
    if direction == "forward":
        return forward(start, children_of(edges), **kw)  # type: ignore[arg-type]
    return backward(start, parents_of(edges), **kw)  # type: ignore[arg-type]


def check(
    index: LineageIndex,
    edges: Sequence[GenealogyEdge],
    start: str | Sequence[str],
    **kw: int | None,
) -> None:
    """Both directions, full and lean, equal to genealogy's walk."""
    for direction in ("forward", "backward"):
        want = expected(direction, edges, start, **kw)
        trace = getattr(index, direction)(start, **kw)
        assert trace == want, (direction, start, kw)
        lean = index.reach(direction, start, **kw)  # type: ignore[arg-type]
        assert lean.lot_ids == want.lot_ids
        assert lean.depths.tolist() == [n.depth for n in want.nodes]
        assert lean.truncated == want.truncated


@pytest.fixture(params=["buffered", "folded"])
def index(request: pytest.FixtureRequest) -> LineageIndex:
    built = LineageIndex(EDGES)
    if request.param == "folded":
        built.compact()
    return built


def test_backward_through_a_diamond(index: LineageIndex) -> None:
    trace = index.backward("C")
    assert [(n.lot_id, n.depth, n.path) for n in trace.nodes] == [
        ("C", 0, ("C",)),
        ("A", 1, ("C", "A")),
        ("B", 1, ("C", "B")),
        ("X", 1, ("C", "X")),
        ("S1", 2, ("C", "A", "S1")),
    ]
    node = trace.node("S1")
    assert node is not None and node.via == EDGES[0]
    assert node.via.quantity == D("2.500") and str(node.via.quantity) == "2.500"
    check(index, EDGES, "C")


def test_forward_through_a_diamond_and_a_cycle(index: LineageIndex) -> None:
    trace = index.forward("S1")
    assert trace.lot_ids == ("S1", "A", "B", "K", "C", "D", "E", "F", "G")
    assert not trace.truncated
    for start in ("S1", "E", "F", "G", "C", "S2"):
        check(index, EDGES, start)


def test_several_starts_unknown_lots_and_duplicates(index: LineageIndex) -> None:
    check(index, EDGES, ["S2", "nope", "S1", "S2", "A"])
    check(index, EDGES, ["nope"])
    assert index.forward("nope").lot_ids == ("nope",)


@pytest.mark.parametrize("max_nodes", [1, 2, 3, 4, 5, 8, 9, 10, 100])
def test_max_nodes_keeps_a_prefix(index: LineageIndex, max_nodes: int) -> None:
    check(index, EDGES, "S1", max_nodes=max_nodes)
    check(index, EDGES, ["G", "D", "H", "K"], max_nodes=max_nodes)
    trace = index.forward("S1", max_nodes=max_nodes)
    assert trace.truncated == (max_nodes < 9)


@pytest.mark.parametrize("max_depth", [0, 1, 2, 3, None])
def test_max_depth(index: LineageIndex, max_depth: int | None) -> None:
    check(index, EDGES, "S1", max_depth=max_depth)
    check(index, EDGES, ["E", "X"], max_depth=max_depth, max_nodes=4)


def test_max_nodes_must_be_positive(index: LineageIndex) -> None:
    with pytest.raises(ValueError, match="max_nodes"):
        index.forward("S1", max_nodes=0)
    with pytest.raises(ValueError, match="direction"):
        index.reach("sideways", "S1")  # type: ignore[arg-type]


def test_a_long_chain() -> None:
    edges = [edge(f"L{i}", f"L{i + 1}", n=i) for i in range(5000)]
    index = LineageIndex(edges)
    trace = index.backward("L5000")
    assert len(trace.nodes) == 5001 and trace.nodes[-1].depth == 5000
    check(index, edges, "L2500", max_depth=7)


def random_edges(rng: random.Random, count: int, lots: int) -> list[GenealogyEdge]:
    kinds = list(EdgeKind)
    return [
        edge(
            f"L{rng.randrange(lots)}",
            f"L{rng.randrange(lots)}",
            rng.choice(kinds),
            n=rng.randrange(3),  # repeated transaction ids, some parallel edges
            order=rng.choice([None, "WO1", "WO2"]),
            quantity=rng.choice(["1", "0.5", "2.000", "7.125"]),
        )
        for _ in range(count)
    ]


def random_starts(rng: random.Random, lots: int) -> str | list[str]:
    if rng.random() < 0.5:
        return f"L{rng.randrange(lots + 2)}"
    return [f"L{rng.randrange(lots + 2)}" for _ in range(rng.randrange(1, 5))]


@pytest.fixture(params=[lineage.MIN_FOLD, 3], ids=["min_fold_default", "min_fold_3"])
def min_fold(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    # A small MIN_FOLD folds on most appends: both the CSR and the buffer paths get walked.
    monkeypatch.setattr(lineage, "MIN_FOLD", request.param)
    return int(request.param)


@pytest.mark.parametrize("seed", range(150))
def test_random_graphs_with_appends_equal_the_plain_walk(seed: int, min_fold: int) -> None:
    rng = random.Random(seed)
    lots = rng.randrange(1, 30)
    edges = random_edges(rng, rng.randrange(0, 90), lots)
    index = LineageIndex()
    done = 0
    while done < len(edges) or done == 0:
        step = rng.randrange(1, 30)
        index.add(edges[done : done + step])
        done = min(done + step, len(edges))
        if rng.random() < 0.2:
            index.compact()
        for _ in range(3):
            kw: dict[str, int | None] = {}
            if rng.random() < 0.4:
                kw["max_nodes"] = rng.randrange(1, lots + 3)
            if rng.random() < 0.3:
                kw["max_depth"] = rng.randrange(0, 5)
            check(index, edges[:done], random_starts(rng, lots), **kw)
        if done == len(edges):
            break
    assert index.edge_count == len(edges)


def test_folding_is_amortised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lineage, "MIN_FOLD", 8)
    rng = random.Random(7)
    edges = random_edges(rng, 2000, 300)
    index = LineageIndex()
    for e in edges:
        index.add([e])
    # Each fold waits for an eighth more edges: a few dozen folds, not two thousand.
    assert index.folds < 60
    check(index, edges, "L1")
    check(index, edges, ["L2", "L3"], max_nodes=50)


# -- loading from a store ---------------------------------------------------------------------


def transactions() -> list[Transaction]:
    n = iter(range(1, 1000))

    def t() -> dict[str, object]:
        i = next(n)
        return {"id": f"t{i}", "time_us": T0 + i}

    def rec(lot_id: str) -> Receive:
        return Receive.model_validate(
            {
                "lot_id": lot_id,
                "material": "steel",
                "quantity": D("10.000"),
                "unit": "kg",
                "location": "store",
                "supplier": "acme",
                **t(),
            }
        )

    def make(lot_id: str, order: str) -> Produce:
        return Produce.model_validate(
            {
                "lot_id": lot_id,
                "material": "frame",
                "quantity": D(2),
                "unit": "pcs",
                "location": "fg",
                "order_id": order,
                **t(),
            }
        )

    return [
        rec("S1"),
        rec("S2"),
        Split.model_validate(
            {
                "lot_id": "S1",
                "parts": (
                    SplitPart(lot_id="S1a", quantity=D(4)),
                    SplitPart(lot_id="S1b", quantity=D(6)),
                ),
                **t(),
            }
        ),
        Consume.model_validate({"lot_id": "S1a", "quantity": D("1.5"), "order_id": "WO1", **t()}),
        Consume.model_validate({"lot_id": "S2", "quantity": D(3), "order_id": "WO1", **t()}),
        make("F1", "WO1"),
        make("F2", "WO1"),
        Consume.model_validate({"lot_id": "S1b", "quantity": D(6), "order_id": "WO2", **t()}),
        make("F3", "WO2"),
        Merge.model_validate({"lot_ids": ("F2", "F3"), "into": "F4", "location": "fg", **t()}),
    ]


def test_load_from_a_sqlite_store_then_append(tmp_path: Path) -> None:
    store = ValuechainStore(sqlite_url(tmp_path / "vc.db"), clock=FakeClock(T0))
    store.open()
    try:
        ledger = Ledger()
        txs = transactions()
        for tx in txs[:7]:
            ledger.apply(tx)
            store.apply(tx)
        index = load(store)
        assert index.edge_count == len(ledger.edges) > 0
        for start in ("S1", "S2", "F1", "F2", ["S1a", "S2"]):
            check(index, ledger.edges, start)
        # The engine appends what each later transaction records.
        for tx in txs[7:]:
            ledger.apply(tx)
            change = store.apply(tx)
            index.add(change.edges)
            check(index, ledger.edges, "S1")
            check(index, ledger.edges, "F4")
        again = load(store)
        assert again.edge_count == len(ledger.edges)
        for start in ("S1", "F4", "F1"):
            check(again, ledger.edges, start)
    finally:
        store.close()


def test_memory_estimate_counts_arrays_and_strings() -> None:
    index = LineageIndex(EDGES)
    assert (index.lot_count, index.edge_count) == (12, len(EDGES))
    assert "S1" in index and "nope" not in index
    arrays = index.array_bytes()
    assert arrays > 0
    # The interned lot ids, transaction ids and quantities come on top of the arrays.
    assert index.memory_bytes() > arrays + 12 * 40


def test_rebuilt_edges_behave_as_validated_ones() -> None:
    index = LineageIndex(EDGES)
    trace = index.forward("S1")
    for got in trace.edges:
        # Built unchecked from the columns, yet equal, hashable, frozen and re-validatable.
        want = next(e for e in EDGES if e == got)
        assert hash(got) == hash(want)
        assert GenealogyEdge.model_validate(got.model_dump()) == got
        assert got.model_dump(mode="json") == want.model_dump(mode="json")
        with pytest.raises(ValueError, match="frozen"):
            got.source = "other"
