"""Routings, locations, master data as CSV and B2MML documents through the HTTP API: round
trips, refusals that name the row and column or the element, and imports that change nothing
when one part is wrong."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))
from api_helpers import make_app_client, make_settings

from kiln.model.definitions import AssetDef, Level
from kiln.model.settings import ModelSettings
from kiln.testing.auth import admin_headers, user_headers
from kiln.valuechain.b2mml.document import validate

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
