"""The authorization matrix: every route x every built-in role x own tenant / other tenant /
out-of-scope site, against one in-process platform.

The platform has two owner tenants: "default" (namespace "*", so acme/...; its administrator
is the bootstrap admin) and "other" (namespace globex/...), plus a partner tenant. The default
tenant has, for each built-in role, a user holding it tenant-wide ("<role>-all") and one
holding it at acme/site1 only ("<role>-site1"). Devices have put a value in acme/site1,
acme/site2 and globex, each over the pump's flow limit: an alarm in each place, and its
notification a dead letter (the webhook refuses it).

The three cases of a route:

- own: a tenant-wide user of the default tenant, on a record of its own (in acme/site1);
- other: the same user, on a record of the other tenant (globex/..., a globex user or
  device); a list must simply not show the other tenant's records;
- scope: the acme/site1 user, on a record of acme/site2; a list must not show acme/site2.

The value chain's records are the enterprise's (the default tenant's), outside the namespace:
its "other" case is the other tenant's user of the caller's role ("gx-<role>"), a partner with
no organisation of its own, which finds lists empty, records missing (404) and the enterprise's
own data and every change refused (403); the acme/site1 user sees them as a tenant-wide one.

What a caller gets follows from the guard the route declares (`expected`): a route's own
answer for a caller the guard lets in (the ROUTES table, per case), 401 for no credentials,
403 for a role without the permission. A record the caller may not see is a 404, never a 403,
with the same answer as for a record that does not exist: existence does not leak.

The table must name every route of the app (the OpenAPI document, the WebSocket, /metrics and
the page routes), with the guard the route declares: a new route fails here until it has a
guard and an entry.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from kiln.alarms.definitions import LimitAlarm, LimitDef
from kiln.alarms.notify.settings import NotificationSettings
from kiln.alarms.records import asset_of
from kiln.api.auth import Authenticated, Public, Require, RequireDevice
from kiln.app.server import build_app
from kiln.app.settings import Settings
from kiln.model.definitions import AssetDef, AssetTypeDef, Level, TagDef
from kiln.model.settings import ModelSettings
from kiln.production.calendar import CalendarDef, ShiftDef
from kiln.production.orders import Product
from kiln.production.settings import ProductionSettings
from kiln.production.taxonomy import Category, ReasonDef, StateModel, StateRule
from kiln.security.passwords import PasswordHasherSettings
from kiln.security.permissions import BUILTIN_ROLES, Permission
from kiln.testing.auth import admin_headers, bearer_headers, device_headers
from kiln.valuechain import b2mml
from kiln.valuechain.b2mml.document import schema as b2mml_schema
from kiln.valuechain.lots import Lot

P = Permission

# -- the platform -----------------------------------------------------------------------------

V = "/api/v1"
PASSWORD = "correct horse battery staple"
ROLES: Final = ("viewer", "operator", "planner", "engineer", "admin", "auditor")
ANONYMOUS: Final = "anonymous"
CALLERS: Final = (ANONYMOUS, *ROLES)
OWN, OTHER, SCOPE = "own", "other", "scope"
CASES: Final = (OWN, OTHER, SCOPE)

SITE1_PUMP = "acme/site1/utilities/water/cell1/p1"
SITE2_PUMP = "acme/site2/utilities/water/cell1/p1"
GLOBEX_PUMP = "globex/plant1/utilities/water/cell1/p1"
SITE1_FLOW, SITE2_FLOW, GLOBEX_FLOW = (f"{a}/flow" for a in (SITE1_PUMP, SITE2_PUMP, GLOBEX_PUMP))
# Every value this module puts in a flow tag is over the limit, so that the three alarms stay
# active whatever test ran before (an ingest route's value must not clear one).
FLOW_LIMIT = 50.0
SITE1_VALUE, SITE2_VALUE, GLOBEX_VALUE = 60.0, 70.0, 80.0
OVER = 55.0  # any later value
SITE1_ALARM, SITE2_ALARM, GLOBEX_ALARM = (
    f"{a}/flow_high:hi" for a in (SITE1_PUMP, SITE2_PUMP, GLOBEX_PUMP)
)
ALARMS: Final = (SITE1_ALARM, SITE2_ALARM, GLOBEX_ALARM)
SETUP_TIMEOUT_S = 15.0  # the engine and the notifier are asynchronous: bounded waits for them
# The other tenant's administrator and one user per other built-in role ("gx-<role>"): the
# value chain's "other" case is that tenant's user of the caller's role.
GLOBEX_USERS: Final = tuple(f"gx-{role}" for role in ROLES)
GLOBEX_DEVICES: Final = ("gx-gw", "gx-spare")
# Production: each pump is a followed machine (running while it pumps), acme/site1 has a shift
# calendar, and each place a work order on its cell.
SITE1_CELL, SITE2_CELL, GLOBEX_CELL = (
    a.rsplit("/", 1)[0] for a in (SITE1_PUMP, SITE2_PUMP, GLOBEX_PUMP)
)
GLOBEX_SITE = "globex/plant1"
PUMP_STATES = StateModel(
    rules=(StateRule(when="flow > 0", category=Category.RUNNING),),
    reasons=(ReasonDef(name="dry_run", category=Category.MATERIAL),),
    count_events=True,
)


def plant(data_dir: Path, hook: str = "http://127.0.0.1:9/unused") -> Settings:
    pump = AssetTypeDef(
        name="pump",
        tags=(TagDef(name="flow", unit="m3/h"),),
        alarms=(LimitAlarm(name="flow_high", tag="flow", hi=LimitDef(value=FLOW_LIMIT)),),
    )
    # Every activation goes to one webhook, which refuses it for good (410): at once a dead
    # letter to list and retry.
    notifications = NotificationSettings.model_validate(
        {
            "users": [{"name": "ops", "webhook": hook, "channels": ["webhook"]}],
            "pipelines": [{"name": "all", "blocks": [{"kind": "notify", "users": ["ops"]}]}],
        }
    )
    return Settings(
        data_dir=data_dir,
        notifications=notifications,
        production=ProductionSettings(
            types={"pump": PUMP_STATES},
            calendars=[
                CalendarDef(
                    site=site,
                    timezone="UTC",
                    shifts=(ShiftDef(name="all", start="00:00", end="00:00"),),
                )
                for site in ("acme/site1", GLOBEX_SITE)
            ],
            products=[Product(code="water", name="Water")],
        ),
        model=ModelSettings(
            types=[pump],
            assets=[
                AssetDef(path="acme", level=Level.ENTERPRISE),
                AssetDef(path=SITE1_PUMP, level=Level.ASSET, type="pump"),
                AssetDef(path=SITE2_PUMP, level=Level.ASSET, type="pump"),
                AssetDef(path="globex", level=Level.ENTERPRISE),
                AssetDef(path=GLOBEX_PUMP, level=Level.ASSET, type="pump"),
            ],
        ),
    )


@dataclass(frozen=True)
class Call:
    """One concrete request. `headers`, when set, replace the caller's (a fresh session)."""

    method: str
    url: str
    params: dict[str, Any] | None = None
    json: Any = None
    data: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    content: str | bytes | None = None  # a raw body (line protocol, Arrow)
    content_type: str | None = None  # added to the caller's headers


@dataclass(frozen=True)
class Caller:
    role: str  # a built-in role, or ANONYMOUS
    case: str
    username: str | None
    headers: dict[str, str]


@dataclass
class World:
    client: TestClient
    admin: dict[str, str]  # the bootstrap administrator of the default tenant
    globex_admin: dict[str, str]
    users: dict[str, dict[str, str]] = field(default_factory=dict)  # headers by user name
    devices: dict[str, dict[str, str]] = field(default_factory=dict)  # headers by device name
    keys: dict[str, str] = field(default_factory=dict)  # API key ids by a name of ours
    deliveries: dict[str, str] = field(default_factory=dict)  # a notification's id by alarm id
    orders: dict[str, str] = field(default_factory=dict)  # a work order's id by its cell

    def caller(self, role: str, case: str) -> Caller:
        if role == ANONYMOUS:
            return Caller(role, case, None, {})
        username = f"{role}-site1" if case == SCOPE else f"{role}-all"
        return Caller(role, case, username, self.users[username])

    def post(self, url: str, headers: dict[str, str], **kwargs: Any) -> Any:
        r = self.client.post(url, headers=headers, **kwargs)
        assert r.status_code < 300, f"setup: POST {url} -> {r.status_code} {r.text}"
        return r.json() if r.content else None

    def sign_in(self, username: str) -> dict[str, str]:
        headers = bearer_headers(self.client, username, PASSWORD)
        self.users[username] = headers
        return headers

    def send(self, call: Call, caller: Caller) -> tuple[int, Any]:
        """The status and the decoded body; for the WebSocket the close code as a status
        (4401 as 401, 1008 as 403) or 101 and the snapshot."""
        headers = caller.headers if call.headers is None else call.headers
        if call.content_type is not None:
            headers = {**headers, "Content-Type": call.content_type}
        self.client.cookies.clear()  # only a request that signs in itself uses cookies
        try:
            if call.method == "WS":
                url = f"{call.url}?{urlencode(call.params or {})}"
                try:
                    with self.client.websocket_connect(url, headers=headers) as ws:
                        return 101, ws.receive_json()
                except WebSocketDisconnect as err:
                    return {4401: 401, 1008: 403}.get(err.code, err.code), err.reason
            r = self.client.request(
                call.method,
                call.url,
                params=call.params,
                json=call.json,
                data=call.data,
                content=call.content,
                headers=headers,
            )
        finally:
            self.client.cookies.clear()
        is_json = r.headers.get("content-type", "").startswith("application/json")
        return r.status_code, r.json() if is_json else r.text


class _Gone(BaseHTTPRequestHandler):
    """A webhook receiver that refuses every delivery for good (a 4xx other than 408, 425 or
    429 is not retried): each notification becomes a dead letter at once."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(410)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def hook() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gone)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alarms"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, hook: str) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("matrix") / "data"
    app = build_app(plant(data_dir, hook), password_settings=PasswordHasherSettings.for_tests())
    with TestClient(app) as client:
        admin = admin_headers(client, data_dir)
        world = World(client, admin, {})
        # The other owner tenant, with its administrator, users, a custom role, devices, a key.
        world.post(
            f"{V}/tenants",
            admin,
            json={"name": "other", "roots": ["globex"], "admin_username": "gx-admin",
                  "admin_password": PASSWORD},
        )  # fmt: skip
        world.post(f"{V}/tenants", admin, json={"name": "partners", "kind": "partner"})
        gx = world.globex_admin = world.sign_in("gx-admin")
        for role in ROLES:
            if role != "admin":
                world.post(f"{V}/users", gx, json=_user(f"gx-{role}", [role]))
                world.sign_in(f"gx-{role}")
        world.post(f"{V}/roles", gx, json={"name": "gx-role", "permissions": ["values:read"]})
        world.devices["gx-gw"] = device_headers(client, gx, "gx-gw", "globex")
        world.devices["gx-spare"] = device_headers(client, gx, "gx-spare", GLOBEX_PUMP)
        world.keys["globex"] = world.post(f"{V}/keys", gx, json=_key("gx-key"))["key"]["id"]
        # The default tenant: every built-in role tenant-wide and at acme/site1, two targets.
        for role in ROLES:
            for who, scope in ((f"{role}-all", None), (f"{role}-site1", "acme/site1")):
                world.post(f"{V}/users", admin, json=_user(who, [role], scope))
                world.sign_in(who)
        for who, scope in (("target-site1", "acme/site1"), ("target-site2", "acme/site2")):
            world.post(f"{V}/users", admin, json=_user(who, ["viewer"], scope))
        t2 = world.sign_in("target-site2")
        t2_key = {**_key("t2-key"), "scope": "acme/site2"}
        world.keys["site2"] = world.post(f"{V}/keys", t2, json=t2_key)["key"]["id"]
        for name, prefix in (("gw-site1", "acme/site1"), ("gw-site2", "acme/site2")):
            world.devices[name] = device_headers(client, admin, name, prefix)
        # One value in each place, sent by the device that may publish there.
        for device, tag, value in (
            ("gw-site1", SITE1_FLOW, SITE1_VALUE),
            ("gw-site2", SITE2_FLOW, SITE2_VALUE),
            ("gx-gw", GLOBEX_FLOW, GLOBEX_VALUE),
        ):
            body = world.post(
                f"{V}/ingest", world.devices[device], json={"values": [_value(tag, value)]}
            )
            assert body["accepted"] == 1, body
        _await_alarms_and_dead_letters(world)
        for cell, headers in ((SITE1_CELL, admin), (SITE2_CELL, admin), (GLOBEX_CELL, gx)):
            world.orders[cell] = world.post(
                f"{V}/orders",
                headers,
                json=_order(f"wo-{cell.split('/')[0]}-{len(world.orders)}", cell),
            )["order"]["id"]
        _trade(world)
        yield world


def _poll(what: str, probe: Callable[[], Any]) -> Any:
    """`probe()` once it is truthy; a clear failure naming `what` after SETUP_TIMEOUT_S."""
    deadline = time.monotonic() + SETUP_TIMEOUT_S
    while not (got := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"setup: {what} not within {SETUP_TIMEOUT_S:g} s")
        time.sleep(0.05)
    return got


def _alarm_ids(w: World, headers: dict[str, str]) -> set[str]:
    r = w.client.get(f"{V}/alarms", headers=headers)
    assert r.status_code == 200, f"setup: GET /alarms -> {r.status_code} {r.text}"
    return {a["id"] for a in r.json()["alarms"]}


def _dead_letter(w: World, alarm_id: str) -> str | None:
    """The id of the dead notification of `alarm_id`, asked by its tenant's administrator."""
    headers = w.globex_admin if alarm_id == GLOBEX_ALARM else w.admin
    r = w.client.get(f"{V}/alarms/notifications", params={"alarm": alarm_id}, headers=headers)
    assert r.status_code == 200, f"setup: GET /alarms/notifications -> {r.status_code} {r.text}"
    dead = [d["id"] for d in r.json()["deliveries"] if d["status"] == "dead"]
    return dead[0] if dead else None


def _await_alarms_and_dead_letters(w: World) -> None:
    """The engine raises the three alarms and the notifier makes each a dead letter in its own
    time: the matrix starts once they are there (each tenant's administrator sees its own)."""
    _poll("the acme alarms", lambda: {SITE1_ALARM, SITE2_ALARM} <= _alarm_ids(w, w.admin))
    _poll("the globex alarm", lambda: GLOBEX_ALARM in _alarm_ids(w, w.globex_admin))
    for alarm_id in ALARMS:
        w.deliveries[alarm_id] = _poll(
            f"the dead letter of {alarm_id}", lambda a=alarm_id: _dead_letter(w, a)
        )


def _user(name: str, roles: list[str], scope: str | None = None) -> dict[str, Any]:
    return {"username": name, "password": PASSWORD, "roles": roles, "scope": scope}


def _key(name: str, permission: str = "values:read") -> dict[str, Any]:
    return {"name": name, "permissions": [permission]}


def _value(tag: str, value: float) -> dict[str, Any]:
    return {"path": tag, "value": value}


def _order(order_id: str, line: str, state: str = "released") -> dict[str, Any]:
    return {"id": order_id, "product": "water", "line": line, "quantity": 100, "state": state}


# -- the value chain: the enterprise (the default tenant) buys parts from a supplier and sells
# goods to a customer, each an organisation of a partner tenant of its own. Its records are
# the enterprise's, not in the namespace: a site-scoped user of the default tenant sees them as
# a tenant-wide one does, and the other owner tenant is a partner with no organisation, which
# sees nothing of them (`kiln.api.routers.valuechain_access`).
ENTERPRISE, SUPPLIER, CUSTOMER = "ACME", "SUP", "CUST"
SUPPLIER_TENANT, CUSTOMER_TENANT = "vc-supplier", "vc-customer"
PART, GOOD = "PART", "GOOD"  # bought from the supplier; made of two parts and sold
PURCHASE_ORDER, SALES_ORDER = "PO-1", "SO-1"
PART_LOT, GOOD_LOT = "PART-L1", "GOOD-L1"  # received on PO-1; made of it and shipped on SO-1
STORE = "acme/site1/store"
PLAN_DAY, DUE_DAY = "2030-01-07", "2030-02-04"  # planning's today; every order's due date
LOCATION = "ACME-STORE"  # an inventory location at acme/site1
XML: Final = "application/xml"  # a B2MML document's type


def _organisation(code: str, kind: str, tenant: str) -> dict[str, Any]:
    return {"code": code, "name": code.title(), "kind": kind, "tenant": tenant}


def _material(code: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "name": code.title(), "kind": kind, "unit": "pcs", **extra}


def _bom(parent: str) -> dict[str, Any]:
    return {"parent": parent, "lines": [{"component": PART, "quantity": "2"}]}


def _sales_order(order_id: str, material: str = GOOD) -> dict[str, Any]:
    line = {"line_no": 1, "material": material, "quantity": "10", "due": DUE_DAY}
    return {"id": order_id, "customer": CUSTOMER, "lines": [line]}


def _purchase_order(order_id: str) -> dict[str, Any]:
    line = {"line_no": 1, "material": PART, "quantity": "100", "promised": DUE_DAY}
    return {"id": order_id, "supplier": SUPPLIER, "lines": [line]}


def _routing(product: str) -> dict[str, Any]:
    step = {"number": 10, "name": "assemble", "work_centre_kind": "line",
            "work_centre": SITE1_CELL, "cycle_s": 12.5}  # fmt: skip
    return {"product": product, "operations": [step]}


def _location(code: str) -> dict[str, Any]:
    return {"code": code, "name": code.title(), "asset_path": "acme/site1", "kind": "warehouse"}


def _made(lot_id: str, order_id: str) -> dict[str, Any]:
    """Producing `lot_id` of the good in work order `order_id`."""
    return {"kind": "produce", "id": f"make-{lot_id}", "lot_id": lot_id, "material": GOOD,
            "quantity": "10", "unit": "pcs", "location": STORE, "order_id": order_id}  # fmt: skip


def _vc_put(w: World, path: str, body: dict[str, Any]) -> None:
    r = w.client.put(f"{V}{path}", json=body, headers=w.admin)
    assert r.status_code == 200, f"setup: PUT {path} -> {r.status_code} {r.text}"


def _site_lot(cell: str) -> str:
    return f"GOOD-{cell.split('/')[1]}"


def _trade(w: World) -> None:
    """The value chain's records, made by the bootstrap administrator: organisations, master
    data, a purchase order partly received (the part lot), a sales order shipped (the good lot,
    made of the part lot), a lot of each acme site's work order, a routing and a location."""
    admin = w.admin
    for tenant in (SUPPLIER_TENANT, CUSTOMER_TENANT):
        w.post(f"{V}/tenants", admin, json={"name": tenant, "kind": "partner"})
    for org in (
        _organisation(ENTERPRISE, "enterprise", "default"),
        _organisation(SUPPLIER, "supplier", SUPPLIER_TENANT),
        _organisation(CUSTOMER, "customer", CUSTOMER_TENANT),
    ):
        _vc_put(w, f"/organisations/{org['code']}", org)
    _vc_put(w, f"/materials/{PART}", _material(PART, "purchased", supplier=SUPPLIER))
    _vc_put(w, f"/materials/{GOOD}", _material(GOOD, "finished"))
    _vc_put(w, f"/boms/{GOOD}", _bom(GOOD))
    w.post(f"{V}/purchase-orders", admin, json=_purchase_order(PURCHASE_ORDER))
    w.post(f"{V}/purchase-orders/{PURCHASE_ORDER}/actions", admin, json={"action": "send"})
    receipt = {"line_no": 1, "quantity": "60", "lot_id": PART_LOT, "location": STORE}
    w.post(f"{V}/purchase-orders/{PURCHASE_ORDER}/receipts", admin, json=receipt)
    w.post(f"{V}/sales-orders", admin, json=_sales_order(SALES_ORDER))
    w.post(f"{V}/sales-orders/{SALES_ORDER}/actions", admin, json={"action": "confirm"})
    used = {"kind": "consume", "id": "use-part", "lot_id": PART_LOT, "quantity": "20",
            "order_id": "WO-GOOD"}  # fmt: skip
    w.post(f"{V}/lots/transactions", admin, json=used)
    w.post(f"{V}/lots/transactions", admin, json=_made(GOOD_LOT, "WO-GOOD"))
    shipment = {"line_no": 1, "lot_id": GOOD_LOT, "shipment_id": "SH-1"}
    w.post(f"{V}/sales-orders/{SALES_ORDER}/shipments", admin, json=shipment)
    for cell in (SITE1_CELL, SITE2_CELL):  # a lot of each site's standing work order
        w.post(f"{V}/lots/transactions", admin, json=_made(_site_lot(cell), w.orders[cell]))
    _vc_put(w, f"/routings/{GOOD}", _routing(GOOD))
    _vc_put(w, f"/locations/{LOCATION}", _location(LOCATION))
    # MESA's schemas take seconds to build, once per process: not within a request's deadline.
    b2mml_schema()


# -- checks of the answers' contents ------------------------------------------------------------

Check = Callable[[World, Caller, Call, Any], None]  # looks at an admitted caller's answer


def _tree_paths(nodes: list[dict[str, Any]]) -> set[str]:
    return {n["path"] for n in nodes} | {p for n in nodes for p in _tree_paths(n["children"])}


def _visible(paths: set[str], caller: Caller) -> None:
    """A list shows no other tenant's records, and a site1 user nothing of acme/site2."""
    assert not {p for p in paths if p.startswith("globex")}, paths
    if caller.case == SCOPE:
        assert not {p for p in paths if p.startswith("acme/site2")}, paths


def check_assets(w: World, c: Caller, call: Call, body: Any) -> None:
    paths = _tree_paths(body["assets"])
    _visible(paths, c)
    assert SITE1_PUMP in paths
    assert (SITE2_PUMP in paths) is (c.case != SCOPE)


def check_tags(w: World, c: Caller, call: Call, body: Any) -> None:
    paths = {t["path"] for t in body["tags"]}
    _visible(paths, c)
    assert (SITE1_FLOW in paths) is (c.case != OTHER)  # the other case asks for prefix=globex


def check_latest(w: World, c: Caller, call: Call, body: Any) -> None:
    values = {v["path"]: v["value"] for v in body["values"]}
    _visible(set(values), c)
    assert SITE1_FLOW in values


def check_live(w: World, c: Caller, call: Call, snapshot: Any) -> None:
    assert snapshot["snapshot"] is True
    paths = {v["path"] for v in snapshot["values"]}
    _visible(paths, c)
    assert (SITE1_FLOW in paths) is (c.case != OTHER)  # the other case asks for prefix=globex


def check_history(w: World, c: Caller, call: Call, body: Any) -> None:
    assert call.params is not None
    assert body["tag"] == call.params["tag"]
    assert body.get("values") or body.get("buckets"), "the value stored in acme/site1 is there"


def check_history_analysis(w: World, c: Caller, call: Call, body: Any) -> None:
    assert call.params is not None
    if "tags" in body:  # summary, interpolated: one entry per tag asked for
        (tag,) = body["tags"]
        assert tag["tag"] == call.params["tag"]
        values = next(iter(tag["values"].values())) if "buckets" in body else tag["values"]
    else:  # the value at a time
        assert body["tag"] == call.params["tag"]
        values = [body["value"]]
    assert any(v is not None for v in values), "the value stored in acme/site1 is there"


def assert_like_unknown(w: World, route: Route, c: Caller, call: Call, body: Any) -> None:
    """A 404 for a record the caller may not see is the 404 of a record that does not exist,
    save for the name: it does not tell that the record exists."""
    name, ghost_name, ghost = _ghost(route, call)
    status, unknown = w.send(ghost, c)
    assert status == 404, f"{ghost}: {status} {unknown}"
    assert body["detail"].replace(name, "<name>") == unknown["detail"].replace(ghost_name, "<name>")


def _path_pattern(path: str) -> re.Pattern[str]:
    """A route's path as a regular expression, one group per parameter: `{x:path}` takes
    slashes (an alarm id, an asset path), `{x}` one segment."""
    parts = re.split(r"(\{[^}]+\})", path)
    return re.compile(
        "".join(
            ("(.+)" if p.endswith(":path}") else "([^/]+)") if p.startswith("{") else re.escape(p)
            for p in parts
        )
        + "$"
    )


def _ghost(route: Route, call: Call) -> tuple[str, str, Call]:
    """The name of the record `call` addresses, a name of none, and the call for that one.
    A path-like name (an alarm id, an asset) gets a sibling that does not exist, so that the
    ghost lies where the record does, outside the caller's sight too."""
    ghost = "no-such-record"
    match = _path_pattern(route.path).match(call.url)
    if match and match.groups():
        value = match.group(1)
        if "/" in value:
            ghost = f"{asset_of(value)}/{ghost}"
        url = call.url[: match.start(1)] + ghost + call.url[match.end(1) :]
        return value, ghost, replace(call, url=url)
    params = call.params or {}
    if "tag" in params:  # a tag that does not exist beside the one asked for
        ghost = f"{params['tag'].rsplit('/', 1)[0]}/{ghost}"
        return params["tag"], ghost, replace(call, params={**params, "tag": ghost})
    if "username" in params:
        return params["username"], ghost, replace(call, params={**params, "username": ghost})
    if "asset" in params:  # a subtree asked for: one below it that does not exist
        ghost = f"{params['asset']}/{ghost}"
        return params["asset"], ghost, replace(call, params={**params, "asset": ghost})
    if "site" in params:  # a site's calendar: a site below it that does not exist
        ghost = f"{params['site']}/{ghost}"
        return params["site"], ghost, replace(call, params={**params, "site": ghost})
    for key in ("asset", "line"):  # a production change: an asset or line below it
        if isinstance(call.json, dict) and key in call.json:
            ghost = f"{call.json[key]}/{ghost}"
            return call.json[key], ghost, replace(call, json={**call.json, key: ghost})
    if isinstance(call.json, dict) and "path" in call.json:  # a write to a tag
        ghost = f"{call.json['path'].rsplit('/', 1)[0]}/{ghost}"
        return call.json["path"], ghost, replace(call, json={**call.json, "path": ghost})
    raise AssertionError(f"{route.label} answered 404, but for which record?")


def check_health(w: World, c: Caller, call: Call, body: Any) -> None:
    detail = c.role != ANONYMOUS and P.SYSTEM_READ in BUILTIN_ROLES[c.role]
    assert bool(body["subsystems"]) is detail, body


def check_me(w: World, c: Caller, call: Call, body: Any) -> None:
    assert (body["username"], body["tenant"]) == (c.username, "default")


def check_users(w: World, c: Caller, call: Call, body: Any) -> None:
    names = {u["username"] for u in body["users"]}
    assert "viewer-all" in names and not names & set(GLOBEX_USERS), names


def check_roles(w: World, c: Caller, call: Call, body: Any) -> None:
    names = {r["name"] for r in body["roles"]}
    assert set(BUILTIN_ROLES) <= names and "gx-role" not in names, names


def check_devices(w: World, c: Caller, call: Call, body: Any) -> None:
    names = {d["name"] for d in body["devices"]}
    assert "gw-site1" in names and not names & set(GLOBEX_DEVICES), names
    assert ("gw-site2" in names) is (c.case != SCOPE), names


def check_tenants(w: World, c: Caller, call: Call, body: Any) -> None:
    # Tenant administrators of the default tenant run the installation: they see every tenant.
    assert {"default", "other", "partners"} <= {t["name"] for t in body["tenants"]}


def check_shares(w: World, c: Caller, call: Call, body: Any) -> None:
    shares = body["shares"]
    assert all("default" in (s["owner"], s["partner"]) for s in shares), shares
    if c.case == SCOPE:
        assert not [s for s in shares if s["resource_id"].startswith("acme/site2")], shares


def check_connectors(w: World, c: Caller, call: Call, body: Any) -> None:
    if c.case == SCOPE:  # refused (403): the reason names what it takes
        assert "whole default tenant" in body["detail"], body
    else:
        assert body == {"connectors": []}, "this plant has no connector"


def check_session_ended(w: World, c: Caller, call: Call, body: Any) -> None:
    if call.headers:  # the fresh session the request ended is refused from now on
        assert w.client.get(f"{V}/auth/me", headers=call.headers).status_code == 401


def _visible_alarms(ids: set[str], c: Caller, call: Call) -> None:
    """An alarm list shows no globex alarm, a site1 user no acme/site2 one; the acme/site1
    alarm is there unless the call asked for globex (the other case)."""
    _visible(ids, c)
    asked_globex = (call.params or {}).get("asset") == "globex"
    assert (SITE1_ALARM in ids) is not asked_globex, ids
    if not asked_globex:
        assert (SITE2_ALARM in ids) is (c.case != SCOPE), ids


def check_alarms(w: World, c: Caller, call: Call, body: Any) -> None:
    alarms = body["alarms"]
    _visible_alarms({a["id"] for a in alarms}, c, call)
    # The counts are of the alarms shown, not of every one the engine has.
    assert body["counts"]["active"] == sum(a["active"] for a in alarms), body["counts"]


def check_journal(w: World, c: Caller, call: Call, body: Any) -> None:
    entries = body["entries"]
    ids = {e["alarm_id"] for e in entries}
    _visible(ids | {e["asset"] for e in entries}, c)
    # Newest first, and the acme/site1 alarm is the one the matrix keeps acting on.
    assert (SITE1_ALARM in ids) is ((call.params or {}).get("asset") != "globex"), ids


def check_kpis(w: World, c: Caller, call: Call, body: Any) -> None:
    assert body["counts"]["activations"] >= 1, "the acme/site1 alarm activated once at least"


def check_definitions(w: World, c: Caller, call: Call, body: Any) -> None:
    _visible_alarms(set(body["alarms"]), c, call)
    _visible({d["asset"] for d in body["definitions"]}, c)


def check_ack(w: World, c: Caller, call: Call, body: Any) -> None:
    """One result per id. The caller's own alarm is acknowledged, or refused with the reason
    when an earlier test acknowledged it already; an alarm it may not see is "no such alarm",
    the answer for an id that does not exist."""
    (result,) = body["results"]
    if c.case == OWN:
        assert result["ok"] or "no such alarm" not in result["error"], result
        return
    (unknown,) = w.post(
        f"{V}/alarms/ack", c.headers, json={"ids": [f"{asset_of(result['id'])}/no-such-record"]}
    )["results"]
    assert result == {**unknown, "id": result["id"]} and result["ok"] is False, (result, unknown)


def _state_is(state: str, present: bool) -> Check:
    def check(w: World, c: Caller, call: Call, body: Any) -> None:
        assert (body["alarm"]["state"] == state) is present, body["alarm"]

    return check


def check_reset(w: World, c: Caller, call: Call, body: Any) -> None:
    # Refused with the reason: the alarm is not latching, and it is still active.
    assert "reset" in body["detail"] or "latch" in body["detail"], body


def check_deliveries(w: World, c: Caller, call: Call, body: Any) -> None:
    ids = {i for d in body["deliveries"] for i in d["alarm_ids"]}
    _visible(ids, c)
    # Only who reads the values of every alarm of a delivery sees it (the auditor does not).
    sees = P.VALUES_READ in BUILTIN_ROLES[c.role] and c.case != OTHER
    assert (w.deliveries[SITE1_ALARM] in {d["id"] for d in body["deliveries"]}) is sees, body


def check_oee(w: World, c: Caller, call: Call, body: Any) -> None:
    assert body["assets"] == [SITE1_PUMP], body
    assert body["total"]["availability"]["formula"] == "APT / PBT", body


def check_production_states(w: World, c: Caller, call: Call, body: Any) -> None:
    assert {i["asset"] for i in body["intervals"]} <= {SITE1_PUMP}, body


def check_production_assets(w: World, c: Caller, call: Call, body: Any) -> None:
    paths = {a["asset"] for a in body["assets"]}
    _visible(paths, c)
    assert SITE1_PUMP in paths
    assert (SITE2_PUMP in paths) is (c.case != SCOPE)


def check_reasons(w: World, c: Caller, call: Call, body: Any) -> None:
    assert [n["path"] for n in body["tree"]] == ["dry_run"], body


def check_records(w: World, c: Caller, call: Call, body: Any) -> None:
    assert {r["asset"] for r in body["records"]} <= {SITE1_PUMP}, body


def check_orders(w: World, c: Caller, call: Call, body: Any) -> None:
    lines = {o["line"] for o in body["orders"]}
    _visible(lines, c)
    assert SITE1_CELL in lines
    assert (SITE2_CELL in lines) is (c.case != SCOPE)


def check_order(w: World, c: Caller, call: Call, body: Any) -> None:
    assert body["order"]["id"] == w.orders[SITE1_CELL], body


def check_calendars(w: World, c: Caller, call: Call, body: Any) -> None:
    sites = {cal["site"] for cal in body["calendars"]}
    assert "acme/site1" in sites and GLOBEX_SITE not in sites, sites


def check_shifts(w: World, c: Caller, call: Call, body: Any) -> None:
    assert body["site"] == "acme/site1" and body["shifts"], body


def check_retried(w: World, c: Caller, call: Call, body: Any) -> None:
    assert body["delivery"]["id"] == w.deliveries[SITE1_ALARM], body
    assert body["delivery"]["status"] == "pending", body


# The value chain. The other tenant's users are partners with no organisation: their lists are
# empty, and what is the enterprise's alone, or a change, is refused (403) saying why.


def _refused_partner(c: Caller, body: Any) -> bool:
    """Whether the answer is the refusal of a partner (the other case); asserted so if it is."""
    if c.case != OTHER:
        return False
    assert "enterprise" in body["detail"], body
    return True


def check_vc_change(w: World, c: Caller, call: Call, body: Any) -> None:
    if not _refused_partner(c, body):
        assert "detail" not in body, body


def _codes(records: list[dict[str, Any]], key: str, c: Caller, *own: str) -> None:
    """A value chain list: empty for a partner without an organisation, else with `own`."""
    found = {r[key] for r in records}
    if c.case == OTHER:
        assert found == set(), found
    else:
        assert set(own) <= found, found


def check_organisations(w: World, c: Caller, call: Call, body: Any) -> None:
    _codes(body["organisations"], "code", c, ENTERPRISE, SUPPLIER, CUSTOMER)


def check_organisation(w: World, c: Caller, call: Call, body: Any) -> None:
    assert body["organisation"]["code"] == ENTERPRISE, body


def check_materials(w: World, c: Caller, call: Call, body: Any) -> None:
    if not _refused_partner(c, body):
        assert {PART, GOOD} <= {m["code"] for m in body["materials"]}, body
        assert GOOD in {b["parent"] for b in body["boms"]}, body


def check_sales_orders(w: World, c: Caller, call: Call, body: Any) -> None:
    _codes(body["orders"], "id", c, SALES_ORDER)


def check_sales_order(w: World, c: Caller, call: Call, body: Any) -> None:
    order = body["order"]
    assert (order["id"], order["customer"], order["state"]) == (SALES_ORDER, CUSTOMER, "shipped")


def check_purchase_orders(w: World, c: Caller, call: Call, body: Any) -> None:
    _codes(body["orders"], "id", c, PURCHASE_ORDER)


def check_purchase_order(w: World, c: Caller, call: Call, body: Any) -> None:
    order = body["order"]
    assert (order["id"], order["supplier"]) == (PURCHASE_ORDER, SUPPLIER), order


def check_proposals(w: World, c: Caller, call: Call, body: Any) -> None:
    if not _refused_partner(c, body):
        assert isinstance(body["proposals"], list), body


def check_lots(w: World, c: Caller, call: Call, body: Any) -> None:
    _codes(body["lots"], "id", c, PART_LOT, GOOD_LOT)


def check_lot(w: World, c: Caller, call: Call, body: Any) -> None:
    lot = body["lot"]
    assert (lot["id"], lot["supplier"], lot["purchase_order"]) == (
        PART_LOT, SUPPLIER, PURCHASE_ORDER)  # fmt: skip
    assert [e["target"] for e in body["went_into"]] == [GOOD_LOT], body


def check_genealogy(w: World, c: Caller, call: Call, body: Any) -> None:
    if not _refused_partner(c, body):
        assert [n["id"] for n in body["nodes"]] == [GOOD_LOT, PART_LOT], body


def check_stock(w: World, c: Caller, call: Call, body: Any) -> None:
    if not _refused_partner(c, body):
        assert PART in {row["material"] for row in body["inventory"]}, body


def check_transactions(w: World, c: Caller, call: Call, body: Any) -> None:
    if not _refused_partner(c, body):
        assert body["transactions"], "the set-up booked transactions"


def check_recall(w: World, c: Caller, call: Call, body: Any) -> None:
    if not _refused_partner(c, body):
        assert body["customers"] == [CUSTOMER] and body["holds_placed"] == [], body
        assert {"shipment": "SH-1", "customer": CUSTOMER, "lots": [GOOD_LOT]} in body["shipments"]


def check_vc_events(w: World, c: Caller, call: Call, body: Any) -> None:
    if not _refused_partner(c, body):
        assert {e["kind"] for e in body["events"]} >= {"order", "lot"}, body


def check_lot_production(w: World, c: Caller, call: Call, body: Any) -> None:
    """The order that made the lot, on a line the caller reads; for a site1 user the lot of
    acme/site2's order shows without it, saying why."""
    if _refused_partner(c, body):
        return
    if c.case == SCOPE:
        assert body["order"] is None and body["windows"] == [], body
        assert any("outside your scopes" in n for n in body["notes"]), body
    else:
        assert body["order"]["id"] == w.orders[SITE1_CELL], body


def check_routings(w: World, c: Caller, call: Call, body: Any) -> None:
    if not _refused_partner(c, body):
        assert GOOD in {r["product"] for r in body["routings"]}, body


def check_locations(w: World, c: Caller, call: Call, body: Any) -> None:
    if not _refused_partner(c, body):
        assert LOCATION in {x["code"] for x in body["locations"]}, body


def check_master_file(w: World, c: Caller, call: Call, body: Any) -> None:
    """The materials as CSV (text), the header first, the part on a row of its own."""
    if not _refused_partner(c, body):
        assert body.startswith("code,") and f"\n{PART}," in body, body[:200]


def check_xml_document(w: World, c: Caller, call: Call, body: Any) -> None:
    if not _refused_partner(c, body):
        assert body.startswith("<?xml") and "globex" not in body, body[:300]


def check_definitions_document(w: World, c: Caller, call: Call, body: Any) -> None:
    if not _refused_partner(c, body):
        assert body.startswith("<?xml") and f">{PART}<" in body and f">{GOOD}<" in body, body


# -- building the requests ----------------------------------------------------------------------

Build = Call | Callable[[World, Caller], Call]


def own_credentials(w: World, c: Caller) -> dict[str, str]:
    """The caller's user name and password; one without credentials knows a viewer's."""
    return {"username": c.username or "viewer-all", "password": PASSWORD}


def fresh_session(w: World, c: Caller) -> dict[str, str]:
    """Headers of a new session of the caller's user (none for the anonymous caller)."""
    return {} if c.username is None else bearer_headers(w.client, c.username, PASSWORD)


def refresh_call(w: World, c: Caller) -> Call:
    """Renewal of a browser session: sign in with cookies first, then send the CSRF header."""
    if c.username is None:
        return Call("POST", f"{V}/auth/refresh", headers={})
    login = w.client.post(f"{V}/auth/login", json=own_credentials(w, c))
    assert login.status_code == 200, login.text
    cookies = dict(w.client.cookies)
    header = {"x-csrf-token": login.json()["csrf_token"]}
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return Call("POST", f"{V}/auth/refresh", headers={**header, "cookie": cookie})


def own_key_call(w: World, c: Caller) -> Call:
    """Revoking an API key of the caller's own, made for the purpose."""
    if c.username is None:
        return Call("DELETE", f"{V}/keys/0123456789abcdef")
    permission = sorted(BUILTIN_ROLES[c.role])[0]
    made = w.post(f"{V}/keys", c.headers, json=_key(f"doomed-{c.case}", permission))
    return Call("DELETE", f"{V}/keys/{made['key']['id']}")


_DOOMED = itertools.count()


def own_device_call(w: World, c: Caller) -> Call:
    """Revoking a device credential of acme/site1, made for the purpose by the admin."""
    name = f"doomed-{next(_DOOMED)}"
    device_headers(w.client, w.admin, name, "acme/site1")
    return Call("DELETE", f"{V}/devices/{name}")


def totp_confirm_call(w: World, c: Caller) -> Call:
    """Confirming an enrolment (started here) with a wrong code: refused, like at sign-in.
    A right one would put TOTP in force and change how the caller signs in from then on."""
    if c.username is not None:
        w.post(f"{V}/auth/totp", c.headers)
    return Call("POST", f"{V}/auth/totp/confirm", json={"code": "abcdef"})


def check_wrong_code(w: World, c: Caller, call: Call, body: Any) -> None:
    assert body["reason"] == "invalid_totp", body


def own_password_call(w: World, c: Caller) -> Call:
    body = {"new_password": PASSWORD, "current_password": PASSWORD}
    return Call("PUT", f"{V}/users/{c.username or 'viewer-all'}/password", json=body)


def new_key_call(scope: str | None) -> Callable[[World, Caller], Call]:
    def build(w: World, c: Caller) -> Call:
        permission = sorted(BUILTIN_ROLES.get(c.role, {P.VALUES_READ}))[0]
        body = {**_key(f"key-{c.case}", permission), "scope": scope}
        return Call("POST", f"{V}/keys", json=body)

    return build


def new_user_call(scope: str) -> Callable[[World, Caller], Call]:
    def build(w: World, c: Caller) -> Call:
        return Call("POST", f"{V}/users", json=_user(f"new-{c.role}-{c.case}", ["viewer"], scope))

    return build


def own_share_call(w: World, c: Caller) -> Call:
    """Withdrawing a share of acme/site1 made for the purpose by the admin."""
    w.post(f"{V}/tenants/partners/shares", w.admin, json={"resource_id": "acme/site1/utilities"})
    return Call("DELETE", f"{V}/tenants/partners/shares",
                params={"resource_id": "acme/site1/utilities"})  # fmt: skip


def keys_call(which: str) -> Callable[[World, Caller], Call]:
    return lambda w, c: Call("DELETE", f"{V}/keys/{w.keys[which]}")


def _alarm_action(alarm_id: str, action: str, body: dict[str, Any]) -> Call:
    return Call("POST", f"{V}/alarms/{alarm_id}/{action}", json=body)


_SHELVE = {"duration_s": 600, "note": "matrix"}
_OOS_ON = {"on": True, "reason": "matrix"}
_OOS_OFF = {"on": False}


def _admin_acts(w: World, action: str, body: dict[str, Any]) -> None:
    """An action by the administrator on the acme/site1 alarm, to set up the state a call
    needs whatever ran before. One that changes nothing (in service already) is a 400 that
    says so, and as good here."""
    url = f"{V}/alarms/{SITE1_ALARM}/{action}"
    r = w.client.post(url, json=body, headers=w.admin)
    ok = r.status_code == 200 or (r.status_code == 400 and "changes nothing" in r.text)
    assert ok, f"setup: POST {url} -> {r.status_code} {r.text}"


def shelve_call(w: World, c: Caller) -> Call:
    """Shelving the acme/site1 alarm, in service first (one out of service cannot be)."""
    _admin_acts(w, "out-of-service", _OOS_OFF)
    return _alarm_action(SITE1_ALARM, "shelve", _SHELVE)


def unshelve_call(w: World, c: Caller) -> Call:
    """Unshelving the acme/site1 alarm, shelved first (one not shelved is refused)."""
    _admin_acts(w, "out-of-service", _OOS_OFF)
    _admin_acts(w, "shelve", _SHELVE)
    return _alarm_action(SITE1_ALARM, "unshelve", {"note": "matrix"})


def back_in_service_call(w: World, c: Caller) -> Call:
    """Putting the acme/site1 alarm back in service, out of service first: a real change."""
    _admin_acts(w, "out-of-service", _OOS_ON)
    return _alarm_action(SITE1_ALARM, "out-of-service", _OOS_OFF)


_EXTRA = {"kind": "limit", "name": "flow_extra", "tag": "flow", "hi": {"value": 1000}}


def definitions_url(asset: str) -> str:
    return f"{V}/alarms/definitions/{asset}"


def undefine_call(w: World, c: Caller) -> Call:
    """Removing an API definition of acme/site1's pump, made for the purpose by the admin."""
    doomed = {**_EXTRA, "name": "flow_doomed"}
    r = w.client.put(definitions_url(SITE1_PUMP), json=doomed, headers=w.admin)
    assert r.status_code == 200, f"setup: PUT a definition -> {r.status_code} {r.text}"
    return Call("DELETE", definitions_url(SITE1_PUMP), params={"name": "flow_doomed"})


def retry_call(alarm_id: str) -> Callable[[World, Caller], Call]:
    """Retrying the dead letter of `alarm_id`; for the caller's own, once it is dead again
    (an earlier retry sends it anew, and only a dead letter is retried)."""

    def build(w: World, c: Caller) -> Call:
        delivery = w.deliveries[alarm_id]
        if alarm_id == SITE1_ALARM:
            _poll(f"{delivery} dead again", lambda: _dead_letter(w, alarm_id) == delivery)
        return Call("POST", f"{V}/alarms/notifications/{delivery}/retry")

    return build


_ORDERS = itertools.count()
# The admin's actions that take a new order from released to the state an action needs.
_ORDER_SETUP: Final = {
    "release": (), "start": (), "cancel": (), "pause": ("start",), "complete": ("start",),
    "resume": ("start", "pause"),
}  # fmt: skip


def order_action_call(action: str) -> Callable[[World, Caller], Call]:
    """`action` on a new order of acme/site1, brought by the admin to a state that allows it;
    each on a line of its own, since a line runs one order at a time."""

    def build(w: World, c: Caller) -> Call:
        n = next(_ORDERS)
        state = "planned" if action == "release" else "released"
        line = f"{SITE1_CELL}/wo{n}"
        w.post(f"{V}/orders", w.admin, json=_order(f"wo-act-{n}", line, state))
        for step in _ORDER_SETUP[action]:
            w.post(f"{V}/orders/wo-act-{n}/{step}", w.admin, json={})
        return Call("POST", f"{V}/orders/wo-act-{n}/{action}", json={})

    return build


def order_call(cell: str, action: str | None = None) -> Callable[[World, Caller], Call]:
    """A call on the standing work order of `cell` (another tenant's, or out of scope)."""

    def build(w: World, c: Caller) -> Call:
        url = f"{V}/orders/{w.orders[cell]}"
        return Call("POST", f"{url}/{action}", json={}) if action else Call("GET", url)

    return build


def new_order_call(w: World, c: Caller) -> Call:
    return Call(
        "POST", f"{V}/orders", json=_order(f"wo-new-{next(_ORDERS)}", SITE1_CELL, "planned")
    )


def delete_product_call(w: World, c: Caller) -> Call:
    """Removing a product made for the purpose by the admin."""
    code = f"doomed-{next(_ORDERS)}"
    r = w.client.put(f"{V}/products/{code}", json={"name": "doomed"}, headers=w.admin)
    assert r.status_code == 200, f"setup: PUT a product -> {r.status_code} {r.text}"
    return Call("DELETE", f"{V}/products/{code}")


_CALENDAR = {"timezone": "UTC", "shifts": [{"name": "all", "start": "00:00", "end": "00:00"}]}


def delete_calendar_call(w: World, c: Caller) -> Call:
    """Removing a calendar set through the API for the purpose by the admin."""
    site = f"acme/site1/doomed{next(_ORDERS)}"
    r = w.client.put(f"{V}/calendars/{site}", json=_CALENDAR, headers=w.admin)
    assert r.status_code == 200, f"setup: PUT a calendar -> {r.status_code} {r.text}"
    return Call("DELETE", f"{V}/calendars/{site}")


def _production(path: str, asset: str, **params: Any) -> Call:
    return Call("GET", f"{V}{path}", params={"asset": asset, "start": "-1h", **params})


def _reading(path: str, check: Check | None, **params: Any) -> Route:
    """A production figure of one asset: acme/site1's, the other tenant's, acme/site2's."""
    return Route("GET", f"{V}{path}", P.VALUES_READ, _production(path, SITE1_PUMP, **params),
                 other=_production(path, GLOBEX_PUMP, **params),
                 scope=_production(path, SITE2_PUMP, **params),
                 expect=(200, 404, 404), check=check)  # fmt: skip


def _stop(asset: str) -> dict[str, Any]:
    return {"asset": asset, "start": "-10m", "end": "-5m", "reason": "dry_run"}


def _split(asset: str) -> dict[str, Any]:
    return {"asset": asset, "start": "-10m", "end": "-5m",
            "pieces": [{"end": "-7m", "reason": "dry_run"}, {"reason": "dry_run"}]}  # fmt: skip


def _order_action_route(action: str, guard: Permission) -> Route:
    return Route("POST", f"{V}/orders/{{order_id}}/{action}", guard, order_action_call(action),
                 other=order_call(GLOBEX_CELL, action), scope=order_call(SITE2_CELL, action),
                 expect=(200, 404, 404))  # fmt: skip


# The value chain: every change to the enterprise's records on records made for the purpose
# (fresh ids), since each role of each case that is let in makes it for real.
_VC = itertools.count()


def as_partner(build: Build) -> Callable[[World, Caller], Call]:
    """`build`'s request sent by the other tenant's user of the caller's role (the value
    chain's other case): a partner of the enterprise, with no organisation of its own."""

    def partner(w: World, c: Caller) -> Call:
        call = _build(build, w, c)
        return call if c.username is None else replace(call, headers=w.users[f"gx-{c.role}"])

    return partner


def _fresh(prefix: str) -> str:
    return f"{prefix}-{next(_VC)}"


def new_organisation_call(w: World, c: Caller) -> Call:
    code = _fresh("ORG")
    body = _organisation(code, "customer", CUSTOMER_TENANT)
    return Call("PUT", f"{V}/organisations/{code}", json=body)


def delete_organisation_call(w: World, c: Caller) -> Call:
    code = _fresh("ORG")
    _vc_put(w, f"/organisations/{code}", _organisation(code, "customer", CUSTOMER_TENANT))
    return Call("DELETE", f"{V}/organisations/{code}")


def new_material_call(w: World, c: Caller) -> Call:
    code = _fresh("MAT")
    return Call("PUT", f"{V}/materials/{code}", json=_material(code, "raw"))


def delete_material_call(w: World, c: Caller) -> Call:
    code = _fresh("MAT")
    _vc_put(w, f"/materials/{code}", _material(code, "raw"))
    return Call("DELETE", f"{V}/materials/{code}")


def delete_bom_call(w: World, c: Caller) -> Call:
    code = _fresh("KIT")
    _vc_put(w, f"/materials/{code}", _material(code, "finished"))
    _vc_put(w, f"/boms/{code}", _bom(code))
    return Call("DELETE", f"{V}/boms/{code}")


def new_sales_order_call(w: World, c: Caller) -> Call:
    return Call("POST", f"{V}/sales-orders", json=_sales_order(_fresh("SO")))


def sales_action_call(w: World, c: Caller) -> Call:
    """Confirming a draft sales order made for the purpose."""
    order = w.post(f"{V}/sales-orders", w.admin, json=_sales_order(_fresh("SO")))["order"]
    return Call("POST", f"{V}/sales-orders/{order['id']}/actions", json={"action": "confirm"})


def shipment_call(w: World, c: Caller) -> Call:
    """Shipping a lot of the good, made for the purpose, on a confirmed sales order."""
    order = w.post(f"{V}/sales-orders", w.admin, json=_sales_order(_fresh("SO")))["order"]
    url = f"{V}/sales-orders/{order['id']}"
    w.post(f"{url}/actions", w.admin, json={"action": "confirm"})
    lot = _fresh("GOOD-L")
    w.post(f"{V}/lots/transactions", w.admin, json=_made(lot, f"WO-{lot}"))
    body = {"line_no": 1, "lot_id": lot, "shipment_id": f"SH-{lot}"}
    return Call("POST", f"{url}/shipments", json=body)


def new_purchase_order_call(w: World, c: Caller) -> Call:
    return Call("POST", f"{V}/purchase-orders", json=_purchase_order(_fresh("PO")))


def _sent_purchase_order(w: World) -> str:
    order_id = _fresh("PO")
    w.post(f"{V}/purchase-orders", w.admin, json=_purchase_order(order_id))
    w.post(f"{V}/purchase-orders/{order_id}/actions", w.admin, json={"action": "send"})
    return order_id


def purchase_action_call(w: World, c: Caller) -> Call:
    """The supplier's confirmation of a purchase order sent for the purpose."""
    url = f"{V}/purchase-orders/{_sent_purchase_order(w)}/actions"
    return Call("POST", url, json={"action": "confirm"})


def receipt_call(w: World, c: Caller) -> Call:
    """A goods receipt, a new lot, on a purchase order sent for the purpose."""
    order_id = _sent_purchase_order(w)
    body = {"line_no": 1, "quantity": "10", "lot_id": f"{order_id}-L", "location": STORE}
    return Call("POST", f"{V}/purchase-orders/{order_id}/receipts", json=body)


def transaction_call(w: World, c: Caller) -> Call:
    """Receiving a new lot of the part."""
    lot = _fresh("PART-L")
    body = {"kind": "receive", "id": f"in-{lot}", "lot_id": lot, "material": PART,
            "quantity": "5", "unit": "pcs", "location": STORE, "supplier": SUPPLIER}  # fmt: skip
    return Call("POST", f"{V}/lots/transactions", json=body)


def proposal_call(action: str) -> Callable[[World, Caller], Call]:
    """`action` on a proposal of planning, undecided: a confirmed sales order of a new bought
    material that nothing covers, planned for the purpose (a purchase proposal)."""

    def build(w: World, c: Caller) -> Call:
        material = _fresh("BUY")
        _vc_put(w, f"/materials/{material}", _material(material, "purchased", supplier=SUPPLIER))
        order = _fresh("SO")
        w.post(f"{V}/sales-orders", w.admin, json=_sales_order(order, material))
        w.post(f"{V}/sales-orders/{order}/actions", w.admin, json={"action": "confirm"})
        w.post(f"{V}/planning/runs", w.admin, json={"today": PLAN_DAY})
        r = w.client.get(f"{V}/planning/proposals", params={"state": "proposed"}, headers=w.admin)
        assert r.status_code == 200, f"setup: GET proposals -> {r.status_code} {r.text}"
        (found,) = [p["id"] for p in r.json()["proposals"] if p["material"] == material]
        return Call("POST", f"{V}/planning/proposals/{found}/{action}", json={})

    return build


def delete_routing_call(w: World, c: Caller) -> Call:
    code = _fresh("KIT")
    _vc_put(w, f"/materials/{code}", _material(code, "finished"))
    _vc_put(w, f"/boms/{code}", _bom(code))
    _vc_put(w, f"/routings/{code}", _routing(code))
    return Call("DELETE", f"{V}/routings/{code}")


def new_location_call(w: World, c: Caller) -> Call:
    code = _fresh("LOC")
    return Call("PUT", f"{V}/locations/{code}", json=_location(code))


def delete_location_call(w: World, c: Caller) -> Call:
    code = _fresh("LOC")
    _vc_put(w, f"/locations/{code}", _location(code))
    return Call("DELETE", f"{V}/locations/{code}")


def _exported(w: World, path: str, **params: str) -> str:
    r = w.client.get(f"{V}{path}", params=params, headers=w.admin)
    assert r.status_code == 200, f"setup: GET {path} -> {r.status_code} {r.text}"
    return r.text


def master_import_call(w: World, c: Caller) -> Call:
    """The materials file as exported, imported again (every row added or replaced)."""
    files = {"materials.csv": _exported(w, "/master-data/materials.csv")}
    return Call("POST", f"{V}/master-data/import", json=files)


def _b2mml_document(w: World, document: str) -> bytes:
    """A document of `document`'s kind that imports into this installation: the definitions
    as exported (every material added or replaced), a new lot of the part, a new order on a
    line of acme/site1 of its own, the production of a new lot of the good by a new order."""
    now = int(time.time() * 1_000_000)
    if document == "material-definitions":
        return _exported(w, f"/b2mml/{document}").encode()
    n = next(_VC)
    if document == "material-lots":
        lot = Lot(id=f"PART-B{n}", material=PART, quantity=Decimal(5), unit="pcs",
                  location=STORE, supplier=SUPPLIER, created_us=now, updated_us=now)  # fmt: skip
        return b2mml.export_material_lots([lot], created_us=now)
    if document == "operations-schedule":
        order = b2mml.ScheduledOrder(id=f"wo-b2mml-{n}", product="water", quantity=5,
                                     line=f"{SITE1_CELL}/b2mml{n}", created_us=now,
                                     updated_us=now)  # fmt: skip
        return b2mml.export_operations_schedule([order], schedule_id=f"s-{n}", created_us=now)
    made = b2mml.MaterialMovement(lot_id=f"GOOD-B{n}", material=GOOD, quantity=Decimal(3),
                                  unit="pcs", use=b2mml.MaterialUse.PRODUCED)  # fmt: skip
    order = b2mml.OrderPerformance(order_id=f"WO-B{n}", movements=(made,))
    return b2mml.export_operations_performance([order], performance_id=f"p-{n}", created_us=now)


def b2mml_import_call(document: str) -> Callable[[World, Caller], Call]:
    def build(w: World, c: Caller) -> Call:
        xml = _b2mml_document(w, document)
        return Call("POST", f"{V}/b2mml/{document}", content=xml, content_type=XML)

    return build


def _vc_route(
    method: str,
    path: str,
    guard: Permission,
    own: Build,
    check: Check,
    status: int = 200,
    partner: int = 403,
    other: Build | None = None,
) -> Route:
    """A value chain route: the site1 user as a tenant-wide one, the other tenant's user of
    the caller's role as a partner (on the call of `own`, or `other`)."""
    return Route(method, f"{V}{path}", guard, own, other=as_partner(other or own),
                 expect=(status, partner, status), check=check)  # fmt: skip


def _build(build: Build, w: World, c: Caller) -> Call:
    return build if isinstance(build, Call) else build(w, c)


# -- the table ----------------------------------------------------------------------------------

PUBLIC: Final = "public"  # Public(): anyone, on purpose
SIGNED_IN: Final = "signed-in"  # Authenticated(): any user or API key
DEVICE: Final = "device"  # RequireDevice(): a device credential only
Guard = Permission | frozenset[Permission] | str  # several Require()s: every one is needed


@dataclass(frozen=True)
class Route:
    """A route of the app, the guard it declares, a request per case, and its own answers.

    `expect` is (own, other, scope): the status for a caller the guard lets in. For a public
    route, `anonymous` is the status without credentials where it differs. `check` looks at
    the contents of the answer to a caller the guard lets in; every 404 is compared with the
    404 for a record that does not exist (`assert_like_unknown`).
    """

    method: str
    path: str
    guard: Guard
    own: Build
    other: Build | None = None
    scope: Build | None = None
    expect: tuple[int, int, int] = (200, 200, 200)
    anonymous: int | None = None
    check: Check | None = None

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def call(self, w: World, c: Caller) -> Call:
        build = {OWN: self.own, OTHER: self.other, SCOPE: self.scope}[c.case] or self.own
        return _build(build, w, c)


_HISTORY = {"tag": SITE1_FLOW}


def _bulk_body(path: str, value: float) -> bytes:
    """An Arrow IPC stream of one point (a bulk upload)."""
    import pyarrow as pa

    table = pa.table({"path": [path], "ts": pa.array([1_767_225_600_000_000]), "value": [value]})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


_SITE1_ROLE = {"role": "viewer", "scope": "acme/site1"}
_SITE2_ROLE = {"role": "viewer", "scope": "acme/site2"}
_ENABLED = {"disabled": False}

# Cases "other" and "scope" that answer 400 ask for a scope outside the caller's namespace:
# that says which roots are not the tenant's, not whether any record exists.
ROUTES: Final = (
    # --- public: login, the page, the documents
    Route("GET", f"{V}/health", PUBLIC, Call("GET", f"{V}/health"), check=check_health),
    Route("POST", f"{V}/auth/token", PUBLIC,
          lambda w, c: Call("POST", f"{V}/auth/token",
                            data={"grant_type": "password", **own_credentials(w, c)})),
    Route("POST", f"{V}/auth/login", PUBLIC,
          lambda w, c: Call("POST", f"{V}/auth/login", json=own_credentials(w, c))),
    Route("POST", f"{V}/auth/refresh", PUBLIC, refresh_call, anonymous=401),
    Route("POST", f"{V}/auth/logout", PUBLIC,
          lambda w, c: Call("POST", f"{V}/auth/logout", headers=fresh_session(w, c)),
          expect=(204, 204, 204), check=check_session_ended),
    Route("GET", "/", PUBLIC, Call("GET", "/")),
    Route("GET", "/docs", PUBLIC, Call("GET", "/docs")),
    Route("GET", "/openapi.json", PUBLIC, Call("GET", "/openapi.json")),
    # --- any signed-in user: itself, its keys, its password
    Route("GET", f"{V}/auth/me", SIGNED_IN, Call("GET", f"{V}/auth/me"), check=check_me),
    Route("GET", f"{V}/keys", SIGNED_IN, Call("GET", f"{V}/keys"),
          other=Call("GET", f"{V}/keys", params={"username": "gx-admin"}),
          scope=Call("GET", f"{V}/keys", params={"username": "target-site2"}),
          expect=(200, 404, 403)),
    Route("POST", f"{V}/keys", SIGNED_IN, new_key_call(None),
          other=new_key_call("globex/plant1"), scope=new_key_call("acme/site2"),
          expect=(201, 400, 403)),
    Route("DELETE", f"{V}/keys/{{key_id}}", SIGNED_IN, own_key_call,
          other=keys_call("globex"), scope=keys_call("site2"), expect=(204, 404, 404)),
    Route("POST", f"{V}/auth/totp", SIGNED_IN, Call("POST", f"{V}/auth/totp")),
    Route("POST", f"{V}/auth/totp/confirm", SIGNED_IN, totp_confirm_call,
          expect=(401, 401, 401), check=check_wrong_code),
    Route("POST", f"{V}/auth/password", SIGNED_IN,
          Call("POST", f"{V}/auth/password",
               json={"current_password": PASSWORD, "new_password": PASSWORD}),
          expect=(204, 204, 204)),
    Route("PUT", f"{V}/users/{{username}}/password", SIGNED_IN, own_password_call,
          other=Call("PUT", f"{V}/users/gx-viewer/password", json={"new_password": PASSWORD}),
          scope=Call("PUT", f"{V}/users/target-site2/password", json={"new_password": PASSWORD}),
          expect=(204, 404, 403)),
    # --- values:read
    Route("GET", f"{V}/assets", P.VALUES_READ, Call("GET", f"{V}/assets"), check=check_assets),
    Route("GET", f"{V}/tags", P.VALUES_READ, Call("GET", f"{V}/tags", params={"prefix": "acme"}),
          other=Call("GET", f"{V}/tags", params={"prefix": "globex"}), check=check_tags),
    Route("GET", f"{V}/values/latest", P.VALUES_READ,
          Call("GET", f"{V}/values/latest", params={"tag": SITE1_FLOW}),
          other=Call("GET", f"{V}/values/latest", params={"tag": GLOBEX_FLOW}),
          scope=Call("GET", f"{V}/values/latest", params={"prefix": "acme"}),
          expect=(200, 404, 200), check=check_latest),
    Route("GET", f"{V}/history/raw", P.VALUES_READ, Call("GET", f"{V}/history/raw", params=_HISTORY),
          other=Call("GET", f"{V}/history/raw", params={"tag": GLOBEX_FLOW}),
          scope=Call("GET", f"{V}/history/raw", params={"tag": SITE2_FLOW}),
          expect=(200, 404, 404), check=check_history),
    Route("GET", f"{V}/history/aggregate", P.VALUES_READ,
          Call("GET", f"{V}/history/aggregate", params=_HISTORY),
          other=Call("GET", f"{V}/history/aggregate", params={"tag": GLOBEX_FLOW}),
          scope=Call("GET", f"{V}/history/aggregate", params={"tag": SITE2_FLOW}),
          expect=(200, 404, 404), check=check_history),
    Route("GET", f"{V}/spc", P.VALUES_READ, Call("GET", f"{V}/spc", params=_HISTORY),
          other=Call("GET", f"{V}/spc", params={"tag": GLOBEX_FLOW}),
          scope=Call("GET", f"{V}/spc", params={"tag": SITE2_FLOW}),
          expect=(200, 404, 404)),
    Route("GET", f"{V}/history/summary", P.VALUES_READ,
          Call("GET", f"{V}/history/summary", params={**_HISTORY}),
          other=Call("GET", f"{V}/history/summary", params={"tag": GLOBEX_FLOW}),
          scope=Call("GET", f"{V}/history/summary", params={"tag": SITE2_FLOW}),
          expect=(200, 404, 404), check=check_history_analysis),
    Route("GET", f"{V}/history/interpolated", P.VALUES_READ,
          Call("GET", f"{V}/history/interpolated", params={**_HISTORY}),
          other=Call("GET", f"{V}/history/interpolated", params={"tag": GLOBEX_FLOW}),
          scope=Call("GET", f"{V}/history/interpolated", params={"tag": SITE2_FLOW}),
          expect=(200, 404, 404), check=check_history_analysis),
    Route("GET", f"{V}/history/value", P.VALUES_READ,
          Call("GET", f"{V}/history/value", params={**_HISTORY, "time": "now"}),
          other=Call("GET", f"{V}/history/value", params={"tag": GLOBEX_FLOW, "time": "now"}),
          scope=Call("GET", f"{V}/history/value", params={"tag": SITE2_FLOW, "time": "now"}),
          expect=(200, 404, 404), check=check_history_analysis),
    Route("WS", f"{V}/live", P.VALUES_READ, Call("WS", f"{V}/live", params={"prefix": "acme"}),
          other=Call("WS", f"{V}/live", params={"prefix": "globex"}),
          expect=(101, 101, 101), check=check_live),
    # --- devices:write. This plant has no connector, so even an allowed write finds no
    # writable tag: 404 like a tag outside one's tenant or scope (tests/api/test_write_api.py
    # writes through a real one).
    Route("POST", f"{V}/write", P.DEVICES_WRITE,
          Call("POST", f"{V}/write", json={"path": SITE1_FLOW, "value": 1.0}),
          other=Call("POST", f"{V}/write", json={"path": GLOBEX_FLOW, "value": 1.0}),
          scope=Call("POST", f"{V}/write", json={"path": SITE2_FLOW, "value": 1.0}),
          expect=(404, 404, 404)),
    # --- alarms (docs/alarms.md, docs/api.md "Alarms"): ids hold slashes and go in the path
    # as they are. Lists leave out what the caller may not see; an alarm, asset or delivery
    # outside its sight is a 404 like one that does not exist (an acknowledgement, which takes
    # many ids, says so per id: "no such alarm").
    Route("GET", f"{V}/alarms", P.VALUES_READ, Call("GET", f"{V}/alarms"),
          other=Call("GET", f"{V}/alarms", params={"asset": "globex"}), check=check_alarms),
    Route("GET", f"{V}/alarms/journal", P.VALUES_READ, Call("GET", f"{V}/alarms/journal"),
          other=Call("GET", f"{V}/alarms/journal", params={"asset": "globex"}),
          check=check_journal),
    # The default tenant holds "*" beside the other tenant's root: its KPIs name a subtree.
    Route("GET", f"{V}/alarms/kpis", P.VALUES_READ,
          Call("GET", f"{V}/alarms/kpis", params={"asset": "acme/site1"}),
          other=Call("GET", f"{V}/alarms/kpis", params={"asset": "globex"}),
          scope=Call("GET", f"{V}/alarms/kpis", params={"asset": "acme/site2"}),
          expect=(200, 404, 404), check=check_kpis),
    Route("GET", f"{V}/alarms/definitions", P.VALUES_READ, Call("GET", f"{V}/alarms/definitions"),
          other=Call("GET", f"{V}/alarms/definitions", params={"asset": "globex"}),
          check=check_definitions),
    Route("POST", f"{V}/alarms/ack", P.ALARMS_ACK,
          Call("POST", f"{V}/alarms/ack", json={"ids": [SITE1_ALARM], "note": "matrix"}),
          other=Call("POST", f"{V}/alarms/ack", json={"ids": [GLOBEX_ALARM]}),
          scope=Call("POST", f"{V}/alarms/ack", json={"ids": [SITE2_ALARM]}),
          check=check_ack),
    Route("POST", f"{V}/alarms/{{alarm_id:path}}/comment", P.ALARMS_ACK,
          _alarm_action(SITE1_ALARM, "comment", {"comment": "matrix"}),
          other=_alarm_action(GLOBEX_ALARM, "comment", {"comment": "matrix"}),
          scope=_alarm_action(SITE2_ALARM, "comment", {"comment": "matrix"}),
          expect=(200, 404, 404)),
    Route("POST", f"{V}/alarms/{{alarm_id:path}}/reset", P.ALARMS_ACK,
          _alarm_action(SITE1_ALARM, "reset", {}),
          other=_alarm_action(GLOBEX_ALARM, "reset", {}),
          scope=_alarm_action(SITE2_ALARM, "reset", {}),
          expect=(400, 404, 404), check=check_reset),
    Route("POST", f"{V}/alarms/{{alarm_id:path}}/shelve", P.ALARMS_SHELVE, shelve_call,
          other=_alarm_action(GLOBEX_ALARM, "shelve", _SHELVE),
          scope=_alarm_action(SITE2_ALARM, "shelve", _SHELVE),
          expect=(200, 404, 404), check=_state_is("shelved", True)),
    Route("POST", f"{V}/alarms/{{alarm_id:path}}/unshelve", P.ALARMS_SHELVE, unshelve_call,
          other=_alarm_action(GLOBEX_ALARM, "unshelve", {}),
          scope=_alarm_action(SITE2_ALARM, "unshelve", {}),
          expect=(200, 404, 404), check=_state_is("shelved", False)),
    Route("POST", f"{V}/alarms/{{alarm_id:path}}/out-of-service", P.ALARMS_SHELVE,
          back_in_service_call,
          other=_alarm_action(GLOBEX_ALARM, "out-of-service", _OOS_ON),
          scope=_alarm_action(SITE2_ALARM, "out-of-service", _OOS_ON),
          expect=(200, 404, 404), check=_state_is("out_of_service", False)),
    Route("PUT", f"{V}/alarms/definitions/{{asset:path}}", P.CONFIG_EDIT,
          Call("PUT", definitions_url(SITE1_PUMP), json=_EXTRA),
          other=Call("PUT", definitions_url(GLOBEX_PUMP), json=_EXTRA),
          scope=Call("PUT", definitions_url(SITE2_PUMP), json=_EXTRA),
          expect=(200, 404, 404)),
    Route("DELETE", f"{V}/alarms/definitions/{{asset:path}}", P.CONFIG_EDIT, undefine_call,
          other=Call("DELETE", definitions_url(GLOBEX_PUMP), params={"name": "flow_high"}),
          scope=Call("DELETE", definitions_url(SITE2_PUMP), params={"name": "flow_high"}),
          expect=(200, 404, 404)),
    Route("GET", f"{V}/alarms/notifications", P.SYSTEM_READ,
          Call("GET", f"{V}/alarms/notifications"),
          other=Call("GET", f"{V}/alarms/notifications", params={"alarm": GLOBEX_ALARM}),
          check=check_deliveries),
    # Retrying acts on the delivery's alarms (alarms:ack over each) and shows its recipients.
    Route("POST", f"{V}/alarms/notifications/{{delivery_id}}/retry",
          frozenset({P.SYSTEM_READ, P.ALARMS_ACK}), retry_call(SITE1_ALARM),
          other=retry_call(GLOBEX_ALARM), scope=retry_call(SITE2_ALARM),
          expect=(200, 404, 404), check=check_retried),
    # --- production (docs/api.md "Production"): reading values:read over the asset
    _reading("/oee", check_oee, by="hour"),
    _reading("/oee/pareto", None, group="category"),
    _reading("/states", check_production_states),
    _reading("/production/records", check_records),
    Route("GET", f"{V}/production/reasons", P.VALUES_READ,
          Call("GET", f"{V}/production/reasons", params={"asset": SITE1_PUMP}),
          other=Call("GET", f"{V}/production/reasons", params={"asset": GLOBEX_PUMP}),
          scope=Call("GET", f"{V}/production/reasons", params={"asset": SITE2_PUMP}),
          expect=(200, 404, 404), check=check_reasons),
    Route("GET", f"{V}/production/live", P.VALUES_READ, Call("GET", f"{V}/production/live"),
          other=Call("GET", f"{V}/production/live", params={"asset": GLOBEX_PUMP}),
          expect=(200, 404, 200), check=check_production_assets),
    Route("GET", f"{V}/production/assets", P.VALUES_READ,
          Call("GET", f"{V}/production/assets"), check=check_production_assets),
    Route("GET", f"{V}/orders", P.VALUES_READ, Call("GET", f"{V}/orders"), check=check_orders),
    Route("GET", f"{V}/orders/{{order_id}}", P.VALUES_READ, order_call(SITE1_CELL),
          other=order_call(GLOBEX_CELL), scope=order_call(SITE2_CELL),
          expect=(200, 404, 404), check=check_order),
    Route("GET", f"{V}/products", P.VALUES_READ, Call("GET", f"{V}/products")),
    Route("GET", f"{V}/calendars", P.VALUES_READ, Call("GET", f"{V}/calendars"),
          check=check_calendars),
    Route("GET", f"{V}/shifts", P.VALUES_READ,
          Call("GET", f"{V}/shifts", params={"site": "acme/site1", "start": "-1d"}),
          other=Call("GET", f"{V}/shifts", params={"site": GLOBEX_SITE}),
          scope=Call("GET", f"{V}/shifts", params={"site": "acme/site2"}),
          expect=(200, 404, 404), check=check_shifts),
    # Operators enter reasons and run orders (production:enter over the asset or the line).
    Route("POST", f"{V}/states/reasons", P.PRODUCTION_ENTER,
          Call("POST", f"{V}/states/reasons", json=_stop(SITE1_PUMP)),
          other=Call("POST", f"{V}/states/reasons", json=_stop(GLOBEX_PUMP)),
          scope=Call("POST", f"{V}/states/reasons", json=_stop(SITE2_PUMP)),
          expect=(200, 404, 404)),
    Route("POST", f"{V}/states/split", P.PRODUCTION_ENTER,
          Call("POST", f"{V}/states/split", json=_split(SITE1_PUMP)),
          other=Call("POST", f"{V}/states/split", json=_split(GLOBEX_PUMP)),
          scope=Call("POST", f"{V}/states/split", json=_split(SITE2_PUMP)),
          expect=(200, 404, 404)),
    Route("POST", f"{V}/production/counts", P.PRODUCTION_ENTER,
          Call("POST", f"{V}/production/counts", json={"asset": SITE1_PUMP, "good": 3}),
          other=Call("POST", f"{V}/production/counts", json={"asset": GLOBEX_PUMP, "good": 3}),
          scope=Call("POST", f"{V}/production/counts", json={"asset": SITE2_PUMP, "good": 3}),
          expect=(200, 404, 404)),
    *(_order_action_route(a, P.PRODUCTION_ENTER) for a in ("start", "pause", "resume", "complete")),
    # Planners dispatch: orders on a line (production:plan over it), and products (anywhere).
    Route("POST", f"{V}/orders", P.PRODUCTION_PLAN, new_order_call,
          other=Call("POST", f"{V}/orders", json=_order("wo-grab", GLOBEX_CELL)),
          scope=Call("POST", f"{V}/orders", json=_order("wo-scope", SITE2_CELL)),
          expect=(201, 404, 404)),
    *(_order_action_route(a, P.PRODUCTION_PLAN) for a in ("release", "cancel")),
    Route("PUT", f"{V}/products/{{code}}", P.PRODUCTION_PLAN,
          Call("PUT", f"{V}/products/juice", json={"name": "Juice", "ideal_cycle_s": 2})),
    Route("DELETE", f"{V}/products/{{code}}", P.PRODUCTION_PLAN, delete_product_call),
    # Calendars are configuration of the site (config:edit over it).
    Route("PUT", f"{V}/calendars/{{site:path}}", P.CONFIG_EDIT,
          Call("PUT", f"{V}/calendars/acme/site1", json=_CALENDAR),
          other=Call("PUT", f"{V}/calendars/{GLOBEX_SITE}", json=_CALENDAR),
          scope=Call("PUT", f"{V}/calendars/acme/site2", json=_CALENDAR),
          expect=(200, 404, 404)),
    Route("DELETE", f"{V}/calendars/{{site:path}}", P.CONFIG_EDIT, delete_calendar_call,
          other=Call("DELETE", f"{V}/calendars/{GLOBEX_SITE}"),
          scope=Call("DELETE", f"{V}/calendars/acme/site2"),
          expect=(200, 404, 404)),
    # --- the value chain (docs/valuechain.md): valuechain:read, :enter (booking stock),
    # :plan (master data, orders, planning, recalls). A partner (here the other tenant's user)
    # finds its lists empty and the enterprise's records missing (404); the enterprise's own
    # data and every change are refused to it (403).
    _vc_route("GET", "/organisations", P.VALUECHAIN_READ, Call("GET", f"{V}/organisations"),
              check_organisations, partner=200),
    _vc_route("GET", "/organisations/{code}", P.VALUECHAIN_READ,
              Call("GET", f"{V}/organisations/{ENTERPRISE}"), check_organisation, partner=404),
    _vc_route("PUT", "/organisations/{code}", P.VALUECHAIN_PLAN, new_organisation_call,
              check_vc_change,
              other=Call("PUT", f"{V}/organisations/{SUPPLIER}",
                         json=_organisation(SUPPLIER, "enterprise", "other"))),
    _vc_route("DELETE", "/organisations/{code}", P.VALUECHAIN_PLAN, delete_organisation_call,
              check_vc_change, other=Call("DELETE", f"{V}/organisations/{CUSTOMER}")),
    _vc_route("GET", "/materials", P.VALUECHAIN_READ, Call("GET", f"{V}/materials"),
              check_materials),
    _vc_route("PUT", "/materials/{code}", P.VALUECHAIN_PLAN, new_material_call, check_vc_change,
              other=Call("PUT", f"{V}/materials/{PART}", json=_material(PART, "raw"))),
    _vc_route("DELETE", "/materials/{code}", P.VALUECHAIN_PLAN, delete_material_call,
              check_vc_change, other=Call("DELETE", f"{V}/materials/{GOOD}")),
    _vc_route("PUT", "/boms/{parent}", P.VALUECHAIN_PLAN,
              Call("PUT", f"{V}/boms/{GOOD}", json=_bom(GOOD)), check_vc_change),
    _vc_route("DELETE", "/boms/{parent}", P.VALUECHAIN_PLAN, delete_bom_call, check_vc_change,
              other=Call("DELETE", f"{V}/boms/{GOOD}")),
    _vc_route("GET", "/sales-orders", P.VALUECHAIN_READ, Call("GET", f"{V}/sales-orders"),
              check_sales_orders, partner=200),
    _vc_route("GET", "/sales-orders/{order_id}", P.VALUECHAIN_READ,
              Call("GET", f"{V}/sales-orders/{SALES_ORDER}"), check_sales_order, partner=404),
    _vc_route("POST", "/sales-orders", P.VALUECHAIN_PLAN, new_sales_order_call, check_vc_change,
              status=201),
    _vc_route("POST", "/sales-orders/{order_id}/actions", P.VALUECHAIN_PLAN, sales_action_call,
              check_vc_change,
              other=Call("POST", f"{V}/sales-orders/{SALES_ORDER}/actions",
                         json={"action": "close"})),
    _vc_route("POST", "/sales-orders/{order_id}/shipments", P.VALUECHAIN_ENTER, shipment_call,
              check_vc_change,
              other=Call("POST", f"{V}/sales-orders/{SALES_ORDER}/shipments",
                         json={"line_no": 1, "lot_id": PART_LOT, "shipment_id": "SH-grab"})),
    _vc_route("GET", "/purchase-orders", P.VALUECHAIN_READ, Call("GET", f"{V}/purchase-orders"),
              check_purchase_orders, partner=200),
    _vc_route("GET", "/purchase-orders/{order_id}", P.VALUECHAIN_READ,
              Call("GET", f"{V}/purchase-orders/{PURCHASE_ORDER}"), check_purchase_order,
              partner=404),
    _vc_route("POST", "/purchase-orders", P.VALUECHAIN_PLAN, new_purchase_order_call,
              check_vc_change, status=201),
    _vc_route("POST", "/purchase-orders/{order_id}/actions", P.VALUECHAIN_PLAN,
              purchase_action_call, check_vc_change,
              other=Call("POST", f"{V}/purchase-orders/{PURCHASE_ORDER}/actions",
                         json={"action": "close"})),
    _vc_route("POST", "/purchase-orders/{order_id}/receipts", P.VALUECHAIN_ENTER, receipt_call,
              check_vc_change,
              other=Call("POST", f"{V}/purchase-orders/{PURCHASE_ORDER}/receipts",
                         json={"line_no": 1, "quantity": "1", "lot_id": "PART-grab",
                               "location": STORE})),
    _vc_route("POST", "/planning/runs", P.VALUECHAIN_PLAN,
              Call("POST", f"{V}/planning/runs", json={"today": PLAN_DAY}), check_vc_change),
    _vc_route("GET", "/planning/proposals", P.VALUECHAIN_READ,
              Call("GET", f"{V}/planning/proposals"), check_proposals),
    _vc_route("POST", "/planning/proposals/{proposal_id}/confirm", P.VALUECHAIN_PLAN,
              proposal_call("confirm"), check_vc_change),
    _vc_route("POST", "/planning/proposals/{proposal_id}/dismiss", P.VALUECHAIN_PLAN,
              proposal_call("dismiss"), check_vc_change),
    _vc_route("GET", "/lots", P.VALUECHAIN_READ, Call("GET", f"{V}/lots"), check_lots,
              partner=200),
    _vc_route("GET", "/lots/transactions", P.VALUECHAIN_READ,
              Call("GET", f"{V}/lots/transactions"), check_transactions),
    _vc_route("GET", "/lots/{lot_id}", P.VALUECHAIN_READ, Call("GET", f"{V}/lots/{PART_LOT}"),
              check_lot, partner=404),
    _vc_route("POST", "/lots/transactions", P.VALUECHAIN_ENTER, transaction_call,
              check_vc_change,
              other=Call("POST", f"{V}/lots/transactions",
                         json={"kind": "hold", "id": "hold-grab", "lot_id": PART_LOT,
                               "reason": "grab"})),
    _vc_route("GET", "/lots/{lot_id}/genealogy", P.VALUECHAIN_READ,
              Call("GET", f"{V}/lots/{GOOD_LOT}/genealogy"), check_genealogy),
    Route("GET", f"{V}/lots/{{lot_id}}/production", P.VALUECHAIN_READ,
          Call("GET", f"{V}/lots/{_site_lot(SITE1_CELL)}/production"),
          other=as_partner(Call("GET", f"{V}/lots/{_site_lot(SITE1_CELL)}/production")),
          scope=Call("GET", f"{V}/lots/{_site_lot(SITE2_CELL)}/production"),
          expect=(200, 403, 200), check=check_lot_production),
    _vc_route("GET", "/inventory", P.VALUECHAIN_READ, Call("GET", f"{V}/inventory"),
              check_stock),
    _vc_route("POST", "/recalls", P.VALUECHAIN_PLAN,
              Call("POST", f"{V}/recalls", json={"lots": [PART_LOT]}), check_recall),
    _vc_route("GET", "/valuechain/events", P.VALUECHAIN_READ,
              Call("GET", f"{V}/valuechain/events"), check_vc_events),
    # Routings, locations, master data files and B2MML documents: the enterprise's alone.
    _vc_route("GET", "/routings", P.VALUECHAIN_READ, Call("GET", f"{V}/routings"),
              check_routings),
    _vc_route("PUT", "/routings/{product}", P.VALUECHAIN_PLAN,
              Call("PUT", f"{V}/routings/{GOOD}", json=_routing(GOOD)), check_vc_change),
    _vc_route("DELETE", "/routings/{product}", P.VALUECHAIN_PLAN, delete_routing_call,
              check_vc_change, other=Call("DELETE", f"{V}/routings/{GOOD}")),
    _vc_route("GET", "/locations", P.VALUECHAIN_READ, Call("GET", f"{V}/locations"),
              check_locations),
    _vc_route("PUT", "/locations/{code}", P.VALUECHAIN_PLAN, new_location_call, check_vc_change,
              other=Call("PUT", f"{V}/locations/{LOCATION}", json=_location(LOCATION))),
    _vc_route("DELETE", "/locations/{code}", P.VALUECHAIN_PLAN, delete_location_call,
              check_vc_change, other=Call("DELETE", f"{V}/locations/{LOCATION}")),
    _vc_route("GET", "/master-data/{file}.csv", P.VALUECHAIN_READ,
              Call("GET", f"{V}/master-data/materials.csv"), check_master_file),
    _vc_route("POST", "/master-data/import", P.VALUECHAIN_PLAN, master_import_call,
              check_vc_change),
    _vc_route("GET", "/b2mml/material-definitions", P.VALUECHAIN_READ,
              Call("GET", f"{V}/b2mml/material-definitions"), check_definitions_document),
    *(_vc_route("GET", f"/b2mml/{document}", P.VALUECHAIN_READ,
                Call("GET", f"{V}/b2mml/{document}"), check_xml_document)
      for document in ("material-lots", "operations-schedule", "operations-performance")),
    *(_vc_route("POST", f"/b2mml/{document}", guard, b2mml_import_call(document),
                check_vc_change)
      for document, guard in (("material-definitions", P.VALUECHAIN_PLAN),
                              ("operations-schedule", P.VALUECHAIN_PLAN),
                              ("material-lots", P.VALUECHAIN_ENTER),
                              ("operations-performance", P.VALUECHAIN_ENTER))),
    # --- system:read
    Route("GET", "/metrics", P.SYSTEM_READ, Call("GET", "/metrics"), expect=(200, 200, 403)),
    # Installation-wide numbers: the acme/site1 reader is refused, not shown a part.
    Route("GET", f"{V}/connectors", P.SYSTEM_READ, Call("GET", f"{V}/connectors"),
          expect=(200, 200, 403), check=check_connectors),
    # --- audit:read
    Route("GET", f"{V}/audit", P.AUDIT_READ, Call("GET", f"{V}/audit", params={"limit": 10})),
    Route("GET", f"{V}/audit/export", P.AUDIT_READ,
          Call("GET", f"{V}/audit/export", params={"limit": 10, "format": "csv"})),
    Route("GET", f"{V}/audit/verify", P.AUDIT_READ, Call("GET", f"{V}/audit/verify")),
    # --- users:manage: users, roles, devices, tenants
    Route("GET", f"{V}/users", P.USERS_MANAGE, Call("GET", f"{V}/users"), check=check_users),
    Route("POST", f"{V}/users", P.USERS_MANAGE, new_user_call("acme/site1"),
          other=new_user_call("globex/plant1"), scope=new_user_call("acme/site2"),
          expect=(201, 400, 403)),
    Route("POST", f"{V}/users/{{username}}/roles", P.USERS_MANAGE,
          Call("POST", f"{V}/users/target-site1/roles", json=_SITE1_ROLE),
          other=Call("POST", f"{V}/users/gx-viewer/roles", json=_SITE1_ROLE),
          scope=Call("POST", f"{V}/users/target-site2/roles", json=_SITE2_ROLE),
          expect=(204, 404, 403)),
    Route("DELETE", f"{V}/users/{{username}}/roles", P.USERS_MANAGE,
          Call("DELETE", f"{V}/users/target-site1/roles",
               params={"role": "operator", "scope": "acme/site1"}),
          other=Call("DELETE", f"{V}/users/gx-viewer/roles", params={"role": "viewer"}),
          scope=Call("DELETE", f"{V}/users/target-site2/roles", params=_SITE2_ROLE),
          expect=(204, 404, 403)),
    Route("PUT", f"{V}/users/{{username}}/disabled", P.USERS_MANAGE,
          Call("PUT", f"{V}/users/target-site1/disabled", json=_ENABLED),
          other=Call("PUT", f"{V}/users/gx-viewer/disabled", json=_ENABLED),
          scope=Call("PUT", f"{V}/users/target-site2/disabled", json=_ENABLED),
          expect=(204, 404, 403)),
    Route("GET", f"{V}/roles", P.USERS_MANAGE, Call("GET", f"{V}/roles"), check=check_roles),
    # Role and device names are the tenant's own: the other tenant's names are free here.
    Route("POST", f"{V}/roles", P.USERS_MANAGE,
          Call("POST", f"{V}/roles", json={"name": "role-own", "permissions": ["values:read"]}),
          other=Call("POST", f"{V}/roles", json={"name": "gx-role", "permissions": ["values:read"]}),
          scope=Call("POST", f"{V}/roles", json={"name": "role-scope", "permissions": ["values:read"]}),
          expect=(201, 201, 403)),
    Route("GET", f"{V}/devices", P.USERS_MANAGE, Call("GET", f"{V}/devices"), check=check_devices),
    Route("POST", f"{V}/devices", P.USERS_MANAGE,
          Call("POST", f"{V}/devices", json={"name": "dev-own", "prefix": SITE1_PUMP}),
          other=Call("POST", f"{V}/devices", json={"name": "gx-spare", "prefix": SITE1_PUMP}),
          scope=Call("POST", f"{V}/devices", json={"name": "dev-scope", "prefix": SITE2_PUMP}),
          expect=(201, 201, 403)),
    Route("DELETE", f"{V}/devices/{{name}}", P.USERS_MANAGE, own_device_call,
          other=Call("DELETE", f"{V}/devices/gx-gw"),
          scope=Call("DELETE", f"{V}/devices/gw-site2"),
          expect=(204, 404, 404)),
    Route("GET", f"{V}/tenants", P.USERS_MANAGE, Call("GET", f"{V}/tenants"), check=check_tenants),
    Route("POST", f"{V}/tenants", P.USERS_MANAGE,
          Call("POST", f"{V}/tenants", json={"name": "partner-own", "kind": "partner"}),
          other=Call("POST", f"{V}/tenants", json={"name": "grab", "roots": ["globex/plant1"]}),
          scope=Call("POST", f"{V}/tenants", json={"name": "partner-scope", "kind": "partner"}),
          expect=(201, 400, 403)),
    Route("POST", f"{V}/tenants/{{partner}}/shares", P.USERS_MANAGE,
          Call("POST", f"{V}/tenants/partners/shares", json={"resource_id": "acme/site1"}),
          other=Call("POST", f"{V}/tenants/other/shares", json={"resource_id": "acme/site1"}),
          scope=Call("POST", f"{V}/tenants/partners/shares", json={"resource_id": "acme/site2"}),
          expect=(201, 404, 403)),
    Route("DELETE", f"{V}/tenants/{{partner}}/shares", P.USERS_MANAGE, own_share_call,
          other=Call("DELETE", f"{V}/tenants/other/shares", params={"resource_id": "acme/site1"}),
          scope=Call("DELETE", f"{V}/tenants/partners/shares",
                     params={"resource_id": "acme/site2"}),
          expect=(204, 404, 403)),
    Route("GET", f"{V}/shares", P.USERS_MANAGE, Call("GET", f"{V}/shares"), check=check_shares),
    # --- devices only
    Route("POST", f"{V}/ingest", DEVICE,
          Call("POST", f"{V}/ingest", json={"values": [_value(SITE1_FLOW, OVER)]})),
    Route("POST", f"{V}/ingest/bulk", DEVICE,
          Call("POST", f"{V}/ingest/bulk", content=_bulk_body(SITE1_FLOW, OVER),
               content_type="application/vnd.apache.arrow.stream")),
    Route("POST", "/write", DEVICE,
          Call("POST", "/write", params={"db": "acme/site1"}, content="influx v=1")),
    Route("POST", "/api/v2/write", DEVICE,
          Call("POST", "/api/v2/write", params={"bucket": "acme/site1"}, content="influx v=1")),
)  # fmt: skip
BY_LABEL: Final = {r.label: r for r in ROUTES}


def admits(route: Route, role: str) -> bool:
    """Whether the route's guard lets `role` in, so that the route's own answer counts."""
    if route.guard == PUBLIC:
        return True
    if role == ANONYMOUS or route.guard == DEVICE:  # a user's token is no device credential
        return False
    if isinstance(route.guard, frozenset):
        return route.guard <= BUILTIN_ROLES[role]
    return not isinstance(route.guard, Permission) or route.guard in BUILTIN_ROLES[role]


def expected(route: Route, role: str, case: str) -> int:
    """What `role` gets from `route` in `case`, from the route's guard and the role's grants."""
    if not admits(route, role):
        return 401 if role == ANONYMOUS or route.guard == DEVICE else 403
    if role == ANONYMOUS and route.anonymous is not None:
        return route.anonymous
    return route.expect[CASES.index(case)]


# -- every route has a guard and an entry -------------------------------------------------------

APP: Final = build_app(plant(Path("unused")))  # never started: for its routes and document
GUARDS: Final = (Require, RequireDevice, Authenticated, Public)
# Routes that cannot carry a dependency, public on purpose.
NOT_GUARDABLE: Final = {
    "GET /openapi.json": "FastAPI's document of the API, which the docs page loads",
    "MOUNT /static": "the page's own scripts and styles",
    "MOUNT /docs-assets": "Swagger UI's scripts and styles",
}


def _guards(dependant: Dependant) -> list[object]:
    found = [d.call for d in dependant.dependencies if isinstance(d.call, GUARDS)]
    return found + [g for d in dependant.dependencies for g in _guards(d)]


def app_routes(app: FastAPI) -> dict[str, list[object] | None]:
    """Every route of `app` by label, with the guards in its dependency tree (None: a route
    that has no dependencies at all, such as a mount)."""
    routes: dict[str, list[object] | None] = {}
    for context in iter_route_contexts(app.routes):
        original = context.original_route
        if isinstance(original, APIRoute):
            for method in sorted(context.methods or ()):
                routes[f"{method} {context.path}"] = _guards(context.dependant)
        elif isinstance(original, APIWebSocketRoute):
            routes[f"WS {context.path}"] = _guards(context.dependant)
        else:
            methods = getattr(context, "methods", None) or {"MOUNT"}
            for method in sorted(set(methods) - {"HEAD"}):
                routes[f"{method} {context.path}"] = None
    return routes


def declared_guard(guards: list[object]) -> Guard:
    if len(guards) > 1 and all(isinstance(g, Require) for g in guards):
        return frozenset(g.permission for g in guards if isinstance(g, Require))
    assert len(guards) == 1, f"one guard per route (or several Require), not {guards}"
    guard = guards[0]
    if isinstance(guard, Require):
        return guard.permission
    return {RequireDevice: DEVICE, Authenticated: SIGNED_IN, Public: PUBLIC}[type(guard)]


def unguarded(app: FastAPI) -> list[str]:
    return sorted(
        label
        for label, guards in app_routes(app).items()
        if not guards and label not in NOT_GUARDABLE
    )


def test_every_route_declares_a_guard() -> None:
    assert unguarded(APP) == [], "routes without Require/RequireDevice/Authenticated/Public"


def test_the_guard_check_sees_a_new_route_without_a_guard() -> None:
    app = build_app(plant(Path("unused")))

    @app.get(f"{V}/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    assert unguarded(app) == ["GET /api/v1/forgotten"]


@pytest.mark.parametrize("label", sorted(app_routes(APP)))
def test_the_table_knows_the_route_and_its_guard(label: str) -> None:
    guards = app_routes(APP)[label]
    if guards is None:
        assert label in NOT_GUARDABLE, f"{label} cannot declare a guard: make it an APIRoute"
        return
    assert label in BY_LABEL, f"{label} has no entry in ROUTES: add its expected answers"
    assert BY_LABEL[label].guard == declared_guard(guards), f"{label} declares another guard"


def test_every_operation_of_the_document_is_in_the_table() -> None:
    operations = {
        f"{method.upper()} {path}" for path, ops in APP.openapi()["paths"].items() for method in ops
    }
    # The document names a `{x:path}` parameter `{x}`.
    assert operations - {label.replace(":path}", "}") for label in BY_LABEL} == set()
    stale = set(BY_LABEL) - set(app_routes(APP))
    assert stale == set(), "entries of ROUTES for routes the app does not have"


def test_the_matrix_covers_every_builtin_role() -> None:
    assert set(ROLES) == set(BUILTIN_ROLES)


# -- the matrix ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "role", "case"),
    [
        pytest.param(route, role, case, id=f"{route.label}-{role}-{case}")
        for route in ROUTES
        for role in CALLERS
        for case in CASES
    ],
)
def test_authorization_matrix(world: World, route: Route, role: str, case: str) -> None:
    caller = world.caller(role, case)
    call = route.call(world, caller)
    want = expected(route, role, case)
    status, body = world.send(call, caller)
    assert status == want, f"{route.label} as {role} ({case}): {status} {body}"
    if status == 404:
        assert_like_unknown(world, route, caller, call, body)
    elif route.check is not None and admits(route, role):
        route.check(world, caller, call, body)


# -- other tenants' principals, and things the matrix does not show ---------------------------


def test_the_other_tenant_sees_only_its_own(world: World) -> None:
    gx, get = world.globex_admin, world.client.get
    tenants = get(f"{V}/tenants", headers=gx).json()["tenants"]
    assert [t["name"] for t in tenants] == ["other"]
    users = {u["username"] for u in get(f"{V}/users", headers=gx).json()["users"]}
    assert users == set(GLOBEX_USERS)
    devices = {d["name"] for d in get(f"{V}/devices", headers=gx).json()["devices"]}
    assert devices == set(GLOBEX_DEVICES)
    # The installation's connectors carry every tenant's tags: not another tenant's to list.
    assert get(f"{V}/connectors", headers=gx).status_code == 403
    assert get("/metrics", headers=gx).status_code == 403
    viewer = world.users["gx-viewer"]
    latest = get(f"{V}/values/latest", headers=viewer).json()["values"]
    assert [(v["path"], v["value"]) for v in latest] == [(GLOBEX_FLOW, GLOBEX_VALUE)]
    alarms = get(f"{V}/alarms", params={"state": "all"}, headers=viewer).json()["alarms"]
    assert {a["id"] for a in alarms} == {GLOBEX_ALARM}
    assert get(f"{V}/history/raw", params=_HISTORY, headers=viewer).status_code == 404
    tags = {t["path"] for t in get(f"{V}/tags", headers=viewer).json()["tags"]}
    assert tags == {GLOBEX_FLOW}
    assets = _tree_paths(get(f"{V}/assets", headers=viewer).json()["assets"])
    assert assets and all(p.startswith("globex") for p in assets), assets
    with world.client.websocket_connect(f"{V}/live", headers=viewer) as ws:
        assert [v["path"] for v in ws.receive_json()["values"]] == [GLOBEX_FLOW]


def test_the_other_tenants_auditor_reads_only_its_records(world: World) -> None:
    records = world.client.get(
        f"{V}/audit", params={"limit": 1000}, headers=world.users["gx-auditor"]
    ).json()["records"]
    assert records and {r["tenant"] for r in records} == {"other"}
    everything = world.client.get(
        f"{V}/audit", params={"limit": 1000}, headers=world.users["auditor-all"]
    ).json()["records"]
    assert {"default", "other"} <= {r["tenant"] for r in everything}


def test_a_failed_login_does_not_tell_whether_the_user_exists(world: World) -> None:
    answers = [
        world.client.post(
            f"{V}/auth/token",
            data={"grant_type": "password", "username": name, "password": "wrong password!"},
        )
        for name in ("gx-viewer", "nobody-at-all")
    ]
    assert [r.status_code for r in answers] == [401, 401]
    assert answers[0].json() == answers[1].json()


def test_an_api_key_acts_with_its_permissions_only(world: World) -> None:
    made = world.post(f"{V}/keys", world.users["admin-all"], json=_key("reader"))
    key = {"Authorization": f"Bearer {made['token']}"}
    get = world.client.get
    assert get(f"{V}/values/latest", params={"tag": SITE1_FLOW}, headers=key).status_code == 200
    assert get(f"{V}/users", headers=key).status_code == 403
    assert world.client.post(f"{V}/ingest", json={"values": []}, headers=key).status_code == 401
    # A key has no session: signing out with it is harmless and leaves it working.
    assert world.client.post(f"{V}/auth/logout", headers=key).status_code == 204
    assert get(f"{V}/auth/me", headers=key).json()["kind"] == "apikey"


# -- device credentials -------------------------------------------------------------------------


def _history(world: World, tag: str, headers: dict[str, str]) -> list[float]:
    r = world.client.get(f"{V}/history/raw", params={"tag": tag, "start": "-1d"}, headers=headers)
    assert r.status_code == 200, r.text
    return [p["value"] for p in r.json()["values"]]


def test_a_device_cannot_ingest_under_another_devices_prefix(world: World) -> None:
    gw = world.devices["gw-site1"]
    sentinel = 4242.5
    items = [
        _value(f"{SITE1_PUMP}/flow", OVER + 1),
        _value(SITE2_FLOW, sentinel),  # another device's prefix, same tenant
        _value(GLOBEX_FLOW, sentinel),  # another tenant's namespace
        _value("acme/site10/utilities/water/x/y", sentinel),  # prefixes match segment-wise
    ]
    r = world.client.post(f"{V}/ingest", json={"values": items}, headers=gw)
    assert r.status_code == 207, r.text
    body = r.json()
    assert body["accepted"] == 1
    assert [e["index"] for e in body["rejected"]] == [1, 2, 3]
    assert all("may publish only under acme/site1" in e["error"] for e in body["rejected"])
    assert sentinel not in _history(world, SITE2_FLOW, world.admin)
    assert sentinel not in _history(world, GLOBEX_FLOW, world.globex_admin)
    tags = world.client.get(f"{V}/tags", params={"prefix": "acme/site10"}, headers=world.admin)
    assert tags.json()["tags"] == [], "a rejected item must not create its tag"
    # Nothing valid at all: 422, and still nothing stored.
    r = world.client.post(f"{V}/ingest", json={"values": items[1:3]}, headers=gw)
    assert r.status_code == 422
    assert sentinel not in _history(world, SITE2_FLOW, world.admin)


def test_a_revoked_device_is_refused_at_once(world: World) -> None:
    gw = device_headers(world.client, world.admin, "short-lived", "acme/site1")
    body = {"values": [_value(SITE1_FLOW, OVER + 2)]}
    assert world.client.post(f"{V}/ingest", json=body, headers=gw).status_code == 200
    r = world.client.delete(f"{V}/devices/short-lived", headers=world.admin)
    assert r.status_code == 204
    r = world.client.post(f"{V}/ingest", json=body, headers=gw)
    assert r.status_code == 401
    assert r.json()["reason"] == "invalid_token"


@pytest.mark.parametrize("who", ["admin-all", "viewer-all", "gx-admin"])
def test_a_users_token_is_refused_by_ingest(world: World, who: str) -> None:
    body = {"values": [_value(SITE1_FLOW, OVER + 3)]}
    r = world.client.post(f"{V}/ingest", json=body, headers=world.users[who])
    assert r.status_code == 401


@pytest.mark.parametrize(
    "route", [pytest.param(r, id=r.label) for r in ROUTES if r.guard != DEVICE]
)
def test_a_device_token_is_worth_no_more_than_none_elsewhere(world: World, route: Route) -> None:
    """Outside ingest a device credential is refused (401), and a public route answers it
    like a caller without credentials."""
    device = Caller(ANONYMOUS, OWN, None, world.devices["gw-site1"])
    call = route.call(world, device)
    status, body = world.send(replace(call, headers=call.headers or device.headers), device)
    assert status == expected(route, ANONYMOUS, OWN), f"{route.label}: {status} {body}"
    if route.check is not None and admits(route, ANONYMOUS):
        route.check(world, device, call, body)


# -- B2MML documents of production's orders -------------------------------------------------------
# The value chain's B2MML routes hold production's work orders to production's own checks:
# values:read over the line to export them, production:plan over it to create them.


@pytest.mark.parametrize("document", ["operations-schedule", "operations-performance"])
def test_an_operations_export_shows_only_the_orders_the_caller_reads(
    world: World, document: str
) -> None:
    for who, hidden in (("viewer-all", "globex"), ("viewer-site1", "acme/site2")):
        r = world.client.get(f"{V}/b2mml/{document}", headers=world.users[who])
        assert r.status_code == 200, r.text
        assert hidden not in r.text, f"{who} reads orders of {hidden} in the {document}"


@pytest.mark.parametrize(
    ("who", "cell"), [("planner-all", GLOBEX_CELL), ("planner-site1", SITE2_CELL)]
)
def test_a_schedule_import_makes_orders_only_where_the_caller_plans(
    world: World, who: str, cell: str
) -> None:
    """As POST /orders: a line outside the caller's tenant or scope is one it cannot see."""
    n = next(_VC)
    now = int(time.time() * 1_000_000)
    order = b2mml.ScheduledOrder(id=f"wo-grab-{n}", product="water", quantity=5,
                                 line=f"{cell}/grab{n}", created_us=now, updated_us=now)  # fmt: skip
    xml = b2mml.export_operations_schedule([order], schedule_id=f"grab-{n}", created_us=now)
    headers = {**world.users[who], "Content-Type": XML}
    r = world.client.post(f"{V}/b2mml/operations-schedule", content=xml, headers=headers)
    assert r.status_code in (400, 403, 404), r.text
