"""The value chain store on SQLite and PostgreSQL: master data round trip and whole-data checks
(a refused change writes nothing), lot transactions persisted equal to the pure ledger after the
same transactions (lots, edges, log, refusals with the same reasons), restart, and the
migrations.

Every test taking `db_url` runs on both backends: an SQLite file, and PostgreSQL (127.0.0.1:5432,
user postgres, database test, or KILN_TEST_POSTGRES_URL) in a schema of its own. When PostgreSQL
is unreachable its runs are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, func, inspect, select
from sqlalchemy.pool import NullPool

from kiln.testing import postgres
from kiln.testing.clock import FakeClock
from kiln.valuechain import migrations
from kiln.valuechain.lots import (
    Change,
    Consume,
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
from kiln.valuechain.master import (
    Bom,
    BomLine,
    MasterData,
    MasterDataError,
    Material,
    MaterialKind,
)
from kiln.valuechain.schema import VERSION_TABLE, metadata
from kiln.valuechain.store import ValuechainStore

D = Decimal
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z, beyond 32 bits


# -- databases --------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'valuechain.db'}"
    else:
        with postgres.schema_for_test() as url:
            yield url


@pytest.fixture
def store(db_url: str) -> Iterator[ValuechainStore]:
    s = ValuechainStore(db_url, clock=FakeClock(T0))
    s.open()
    try:
        yield s
    finally:
        s.close()


def row_counts(store: ValuechainStore) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for name, table in metadata.tables.items()
        }


# -- master data ------------------------------------------------------------------------------

STEEL = Material(
    code="steel",
    unit="kg",
    decimals=3,
    kind=MaterialKind.RAW,
    supplier="acme",
    supplier_lead_days=5,
    lot_min=D("100.000"),
    lot_multiple=D("25"),
    lot_max=D("1000"),
)
BRACKET = Material(code="bracket", kind=MaterialKind.MADE, manufacturing_lead_days=2)
FRAME = Material(code="frame", kind=MaterialKind.FINISHED, safety_stock=D(10))

BRACKET_BOM = Bom(parent="bracket", lines=(BomLine(component="steel", quantity=D("0.350")),))
FRAME_BOM = Bom(
    parent="frame",
    output_quantity=D(2),
    lines=(
        BomLine(component="bracket", quantity=D(4), scrap_percent=D("2.5")),
        BomLine(component="steel", quantity=D("1.2")),
    ),
)


def put_all(store: ValuechainStore) -> None:
    for m in (STEEL, BRACKET, FRAME):
        store.put_material(m)
    store.put_bom(BRACKET_BOM)
    store.put_bom(FRAME_BOM)


def test_master_data_round_trip(store: ValuechainStore) -> None:
    put_all(store)
    assert store.materials() == [BRACKET, FRAME, STEEL]
    assert store.boms() == [BRACKET_BOM, FRAME_BOM]
    data = store.master_data()
    assert data.materials == (BRACKET, FRAME, STEEL)
    assert data.low_level_codes() == {"frame": 0, "bracket": 1, "steel": 2}
    # Decimals come back with their exponent: "100.000" is not turned into 100 or a float.
    assert str(store.materials()[2].lot_min) == "100.000"
    # A put replaces.
    store.put_material(FRAME.model_copy(update={"name": "Frame"}))
    assert store.master_data().material("frame").name == "Frame"
    with store.engine.connect() as conn:
        stamps = set(conn.execute(select(metadata.tables["vc_boms"].c.updated_us)).scalars())
    assert stamps == {T0}


def test_a_bom_cycle_is_refused_and_nothing_written(store: ValuechainStore) -> None:
    put_all(store)
    # Steel made in house from frames: allowed alone (it has no bill yet), then its bill
    # closes a cycle through frame and bracket.
    store.put_material(STEEL.model_copy(update={"kind": MaterialKind.MADE, "supplier": None}))
    before = store.master_data()
    counts = row_counts(store)
    cycle = Bom(parent="steel", lines=(BomLine(component="frame", quantity=D(1)),))
    # The pure core's message, word for word.
    with pytest.raises(ValueError, match="form a cycle: bracket -> steel -> frame -> bracket"):
        MasterData(materials=before.materials, boms=(*before.boms, cycle))
    with pytest.raises(MasterDataError) as refused:
        store.put_bom(cycle)
    assert (
        str(refused.value)
        == "bills of materials form a cycle: bracket -> steel -> frame -> bracket"
    )
    assert store.master_data() == before
    assert row_counts(store) == counts


def test_changes_that_break_the_whole_are_refused(store: ValuechainStore) -> None:
    put_all(store)
    before = store.master_data()
    unknown = Bom(parent="frame", lines=(BomLine(component="paint", quantity=D(1)),))
    with pytest.raises(MasterDataError, match="name unknown materials: paint"):
        store.put_bom(unknown)
    # A material with a bill turned bought, a component deleted: both refused.
    with pytest.raises(MasterDataError, match=r"bought materials cannot have a bill.*: bracket"):
        store.put_material(BRACKET.model_copy(update={"kind": MaterialKind.PURCHASED}))
    with pytest.raises(MasterDataError, match="name unknown materials: steel"):
        store.delete_material("steel")
    assert store.master_data() == before
    # Once nothing names it, it goes.
    assert store.delete_bom("frame")
    assert store.delete_bom("bracket")
    assert store.delete_material("steel")
    assert not store.delete_material("steel")
    assert [m.code for m in store.materials()] == ["bracket", "frame"]


# -- lots -------------------------------------------------------------------------------------


class Ids:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> dict[str, object]:
        self.n += 1
        return {"id": f"t{self.n}", "time_us": T0 + self.n, "user": "ann"}


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
    return Receive.model_validate(fields | kw)


def scenario() -> list[Transaction]:
    """Every kind of transaction, two refusals among them."""
    nid = Ids()
    return [
        receive(nid, "S1", "100.500", supplier_lot="A-1", purchase_order="PO1"),
        receive(nid, "S2", "40", location="site/dock"),
        Move(lot_id="S2", location="site/store/bin_1", **nid()),
        Consume(lot_id="S1", quantity=D("0.5"), order_id="WO1", **nid()),
        Consume(lot_id="S2", quantity=D("10"), order_id="WO1", **nid()),
        Consume(lot_id="S1", quantity=D("20"), order_id="WO1", **nid()),
        Produce(
            lot_id="F1",
            material="frame",
            quantity=D(8),
            unit="pcs",
            location="site/line1",
            order_id="WO1",
            **nid(),
        ),
        Split(
            lot_id="F1",
            parts=(
                SplitPart(lot_id="F1a", quantity=D(5)),
                SplitPart(lot_id="F1b", quantity=D(3), location="site/qa"),
            ),
            **nid(),
        ),
        Hold(lot_id="F1b", reason="dimension out of tolerance", **nid()),
        Move(lot_id="F1b", location="site/store", **nid()),  # refused: held
        Scrap(lot_id="F1b", quantity=D(1), reason="scrapped after check", **nid()),
        Release(lot_id="F1b", **nid()),
        Merge(lot_ids=("F1a", "F1b"), into="F2", location="site/store", **nid()),
        Ship(lot_id="F2", customer="bolt-co", shipment_id="SH-7", sales_order="SO-3", **nid()),
        Consume(lot_id="S1", quantity=D("500"), order_id="WO2", **nid()),  # refused: too much
        Scrap(lot_id="S2", quantity=D(30), **nid()),
    ]


def run_both(store: ValuechainStore, txs: list[Transaction]) -> Ledger:
    """Apply `txs` to the store and to a pure ledger: each is accepted or refused (for the same
    reason) by both, and returns the same change."""
    ledger = Ledger()
    for tx in txs:
        try:
            expected: Change | str = ledger.apply(tx)
        except TransactionRefused as e:
            expected = str(e)
        counts = row_counts(store)
        try:
            got: Change | str = store.apply(tx)
        except TransactionRefused as e:
            got = str(e)
        assert got == expected
        if isinstance(expected, str):
            assert row_counts(store) == counts
    return ledger


def assert_same(store: ValuechainStore, ledger: Ledger) -> None:
    stored = store.lots(limit=10_000)
    assert {lot.id: lot for lot in stored} == dict(ledger.lots)
    for lot in stored:
        # Exactly the same digits, not only an equal number.
        assert str(lot.quantity) == str(ledger.lots[lot.id].quantity)
    ids = list(ledger.lots)
    assert store.edges_from(ids) == list(ledger.edges)
    assert store.edges_to(ids) == list(ledger.edges)
    assert store.transactions(limit=10_000) == list(ledger.log)


def test_transactions_persisted_equal_the_pure_ledger(store: ValuechainStore) -> None:
    ledger = run_both(store, scenario())
    assert len(ledger.log) == 14  # two of sixteen were refused
    assert_same(store, ledger)
    # Spot checks the comparison above relies on.
    assert store.lot("S1") == ledger.lot("S1")
    s1 = store.lot("S1")
    assert s1 is not None
    assert str(s1.quantity) == "80.000"
    assert [(e.source, e.target, e.quantity) for e in store.edges_to(["F1"])] == [
        ("S1", "F1", D("20.5")),
        ("S2", "F1", D("10")),
    ]
    assert [e.target for e in store.edges_from(["F1"])] == ["F1a", "F1b"]
    assert store.transactions(limit=2)[-1].id == "t16"


def test_lot_queries(store: ValuechainStore) -> None:
    run_both(store, scenario())
    available = store.lots(states=[LotState.AVAILABLE])
    assert [lot.id for lot in available] == ["S1"]
    assert [lot.id for lot in store.lots(material="frame")] == ["F1", "F1a", "F1b", "F2"]
    assert [lot.id for lot in store.lots(material="frame", limit=2)] == ["F1", "F1a"]
    nid = Ids()
    nid.n = 100
    for lot, where in [("X1", "wh/a"), ("X2", "wh/a/bin_1"), ("X3", "wh/ab"), ("X4", "wh/a_")]:
        store.apply(receive(nid, lot, "1", location=where))
    # Segment-wise: `wh/a` holds `wh/a/bin_1` but not `wh/ab`, and `_` is no wildcard.
    assert [lot.id for lot in store.lots(location_prefix="wh/a")] == ["X1", "X2"]
    assert [lot.id for lot in store.lots(location_prefix="wh/a_")] == ["X4"]
    assert store.lot("nope") is None


def test_a_refused_transaction_writes_nothing(store: ValuechainStore) -> None:
    nid = Ids()
    store.apply(receive(nid, "L1", "10"))
    counts = row_counts(store)
    with pytest.raises(TransactionRefused, match="lot 'L1' already exists"):
        store.apply(receive(nid, "L1", "1"))
    with pytest.raises(TransactionRefused, match="transaction 't1' was already applied"):
        store.apply(Move(id="t1", time_us=T0, lot_id="L1", location="x"))
    with pytest.raises(TransactionRefused, match="there is no lot 'L9'"):
        store.apply(
            Split(
                lot_id="L9",
                parts=(SplitPart(lot_id="a", quantity=D(1)), SplitPart(lot_id="b", quantity=D(1))),
                **nid(),
            )
        )
    with pytest.raises(TransactionRefused, match="add up to 4 kg, not to its 10 kg"):
        store.apply(
            Split(
                lot_id="L1",
                parts=(SplitPart(lot_id="a", quantity=D(1)), SplitPart(lot_id="b", quantity=D(3))),
                **nid(),
            )
        )
    with pytest.raises(TransactionRefused, match="'L2' was not consumed into order 'WO1'"):
        store.apply(
            Produce(
                lot_id="P",
                material="m",
                quantity=D(1),
                unit="pcs",
                location="x",
                order_id="WO1",
                inputs=("L2",),
                **nid(),
            )
        )
    assert row_counts(store) == counts
    lot = store.lot("L1")
    assert lot is not None
    assert (lot.quantity, lot.state, lot.updated_us) == (D(10), LotState.AVAILABLE, T0 + 1)


def random_transaction(rng: random.Random, ledger: Ledger, nid: Ids, n: int) -> Transaction:
    """A transaction on the ledger's lots as they are (so most get through), some refused."""
    lots = sorted(ledger.lots) or ["L0"]
    available = [i for i in lots if i in ledger.lots and ledger.lots[i].state is LotState.AVAILABLE]
    # Mostly a lot that can take part in something, sometimes any (to be refused).
    lot = rng.choice(available if available and rng.random() < 0.8 else lots)
    on_hand = ledger.lots[lot].quantity if lot in ledger.lots else D(1)
    new = f"N{n}"
    qty = rng.choice([D("0.5"), D("1"), D("2.25"), D(7), on_hand if on_hand > 0 else D(1)])
    order = rng.choice(["WO1", "WO2"])
    kind = rng.randrange(10)
    if kind == 0 or not ledger.lots:
        return receive(nid, rng.choice([new, lot]), str(qty), location=rng.choice(["a", "b"]))
    if kind == 1:
        return Consume(lot_id=lot, quantity=qty, order_id=order, **nid())
    if kind == 2:
        return Produce(
            lot_id=new,
            material="steel",
            quantity=qty,
            unit="kg",
            location="a",
            order_id=order,
            **nid(),
        )
    if kind == 3:
        # Parts that add up when the lot holds more than one unit; otherwise refused.
        first = D(1) if on_hand > 1 else D("0.5")
        rest = on_hand - first if on_hand > first else D(1)
        parts = (SplitPart(lot_id=new, quantity=first), SplitPart(lot_id=new + "b", quantity=rest))
        return Split(lot_id=lot, parts=parts, **nid())
    if kind == 4:
        # Usually with another available lot (they are all steel in kg), sometimes any lot.
        usable = [i for i in lots if ledger.lots[i].state is LotState.AVAILABLE] or lots
        other = rng.choice(usable if rng.random() < 0.8 else lots)
        return Merge(lot_ids=(lot, other), into=new, location="a", **nid())
    if kind == 5:
        return Move(lot_id=lot, location=rng.choice(["a", "b", "c"]), **nid())
    if kind == 6:
        return Ship(lot_id=lot, customer="c1", shipment_id="s1", **nid())
    if kind == 7:
        return Hold(lot_id=lot, reason="check", **nid())
    if kind == 8:
        return Release(lot_id=lot, **nid())
    return Scrap(lot_id=lot, quantity=qty, **nid())


@pytest.mark.parametrize("seed", [1, 2])
def test_random_sequences_equal_the_pure_ledger(store: ValuechainStore, seed: int) -> None:
    """Random transactions, some refused; store and ledger agree on every one and at the end."""
    rng = random.Random(seed)
    nid = Ids()
    pure = Ledger()
    txs: list[Transaction] = []
    for n in range(150):
        tx = random_transaction(rng, pure, nid, n)
        txs.append(tx)
        with contextlib.suppress(TransactionRefused):
            pure.apply(tx)
    ledger = run_both(store, txs)
    # Enough of every kind got through, with edges of all three kinds, to mean something.
    assert {tx.kind for tx in ledger.log} == {
        "receive", "consume", "produce", "split", "merge", "move", "ship", "hold", "release",
        "scrap",
    }  # fmt: skip
    assert {e.kind.value for e in ledger.edges} == {"consumed_into", "split_into", "merged_into"}
    assert len(ledger.log) < len(txs)  # and some were refused
    assert_same(store, ledger)


def test_restart_keeps_everything(db_url: str) -> None:
    first = ValuechainStore(db_url, clock=FakeClock(T0))
    first.open()
    try:
        put_all(first)
        ledger = run_both(first, scenario())
    finally:
        first.close()
    first.close()  # a no-op
    again = ValuechainStore(db_url, clock=FakeClock(T0))
    again.open()
    try:
        assert again.materials() == [BRACKET, FRAME, STEEL]
        assert again.boms() == [BRACKET_BOM, FRAME_BOM]
        assert_same(again, ledger)
        # And the booking carried over: a later produce into WO1 draws on the same lots.
        nid = Ids()
        nid.n = 1000
        change = again.apply(
            Produce(
                lot_id="F9",
                material="frame",
                quantity=D(1),
                unit="pcs",
                location="x",
                order_id="WO1",
                **nid(),
            )
        )
        assert [(e.source, e.quantity) for e in change.edges] == [
            ("S1", D("20.5")),
            ("S2", D("10")),
        ]
    finally:
        again.close()


# -- migrations -------------------------------------------------------------------------------


def test_migrated_schema_matches_the_tables(store: ValuechainStore) -> None:
    with store.engine.connect() as conn:
        assert migrations.current_revision(conn) == migrations.head_revision() == "0002"
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        assert compare_metadata(context, metadata) == []
        tables = set(inspect(conn).get_table_names())
        assert tables - {VERSION_TABLE} == set(metadata.tables)


def test_downgrade_to_base_removes_the_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'valuechain.db'}"
    store = ValuechainStore(url)
    store.open()
    store.close()
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            config = migrations.alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) & set(metadata.tables) == set()
            assert migrations.current_revision(conn) is None
    finally:
        engine.dispose()


def test_not_open() -> None:
    with pytest.raises(RuntimeError, match="not open"):
        _ = ValuechainStore("sqlite://").engine
