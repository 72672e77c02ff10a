"""A supplier account sees its purchase orders and nothing else, on every route (issue 16).

Every route of the app tagged "value chain" is called as the supplier's users: its tenant's
administrator, who holds every permission in that tenant (so that only the value chain's own
rule can refuse it), and a viewer. The routes come from the app, not from a list kept here: a
new value chain route fails the test until ASKS gives it concrete arguments. An answer is 200
only on a route a partner may read (PARTNER_READS), and then it names nothing but the
supplier's own records: its organisation, its purchase orders, its lots and their material.
Every other answer is a refusal (403) or a record that is not there for it (404), never a
server error, and the enterprise's records are the same afterwards.

The supplier here is granted no share: what the enterprise shares on purpose (forecasts,
quality, genealogy) is tested with the routes that read it (test_valuechain_api.py).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))
from api_helpers import make_app_client, make_settings

from kiln.model.definitions import AssetDef, Level
from kiln.model.settings import ModelSettings
from kiln.testing.auth import admin_headers, bearer_headers, user_headers

V = "/api/v1"
TAG: Final = "value chain"
PASSWORD = "correct horse battery staple"
STORE = "acme/site1/wh"

# Elec supplies cords; Poly, resin. Acme makes lamps of both and sells them to Shop.
SUPPLIER, SUPPLIER_TENANT = "ELEC", "elec"
# Its own: ELEC, PO-7 (part received: CORD-L1), PO-8 (a draft), the material CORD. Everything of the others that an answer to Elec must never name.
NOT_THEIRS: Final = frozenset({
    "ACME", "POLY", "SHOP", "poly", "retail", "buyer@acme.example", "PO-9", "SO-1", "SO-2",
    "RESIN", "LAMP", "RESIN-L1", "LAMP-L1", "WO-1", "SH-1", "R-77",
})  # fmt: skip


@dataclass(frozen=True)
class Ask:
    """One request to a route; `shows` None: the supplier is refused (403) or finds nothing
    (404); else the answer is 200 and names these records of its own."""

    url: str  # below /api/v1, the path's arguments filled in
    json: Any = None
    params: dict[str, Any] | None = None
    content: str | None = None
    shows: frozenset[str] | None = None


def _refused(url: str, json: Any = None, **kw: Any) -> Ask:
    return Ask(url, json, **kw)


def _reads(url: str, *shows: str, **kw: Any) -> Ask:
    return Ask(url, shows=frozenset(shows), **kw)


_MATERIAL = {"code": "CORD", "name": "Mine", "kind": "purchased", "supplier": "ELEC"}
_ORG = {"code": "ELEC", "name": "Mine", "kind": "enterprise", "tenant": "elec"}
_ROUTING = {"product": "LAMP", "operations": [{"number": 10, "name": "assemble",
            "work_centre_kind": "line", "work_centre": "acme/site1/line1", "cycle_s": 1}]}  # fmt: skip
_LOCATION = {"code": "ELEC-BIN", "asset_path": STORE, "kind": "receiving"}
_PO = {"id": "PO-ELEC", "supplier": "ELEC",
       "lines": [{"line_no": 1, "material": "CORD", "quantity": "999", "promised": "2030-01-01"}]}  # fmt: skip
_SO = {"id": "SO-ELEC", "customer": "SHOP",
       "lines": [{"line_no": 1, "material": "LAMP", "quantity": "1", "due": "2030-01-01"}]}  # fmt: skip
_RECEIPT = {"line_no": 1, "quantity": "5", "lot_id": "CORD-ELEC", "location": STORE}
_B2MML = "<MaterialDefinitionInformation/>"  # refused before it is read
B2MML_DOCUMENTS = (
    "material-definitions",
    "material-lots",
    "operations-schedule",
    "operations-performance",
)

# The routes a partner's user may read without a share, each answering its own records only.
PARTNER_READS: Final = frozenset({
    "GET /api/v1/organisations", "GET /api/v1/organisations/{code}",
    "GET /api/v1/purchase-orders", "GET /api/v1/purchase-orders/{order_id}",
    "GET /api/v1/sales-orders", "GET /api/v1/sales-orders/{order_id}",
    "GET /api/v1/lots", "GET /api/v1/lots/{lot_id}",
})  # fmt: skip

# Per route: its own records where the supplier has any, the others' besides, and each change
# tried on the supplier's own records first (sending its own order, holding its own lot). In a
# URL, "{CORD}" stands for planning's proposal of that material (its id is made by the run).
ASKS: Final[dict[str, tuple[Ask, ...]]] = {
    "GET /api/v1/organisations": (_reads("/organisations", "ELEC"),),
    "GET /api/v1/organisations/{code}": (
        _reads("/organisations/ELEC", "ELEC"),
        _refused("/organisations/ACME"),
        _refused("/organisations/POLY"),
    ),
    "PUT /api/v1/organisations/{code}": (
        _refused("/organisations/ELEC", _ORG),
        _refused("/organisations/ACME", {**_ORG, "code": "ACME"}),
    ),
    "DELETE /api/v1/organisations/{code}": (
        _refused("/organisations/ELEC"),
        _refused("/organisations/POLY"),
    ),
    "GET /api/v1/materials": (_refused("/materials"),),
    "PUT /api/v1/materials/{code}": (_refused("/materials/CORD", _MATERIAL),),
    "DELETE /api/v1/materials/{code}": (_refused("/materials/CORD"),),
    "PUT /api/v1/boms/{parent}": (
        _refused(
            "/boms/LAMP", {"parent": "LAMP", "lines": [{"component": "CORD", "quantity": "9"}]}
        ),
    ),
    "DELETE /api/v1/boms/{parent}": (_refused("/boms/LAMP"),),
    "GET /api/v1/sales-orders": (_reads("/sales-orders"),),
    "GET /api/v1/sales-orders/{order_id}": (_refused("/sales-orders/SO-1"),),
    "POST /api/v1/sales-orders": (_refused("/sales-orders", _SO),),
    "POST /api/v1/sales-orders/{order_id}/actions": (
        _refused("/sales-orders/SO-2/actions", {"action": "cancel"}),
    ),
    "POST /api/v1/sales-orders/{order_id}/shipments": (
        _refused(
            "/sales-orders/SO-2/shipments",
            {"line_no": 1, "lot_id": "CORD-L1", "shipment_id": "SH-ELEC"},
        ),
    ),
    "GET /api/v1/purchase-orders": (_reads("/purchase-orders", "PO-7", "PO-8"),),
    "GET /api/v1/purchase-orders/{order_id}": (
        _reads("/purchase-orders/PO-7", "PO-7", "CORD-L1"),
        _reads("/purchase-orders/PO-8", "PO-8"),
        _refused("/purchase-orders/PO-9"),
    ),
    "POST /api/v1/purchase-orders": (_refused("/purchase-orders", _PO),),
    "POST /api/v1/purchase-orders/{order_id}/actions": (
        _refused("/purchase-orders/PO-8/actions", {"action": "send"}),
        _refused("/purchase-orders/PO-9/actions", {"action": "cancel"}),
    ),
    "POST /api/v1/purchase-orders/{order_id}/receipts": (
        _refused("/purchase-orders/PO-7/receipts", _RECEIPT),
    ),
    "POST /api/v1/planning/runs": (_refused("/planning/runs", {"today": "2030-03-02"}),),
    "GET /api/v1/planning/proposals": (_refused("/planning/proposals"),),
    "POST /api/v1/planning/proposals/{proposal_id}/confirm": (
        _refused("/planning/proposals/{CORD}/confirm", {}),
    ),
    "POST /api/v1/planning/proposals/{proposal_id}/dismiss": (
        _refused("/planning/proposals/{CORD}/dismiss"),
    ),
    "GET /api/v1/lots": (_reads("/lots", "CORD-L1"),),
    "GET /api/v1/lots/transactions": (_refused("/lots/transactions"),),
    "GET /api/v1/lots/{lot_id}": (
        _reads("/lots/CORD-L1", "CORD-L1", "PO-7"),
        _refused("/lots/RESIN-L1"),
        _refused("/lots/LAMP-L1"),
    ),
    "POST /api/v1/lots/transactions": (
        _refused(
            "/lots/transactions",
            {"kind": "hold", "id": "t-elec", "lot_id": "CORD-L1", "reason": "mine"},
        ),
    ),
    "GET /api/v1/lots/{lot_id}/genealogy": (
        _refused("/lots/CORD-L1/genealogy", params={"direction": "forward"}),
        _refused("/lots/LAMP-L1/genealogy"),
    ),
    "GET /api/v1/lots/{lot_id}/production": (
        _refused("/lots/CORD-L1/production"),
        _refused("/lots/LAMP-L1/production"),
    ),
    "GET /api/v1/inventory": (_refused("/inventory"),),
    "POST /api/v1/recalls": (_refused("/recalls", {"lots": ["CORD-L1"]}),),
    "GET /api/v1/valuechain/events": (_refused("/valuechain/events"),),
    "GET /api/v1/routings": (_refused("/routings"),),
    "PUT /api/v1/routings/{product}": (_refused("/routings/LAMP", _ROUTING),),
    "DELETE /api/v1/routings/{product}": (_refused("/routings/LAMP"),),
    "GET /api/v1/locations": (_refused("/locations"),),
    "PUT /api/v1/locations/{code}": (_refused("/locations/ELEC-BIN", _LOCATION),),
    "DELETE /api/v1/locations/{code}": (_refused("/locations/WH"),),
    "GET /api/v1/master-data/{file}.csv": tuple(
        _refused(f"/master-data/{f}.csv")
        for f in ("materials", "bom_lines", "routings", "locations")
    ),
    "POST /api/v1/master-data/import": (
        _refused("/master-data/import", {"materials.csv": "code,name,kind\nCORD,Mine,purchased\n"}),
    ),
    **{
        f"GET /api/v1/b2mml/{d}": (_refused(f"/b2mml/{d}", params={"material": "CORD"}),)
        for d in B2MML_DOCUMENTS
    },
    **{
        f"POST /api/v1/b2mml/{d}": (_refused(f"/b2mml/{d}", content=_B2MML),)
        for d in B2MML_DOCUMENTS
    },
}


def value_chain_routes(app: FastAPI) -> list[str]:
    """Every route of `app` tagged "value chain", as "METHOD path" (routers included with a
    prefix or tags of their own too: the route as the app serves it)."""
    return sorted(
        f"{method} {context.path}"
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute) and TAG in (context.tags or ())
        for method in (context.methods or set()) - {"HEAD"}
    )


def test_a_new_value_chain_route_needs_an_entry() -> None:
    app = FastAPI()

    @app.get(f"{V}/forecasts", tags=[TAG])
    def forecasts() -> dict[str, Any]:
        return {}

    @app.get(f"{V}/elsewhere", tags=["alarms"])
    def elsewhere() -> dict[str, Any]:
        return {}

    assert value_chain_routes(app) == ["GET /api/v1/forecasts"]
    assert set(value_chain_routes(app)) - set(ASKS) == {"GET /api/v1/forecasts"}


# -- the world ----------------------------------------------------------------------------------


class Trading:
    def __init__(self, client: TestClient, data: Path) -> None:
        self.client = client
        self.admin = admin_headers(client, data)

    def ok(self, method: str, url: str, json: Any = None) -> Any:
        r = self.client.request(method, f"{V}{url}", json=json, headers=self.admin)
        assert r.status_code in (200, 201), (method, url, r.status_code, r.text)
        return r.json()

    def records(self) -> dict[str, Any]:
        """What the enterprise's administrator reads of the value chain: the same before and
        after the supplier's attempts, or one of them changed something."""
        reads = ("/organisations", "/materials", "/sales-orders", "/purchase-orders", "/lots",
                 "/planning/proposals", "/inventory", "/routings", "/locations")  # fmt: skip
        out = {url: self.ok("GET", url) for url in reads}
        out["events"] = self.ok("GET", "/valuechain/events?limit=5000")["events"]
        return out


def _material(code: str, kind: str, supplier: str | None = None) -> dict[str, Any]:
    return {"code": code, "name": code.title(), "kind": kind, "supplier": supplier}


def _po(order_id: str, supplier: str, material: str) -> dict[str, Any]:
    line = {"line_no": 1, "material": material, "quantity": "100", "promised": "2030-03-09"}
    return {"id": order_id, "supplier": supplier, "lines": [line]}


def _so(order_id: str, quantity: str, due: str) -> dict[str, Any]:
    line = {"line_no": 1, "material": "LAMP", "quantity": quantity, "due": due}
    return {"id": order_id, "customer": "SHOP", "lines": [line]}


@pytest.fixture
def trading(tmp_path: Path) -> Iterator[Trading]:
    """Acme buys cords of Elec (PO-7, part received: CORD-L1; PO-8, a draft) and resin of Poly
    (PO-9: RESIN-L1), makes a lamp lot of both in WO-1, ships it to Shop on SO-1, and has
    planned SO-2 (proposals for each material, one of them Elec's)."""
    data = tmp_path / "data"
    model = ModelSettings(
        assets=[
            AssetDef(path="acme", level=Level.ENTERPRISE),
            AssetDef(path="acme/site1", level=Level.SITE),
            AssetDef(path=STORE, level=Level.AREA),
        ]
    )
    with make_app_client(make_settings(data, model=model)) as client:
        w = Trading(client, data)
        for tenant in ("elec", "poly", "retail"):
            w.ok("POST", "/tenants", {"name": tenant, "kind": "partner",
                                      "admin_username": f"{tenant}-admin",
                                      "admin_password": PASSWORD})  # fmt: skip
        acme_buyer = {"name": "Ann", "email": "buyer@acme.example", "role": "buyer"}
        for code, kind, tenant in (
            ("ACME", "enterprise", "default"),
            ("ELEC", "supplier", "elec"),
            ("POLY", "supplier", "poly"),
            ("SHOP", "customer", "retail"),
        ):
            contacts = [acme_buyer] if code == "ACME" else []
            org = {"code": code, "name": code.title(), "kind": kind, "tenant": tenant,
                   "contacts": contacts}  # fmt: skip
            w.ok("PUT", f"/organisations/{code}", org)
        w.ok("PUT", "/materials/CORD", _material("CORD", "purchased", "ELEC"))
        w.ok("PUT", "/materials/RESIN", _material("RESIN", "purchased", "POLY"))
        w.ok("PUT", "/materials/LAMP", _material("LAMP", "finished"))
        lines = [{"component": "CORD", "quantity": "2"}, {"component": "RESIN", "quantity": "1"}]
        w.ok("PUT", "/boms/LAMP", {"parent": "LAMP", "lines": lines})
        w.ok("PUT", "/locations/WH", {"code": "WH", "asset_path": STORE, "kind": "warehouse"})
        for order_id, supplier, material, lot in (
            ("PO-7", "ELEC", "CORD", "CORD-L1"),
            ("PO-9", "POLY", "RESIN", "RESIN-L1"),
        ):
            w.ok("POST", "/purchase-orders", _po(order_id, supplier, material))
            w.ok("POST", f"/purchase-orders/{order_id}/actions", {"action": "send"})
            receipt = {"line_no": 1, "quantity": "60", "lot_id": lot, "location": STORE,
                       "supplier_lot": "E-77" if supplier == "ELEC" else "R-77"}  # fmt: skip
            w.ok("POST", f"/purchase-orders/{order_id}/receipts", receipt)
        w.ok("POST", "/purchase-orders", _po("PO-8", "ELEC", "CORD"))
        w.ok("POST", "/sales-orders", _so("SO-1", "10", "2030-03-16"))
        w.ok("POST", "/sales-orders/SO-1/actions", {"action": "confirm"})
        for lot, quantity in (("CORD-L1", "20"), ("RESIN-L1", "10")):
            w.ok("POST", "/lots/transactions", {"kind": "consume", "id": f"use-{lot}",
                 "lot_id": lot, "quantity": quantity, "order_id": "WO-1"})  # fmt: skip
        w.ok("POST", "/lots/transactions", {"kind": "produce", "id": "make-lamp",
             "lot_id": "LAMP-L1", "material": "LAMP", "quantity": "10", "unit": "pcs",
             "location": STORE, "order_id": "WO-1"})  # fmt: skip
        shipment = {"line_no": 1, "lot_id": "LAMP-L1", "shipment_id": "SH-1"}
        w.ok("POST", "/sales-orders/SO-1/shipments", shipment)
        w.ok("POST", "/sales-orders", _so("SO-2", "500", "2030-06-01"))
        w.ok("POST", "/sales-orders/SO-2/actions", {"action": "confirm"})
        w.ok("POST", "/planning/runs", {"today": "2030-03-02"})
        yield w


# -- the test -----------------------------------------------------------------------------------


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _named(text: str, name: str) -> bool:
    """Whether `text` is `name` or names it as a whole word ("SO-2/1" names SO-2, "CORD-L1"
    does not name CORD's neighbour "CORD-L")."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def _records(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from _records(v)
    elif isinstance(value, list):
        for v in value:
            yield from _records(v)


def assert_only_its_own(label: str, ask: Ask, body: Any) -> None:
    """The answer names every record `ask` expects and nothing of the others'; each order or
    lot in it is the supplier's, and each organisation is the supplier itself."""
    strings = list(_strings(body))
    leaked = sorted(n for n in NOT_THEIRS if any(_named(s, n) for s in strings))
    assert leaked == [], f"{label} {ask.url} shows a supplier {leaked}: {body}"
    assert ask.shows is not None
    missing = sorted(n for n in ask.shows if not any(_named(s, n) for s in strings))
    assert missing == [], f"{label} {ask.url} leaves out the supplier's own {missing}: {body}"
    for record in _records(body):
        if "supplier" in record:  # an order or a lot
            assert record["supplier"] == SUPPLIER, f"{label} {ask.url}: {record}"
        if "customer" in record:
            assert record["customer"] is None, f"{label} {ask.url}: {record}"
        if "tenant" in record:  # an organisation
            assert (record["code"], record["tenant"]) == (SUPPLIER, SUPPLIER_TENANT), record


def _url(ask: Ask, proposals: dict[str, str]) -> str:
    """The request's URL: "{MATERIAL}" stands for the proposal of that material."""
    return V + re.sub(r"\{(\w+)\}", lambda m: proposals[m.group(1)], ask.url)


def test_a_supplier_sees_its_purchase_orders_and_nothing_else_on_every_route(
    trading: Trading,
) -> None:
    w = trading
    app = w.client.app
    assert isinstance(app, FastAPI)
    routes = value_chain_routes(app)
    assert len(routes) >= 31, routes
    unknown = sorted(set(routes) - set(ASKS))
    assert unknown == [], f"value chain routes with no arguments in ASKS: {unknown}"
    assert sorted(set(ASKS) - set(routes)) == [], "entries of ASKS for routes there are not"
    proposals = {p["material"]: p["id"] for p in w.ok("GET", "/planning/proposals")["proposals"]}
    assert proposals.get("CORD"), proposals
    before = w.records()
    elec_admin = bearer_headers(w.client, "elec-admin", PASSWORD)
    viewer = user_headers(w.client, elec_admin, "elec-viewer", PASSWORD, ["viewer"])
    answers: dict[str, set[int]] = {}
    for who, headers in (("elec-admin", elec_admin), ("elec-viewer", viewer)):
        for label in routes:
            method = label.split(" ", 1)[0]
            for ask in ASKS[label]:
                r = w.client.request(
                    method,
                    _url(ask, proposals),
                    json=ask.json,
                    params=ask.params,
                    content=ask.content,
                    headers=headers,
                )
                where = f"{label} {ask.url} as {who}: {r.status_code} {r.text[:300]}"
                answers.setdefault(label, set()).add(r.status_code)
                if ask.shows is None:
                    assert r.status_code in (403, 404), where
                    continue
                assert label in PARTNER_READS, f"{label} is no route a partner reads"
                assert r.status_code == 200, where
                assert_only_its_own(label, ask, r.json())
    # A 200 only where a partner may read (a sales order: none is the supplier's), and the
    # administrator's attempts changed nothing.
    read = {label for label, got in answers.items() if 200 in got}
    assert read == PARTNER_READS - {"GET /api/v1/sales-orders/{order_id}"}, read
    assert w.records() == before
