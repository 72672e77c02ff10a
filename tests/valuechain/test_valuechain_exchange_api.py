"""Routings, locations, master data as CSV and B2MML documents through the HTTP API: round
trips, refusals that name the row and column or the element, and imports that change nothing
when one part is wrong."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))
from api_helpers import make_app_client, make_settings

from kiln.model.definitions import AssetDef, Level
from kiln.model.settings import ModelSettings
from kiln.testing import postgres
from kiln.testing.auth import admin_headers, user_headers
from kiln.testing.clock import FakeClock
from kiln.valuechain.b2mml import (
    MaterialMovement,
    MaterialUse,
    OperationsPerformanceDoc,
    OrderPerformance,
    export_operations_performance,
    import_operations_performance,
)
from kiln.valuechain.b2mml.document import validate
from kiln.valuechain.engine_exchange import _book_performance
from kiln.valuechain.lots import Receive, TransactionRefused
from kiln.valuechain.store import ValuechainStore

V = "/api/v1"
PASSWORD = "correct horse battery staple"


class Client:
    def __init__(self, client: TestClient, data: Path) -> None:
        self.client = client
        self.admin = admin_headers(client, data)

    def call(self, method: str, url: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.client.request(method, f"{V}{url}", headers=headers or self.admin, **kw)

    def ok(self, method: str, url: str, **kw: Any) -> Any:
        r = self.call(method, url, **kw)
        assert r.status_code in (200, 201), (method, url, r.status_code, r.text)
        return r


def _plant(data: Path) -> Any:
    return make_settings(
        data,
        model=ModelSettings(
            assets=[
                AssetDef(path="acme", level=Level.ENTERPRISE),
                AssetDef(path="acme/site1", level=Level.SITE),
                AssetDef(path="acme/site1/wh", level=Level.AREA),
            ]
        ),
    )


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Client]:
    with make_app_client(_plant(tmp_path / "data")) as client:
        c = Client(client, tmp_path / "data")
        for code, kind in (("CORD", "purchased"), ("LAMP", "finished")):
            c.ok("PUT", f"/materials/{code}", json={"code": code, "name": code, "kind": kind})
        c.ok(
            "PUT",
            "/boms/LAMP",
            json={"parent": "LAMP", "lines": [{"component": "CORD", "quantity": "2"}]},
        )
        yield c


ROUTING = {
    "product": "LAMP",
    "operations": [
        {
            "number": 10,
            "name": "assemble",
            "work_centre_kind": "line",
            "work_centre": "acme/site1/line1",
            "cycle_s": 12.5,
            "setup_s": 600,
        }
    ],
}


def test_routings_and_locations_on_the_hierarchy(api: Client) -> None:
    api.ok("PUT", "/routings/LAMP", json=ROUTING)
    assert api.ok("GET", "/routings").json()["routings"][0]["operations"][0]["cycle_s"] == 12.5
    bad = {**ROUTING, "product": "GHOST"}
    r = api.call("PUT", "/routings/GHOST", json=bad)
    assert r.status_code == 400 and "GHOST" in r.json()["detail"], r.text
    wh = {"code": "WH", "name": "Warehouse", "asset_path": "acme/site1/wh", "kind": "warehouse"}
    api.ok("PUT", "/locations/WH", json=wh)
    typo = {**wh, "code": "WH2", "asset_path": "acme/site1/whx"}
    r = api.call("PUT", "/locations/WH2", json=typo)
    assert r.status_code == 400 and "acme/site1" in r.json()["detail"], r.text
    bin_a = {"code": "WH-A", "asset_path": "acme/site1/wh", "kind": "storage_zone", "parent": "WH"}
    api.ok("PUT", "/locations/WH-A", json=bin_a)
    r = api.call("DELETE", "/locations/WH")
    assert r.status_code == 400 and "WH-A" in r.json()["detail"]
    assert [x["code"] for x in api.ok("GET", "/locations").json()["locations"]] == ["WH", "WH-A"]


def test_master_data_csv_round_trip_and_errors_with_row_and_column(api: Client) -> None:
    api.ok("PUT", "/routings/LAMP", json=ROUTING)
    files = {
        f"{name}.csv": api.ok("GET", f"/master-data/{name}.csv").text
        for name in ("materials", "bom_lines", "routings", "locations")
    }
    assert files["bom_lines.csv"].splitlines()[1].startswith("LAMP,CORD,2")
    # Change a name and add a material through the files; all of it lands.
    files["materials.csv"] = files["materials.csv"].replace("CORD,CORD", "CORD,Power cord")
    files["materials.csv"] += "SHADE,Shade,pcs,0,purchased,,,,,,,,,\r\n"
    reply = api.ok("POST", "/master-data/import", json=files).json()
    assert reply["imported"]["materials"] == 3
    names = {m["code"]: m["name"] for m in api.ok("GET", "/materials").json()["materials"]}
    assert names == {"CORD": "Power cord", "LAMP": "LAMP", "SHADE": "Shade"}
    # A bad cell: the row (the header is row 1) and the column are named; nothing lands.
    broken = files["materials.csv"].replace("SHADE,Shade,pcs,0", "SHADE,Shade,pcs,ten")
    broken = broken.replace("Power cord", "Cord again")
    r = api.call("POST", "/master-data/import", json={**files, "materials.csv": broken})
    assert r.status_code == 400, r.text
    assert "materials.csv row 4, column decimals" in r.json()["detail"], r.json()["detail"]
    names = {m["code"]: m["name"] for m in api.ok("GET", "/materials").json()["materials"]}
    assert names["CORD"] == "Power cord"


def test_b2mml_definitions_and_lots_validate_and_come_back(api: Client, tmp_path: Path) -> None:
    definitions = api.ok("GET", "/b2mml/material-definitions").content
    validate_bytes(definitions)
    api.ok("PUT", "/organisations/ELEC", json={"code": "ELEC", "name": "Elec", "kind": "supplier",
                                                "tenant": "elec"})  # fmt: skip
    for tx in (
        {"kind": "receive", "id": "r1", "lot_id": "C-1", "material": "CORD", "quantity": "7.125",
         "unit": "pcs", "location": "acme/site1/wh", "supplier": "ELEC"},
        {"kind": "split", "id": "s1", "lot_id": "C-1",
         "parts": [{"lot_id": "C-1a", "quantity": "7"}, {"lot_id": "C-1b", "quantity": "0.125"}]},
    ):  # fmt: skip
        api.ok("POST", "/lots/transactions", json=tx)
    lots = api.ok("GET", "/b2mml/material-lots", params={"material": "CORD"}).content
    validate_bytes(lots)
    assert b"C-1b" in lots and b"0.125" in lots
    # Into a second installation: the definitions, then the lots, equal to what left.
    with make_app_client(_plant(tmp_path / "other")) as other_client:
        other = Client(other_client, tmp_path / "other")
        xml = {"Content-Type": "application/xml"}
        r = other.call("POST", "/b2mml/material-definitions", content=definitions,
                       headers={**other.admin, **xml})  # fmt: skip
        assert r.status_code == 200, r.text
        assert other.ok("GET", "/materials").json() == api.ok("GET", "/materials").json()
        r = other.call("POST", "/b2mml/material-lots", content=lots, headers={**other.admin, **xml})
        assert r.status_code == 200, r.text
        got = {lot["id"]: lot["quantity"] for lot in other.ok("GET", "/lots").json()["lots"]}
        assert got["C-1a"] == "7" and got["C-1b"] == "0.125"
        r = other.call("POST", "/b2mml/material-lots", content=b"<nope/>",
                       headers={**other.admin, **xml})  # fmt: skip
        assert r.status_code == 400
        # An operator books stock; it does not define materials.
        op = user_headers(other_client, other.admin, "op", PASSWORD, ["operator"])
        r = other.call("POST", "/b2mml/material-definitions", content=definitions,
                       headers={**op, **xml})  # fmt: skip
        assert r.status_code == 403


def validate_bytes(data: bytes) -> None:
    import xml.etree.ElementTree as ET

    validate(ET.fromstring(data))


# -- operations performance ------------------------------------------------------------------

XML = {"Content-Type": "application/xml"}
# Ids as Kiln writes them: with these, `b2mml-<document>-<order>-<c|p>-<lot>` is longer than
# the 64 characters a transaction id may have, and the two produced lots differ only beyond it.
DOC = "kiln-1764864000000000"
ORDER = "WO-LAMP-20300110-1"


def _performance(*movements: tuple[str, str, str, str], doc: str = DOC) -> bytes:
    """A performance document of ORDER: (lot, material, quantity, Consumed or Produced)."""
    order = OrderPerformance(
        order_id=ORDER,
        movements=tuple(
            MaterialMovement(
                lot_id=lot, material=material, quantity=Decimal(q), unit="pcs", use=MaterialUse(use)
            )
            for lot, material, q, use in movements
        ),
    )
    return export_operations_performance([order], performance_id=doc, created_us=1)


def _receive_cord(api: Client, lot: str = "C-1", quantity: str = "10") -> None:
    api.ok(
        "PUT",
        "/organisations/ELEC",
        json={"code": "ELEC", "name": "Elec", "kind": "supplier", "tenant": "elec"},
    )
    api.ok(
        "POST",
        "/lots/transactions",
        json={
            "kind": "receive",
            "id": f"r-{lot}",
            "lot_id": lot,
            "material": "CORD",
            "quantity": quantity,
            "unit": "pcs",
            "location": "acme/site1/wh",
            "supplier": "ELEC",
        },
    )


def _import(api: Client, xml: bytes) -> Any:
    return api.call(
        "POST", "/b2mml/operations-performance", content=xml, headers={**api.admin, **XML}
    )


def _lots(api: Client) -> dict[str, str]:
    return {lot["id"]: lot["quantity"] for lot in api.ok("GET", "/lots").json()["lots"]}


def _transaction_ids(api: Client) -> list[str]:
    return [tx["id"] for tx in api.ok("GET", "/lots/transactions").json()["transactions"]]


LAMPS = (
    ("C-1", "CORD", "4", "Consumed"),
    (f"{ORDER}-1", "LAMP", "1", "Produced"),
    (f"{ORDER}-2", "LAMP", "1", "Produced"),
)


def test_performance_with_long_ids_books_every_lot_and_a_second_import_nothing(
    api: Client,
) -> None:
    _receive_cord(api)
    xml = _performance(*LAMPS)
    r = _import(api, xml)
    assert r.status_code == 200, r.text
    assert r.json()["imported"] == {"transactions": 3, "already_booked": 0}
    assert _lots(api) == {"C-1": "6", f"{ORDER}-1": "1", f"{ORDER}-2": "1"}
    booked = [i for i in _transaction_ids(api) if i.startswith("b2mml-")]
    assert len(booked) == 3 and len(set(booked)) == 3
    assert all(len(i) <= 64 for i in booked)
    # The same document again: recognised, nothing booked twice.
    r = _import(api, xml)
    assert r.status_code == 200, r.text
    assert r.json()["imported"] == {"transactions": 0, "already_booked": 3}
    assert _lots(api) == {"C-1": "6", f"{ORDER}-1": "1", f"{ORDER}-2": "1"}
    assert [i for i in _transaction_ids(api) if i.startswith("b2mml-")] == booked
    # Another document reporting the same order and lots is other movements: the ledger
    # refuses producing lots that exist, and nothing of it is booked.
    r = _import(api, _performance(LAMPS[0], LAMPS[1], doc="kiln-1764864000000001"))
    assert r.status_code == 400, r.text
    assert _lots(api)["C-1"] == "6"


def test_performance_with_a_refused_movement_books_nothing_and_names_it(api: Client) -> None:
    _receive_cord(api)
    before = _transaction_ids(api)
    # Good movements first: they must not stay booked when the last one is refused.
    xml = _performance(*LAMPS, ("GHOST-9", "CORD", "1", "Consumed"))
    r = _import(api, xml)
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert "GHOST-9" in detail and ORDER in detail and "nothing was booked" in detail, detail
    assert _lots(api) == {"C-1": "10"}
    assert _transaction_ids(api) == before
    # Once the lot exists the same document books whole.
    _receive_cord(api, "GHOST-9", "1")
    r = _import(api, xml)
    assert r.status_code == 200, r.text
    assert r.json()["imported"] == {"transactions": 4, "already_booked": 0}
    assert _lots(api) == {"C-1": "6", "GHOST-9": "0", f"{ORDER}-1": "1", f"{ORDER}-2": "1"}


def test_performance_booked_under_the_earlier_ids_is_recognised(api: Client) -> None:
    """Before ids were digests they were `b2mml-<document>-<order>-<C|P>-<lot>` cut at 64
    characters: one booked so is not booked again, and a cut id (which may stand for another
    lot of the order) does not hide a lot that was never booked."""
    _receive_cord(api)
    old_consume = f"b2mml-{DOC}-{ORDER}-C-C-1"
    assert len(old_consume) <= 64
    api.ok(
        "POST",
        "/lots/transactions",
        json={
            "kind": "consume",
            "id": old_consume,
            "lot_id": "C-1",
            "quantity": "4",
            "order_id": ORDER,
        },
    )
    cut = f"b2mml-{DOC}-{ORDER}-P-{ORDER}-1"[:64]
    api.ok(
        "POST",
        "/lots/transactions",
        json={
            "kind": "produce",
            "id": cut,
            "lot_id": f"{ORDER}-1",
            "material": "LAMP",
            "quantity": "1",
            "unit": "pcs",
            "location": "b2mml",
            "order_id": ORDER,
        },
    )
    # The cut id of lot -1 is lot -2's too; lot -1 exists, so the ledger refuses booking it
    # again and the document is refused whole: the caller sees it rather than a lost lot.
    r = _import(api, _performance(*LAMPS))
    assert r.status_code == 400 and f"{ORDER}-1" in r.json()["detail"], r.text
    # Without lot -1 in it, the consumption is recognised and lot -2 is booked.
    r = _import(api, _performance(LAMPS[0], LAMPS[2]))
    assert r.status_code == 200, r.text
    assert r.json()["imported"] == {"transactions": 1, "already_booked": 1}
    assert _lots(api) == {"C-1": "6", f"{ORDER}-1": "1", f"{ORDER}-2": "1"}


# -- the booking itself, on both databases -----------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ValuechainStore]:
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'valuechain.db'}"
        else:
            url = stack.enter_context(postgres.schema_for_test())
        s = ValuechainStore(url, clock=FakeClock(T0))
        s.open()
        stack.callback(s.close)
        yield s


T0 = 1_767_225_600_000_000


def _doc(*movements: tuple[str, str, str, str]) -> OperationsPerformanceDoc:
    return import_operations_performance(_performance(*movements))


def test_booking_is_one_database_transaction(store: ValuechainStore) -> None:
    store.apply(
        Receive(
            id="r-C-1",
            time_us=T0,
            user="u",
            lot_id="C-1",
            material="CORD",
            quantity=Decimal(10),
            unit="pcs",
            location="wh",
            supplier="ELEC",
        )
    )
    logged = len(store.transactions())
    bad = _doc(*LAMPS, ("GHOST-9", "CORD", "1", "Consumed"))
    with pytest.raises(TransactionRefused, match="GHOST-9"):
        _book_performance(store, bad, T0, "u")
    assert len(store.transactions()) == logged
    assert sorted(store.lots_by_id(["C-1", f"{ORDER}-1", f"{ORDER}-2"])) == ["C-1"]
    cord = store.lot("C-1")
    assert cord is not None and cord.quantity == Decimal(10)
    good = _doc(*LAMPS)
    assert _book_performance(store, good, T0, "u") == (3, 0)
    assert _book_performance(store, good, T0, "u") == (0, 3)
    assert len(store.transactions()) == logged + 3
    assert store.order_performance(ORDER).movements == good.orders[0].movements
