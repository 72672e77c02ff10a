"""The value chain: organisations, master data, sales and purchase orders, material planning.

Every route talks to the value chain engine through bus commands (target `valuechain`,
`kiln.valuechain.engine_commands`), so the engine may run in this process or another. Reading
needs valuechain:read; booking stock (receipts, shipments) valuechain:enter; master data,
orders, planning and its decisions valuechain:plan. A partner's users (customers, suppliers)
read only their own orders, and what the enterprise shares with them; they change nothing
(`valuechain_access`). Every change is audited (category valuechain).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from kiln.api.auth import Require
from kiln.api.deps import PlatformDep
from kiln.api.routers.valuechain_access import (
    CHANGE,
    PARTNER_DENIED,
    READ,
    RulesRoute,
    ask,
    change,
    enterprise_only,
    view_of,
)
from kiln.security.permissions import Permission
from kiln.security.principal import Principal
from kiln.valuechain import Bom, Day, Material, Organisation, PurchaseOrder, SalesOrder

router = APIRouter(tags=["value chain"], route_class=RulesRoute)

Reader = Annotated[Principal, Depends(Require(Permission.VALUECHAIN_READ))]
Enterer = Annotated[Principal, Depends(Require(Permission.VALUECHAIN_ENTER))]
Planner = Annotated[Principal, Depends(Require(Permission.VALUECHAIN_PLAN))]

Limit = Annotated[int, Query(ge=1, le=5000, description="at most this many")]
SalesStateName = Literal["draft", "confirmed", "in_production", "shipped", "closed", "cancelled"]
PurchaseStateName = Literal[
    "draft", "sent", "confirmed", "partially_received", "received", "closed", "cancelled"
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActionIn(_Body):
    action: str = Field(min_length=1, max_length=32, description="the state machine's action")
    expected_version: int | None = Field(
        default=None, ge=1, description="refuse (409) if the order is at another version"
    )


class ShipmentIn(_Body):
    line_no: int = Field(strict=True, ge=1)
    lot_id: str = Field(min_length=1, max_length=64, description="the whole lot ships")
    shipment_id: str = Field(min_length=1, max_length=64)
    date: Day | None = Field(default=None, description="default today (planning's zone)")
    expected_version: int | None = Field(default=None, ge=1)


class ReceiptIn(_Body):
    line_no: int = Field(strict=True, ge=1)
    quantity: Decimal = Field(gt=0)
    lot_id: str = Field(min_length=1, max_length=64, description="the new lot's id")
    location: str = Field(min_length=1, max_length=512)
    supplier_lot: str | None = Field(default=None, max_length=128)
    date: Day | None = Field(default=None, description="default today (planning's zone)")
    expected_version: int | None = Field(default=None, ge=1)


class PlanRunIn(_Body):
    today: Day | None = Field(default=None, description="default today (planning's zone)")


class ConfirmIn(_Body):
    line: str | None = Field(
        default=None, max_length=512, description="where a work order runs (required for one)"
    )
    order_id: str | None = Field(
        default=None, max_length=64, description="the new order's id; default from the proposal"
    )


def _json(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=False)


def _same(path_id: str, body_id: str, what: str) -> None:
    if path_id != body_id:
        raise HTTPException(400, f"the path names {what} {path_id!r}, the body {body_id!r}")


# -- organisations ------------------------------------------------------------------------------


@router.get("/organisations", responses=READ)
async def organisations(request: Request, who: Reader, platform: PlatformDep) -> Mapping[str, Any]:
    """The enterprise, its customers and suppliers with their contacts (a partner: its own)."""
    view = await view_of(request, platform, who)
    return await ask(platform, "organisations", view.args())


@router.get("/organisations/{code}", responses=READ)
async def organisation(
    request: Request, code: str, who: Reader, platform: PlatformDep
) -> Mapping[str, Any]:
    """One organisation with its contacts and version."""
    view = await view_of(request, platform, who)
    return await ask(platform, "organisation", {"code": code, **view.args()})


@router.put("/organisations/{code}", responses=CHANGE)
async def put_organisation(
    request: Request, code: str, body: Organisation, who: Planner, platform: PlatformDep
) -> Mapping[str, Any]:
    """Add or replace an organisation; a customer or supplier names the partner tenant its
    users sign in to (one enterprise per tenant)."""
    await enterprise_only(request, platform, who)
    _same(code, body.code, "organisation")
    # Who is the enterprise decides who sees everything: it is the planner's own tenant, and a
    # customer or supplier is always another tenant (a partner's), never the enterprise's.
    if body.kind.value == "enterprise" and body.tenant != who.tenant:
        raise HTTPException(400, f"the enterprise is your own tenant {who.tenant!r}")
    if body.kind.value != "enterprise" and body.tenant == who.tenant:
        raise HTTPException(
            400, f"a {body.kind.value} has a tenant of its own, not the enterprise's {who.tenant!r}"
        )
    return await change(
        request, platform, "organisation_put", {"organisation": _json(body)}, code,
        {"kind": body.kind.value, "tenant": body.tenant},
    )  # fmt: skip


@router.delete("/organisations/{code}", responses=CHANGE)
async def delete_organisation(
    request: Request, code: str, who: Planner, platform: PlatformDep
) -> Mapping[str, Any]:
    """Delete an organisation no order names."""
    await enterprise_only(request, platform, who)
    return await change(request, platform, "organisation_delete", {"code": code}, code)


# -- master data --------------------------------------------------------------------------------


@router.get("/materials", responses=READ | PARTNER_DENIED)
async def materials(request: Request, who: Reader, platform: PlatformDep) -> Mapping[str, Any]:
    """Every material and bill of materials."""
    await enterprise_only(request, platform, who)
    return await ask(platform, "master", {})


@router.put("/materials/{code}", responses=CHANGE)
async def put_material(
    request: Request, code: str, body: Material, who: Planner, platform: PlatformDep
) -> Mapping[str, Any]:
    """Add or replace a material; refused (400) if master data would not hold together."""
    await enterprise_only(request, platform, who)
    _same(code, body.code, "material")
    return await change(request, platform, "material_put", {"material": _json(body)}, code)


@router.delete("/materials/{code}", responses=CHANGE)
async def delete_material(
    request: Request, code: str, who: Planner, platform: PlatformDep
) -> Mapping[str, Any]:
    """Delete a material no bill of materials names."""
    await enterprise_only(request, platform, who)
    return await change(request, platform, "material_delete", {"code": code}, code)


@router.put("/boms/{parent}", responses=CHANGE)
async def put_bom(
    request: Request, parent: str, body: Bom, who: Planner, platform: PlatformDep
) -> Mapping[str, Any]:
    """Add or replace the bill of materials of `parent`; a cycle is refused (400)."""
    await enterprise_only(request, platform, who)
    _same(parent, body.parent, "bill of materials")
    return await change(request, platform, "bom_put", {"bom": _json(body)}, parent)


@router.delete("/boms/{parent}", responses=CHANGE)
async def delete_bom(
    request: Request, parent: str, who: Planner, platform: PlatformDep
) -> Mapping[str, Any]:
    """Delete the bill of materials of `parent`."""
    await enterprise_only(request, platform, who)
    return await change(request, platform, "bom_delete", {"parent": parent}, parent)


# -- sales orders -------------------------------------------------------------------------------


@router.get("/sales-orders", responses=READ)
async def sales_orders(
    request: Request,
    who: Reader,
    platform: PlatformDep,
    state: Annotated[list[SalesStateName] | None, Query()] = None,
    limit: Limit = 500,
) -> Mapping[str, Any]:
    """Sales orders by id, with lines, due and promised dates and shipments (a customer's
    users: their own)."""
    view = await view_of(request, platform, who)
    return await ask(platform, "sales_orders", {**view.args(), "states": state, "limit": limit})


@router.get("/sales-orders/{order_id}", responses=READ)
async def sales_order(
    request: Request, order_id: str, who: Reader, platform: PlatformDep
) -> Mapping[str, Any]:
    """One sales order and its version."""
    view = await view_of(request, platform, who)
    return await ask(platform, "sales_order", {"id": order_id, **view.args()})


@router.post("/sales-orders", responses=CHANGE, status_code=201)
async def create_sales_order(
    request: Request, body: SalesOrder, who: Planner, platform: PlatformDep
) -> Mapping[str, Any]:
    """A new sales order of a known customer for known materials."""
    await enterprise_only(request, platform, who)
    return await change(
        request, platform, "sales_order_create", {"order": _json(body)}, body.id,
        {"customer": body.customer},
    )  # fmt: skip


@router.post("/sales-orders/{order_id}/actions", responses=CHANGE)
async def sales_order_action(
    request: Request, order_id: str, body: ActionIn, who: Planner, platform: PlatformDep
) -> Mapping[str, Any]:
    """confirm, start_production, ship (when all has shipped), close or cancel."""
    await enterprise_only(request, platform, who)
    args = {"id": order_id, "action": body.action, "expected_version": body.expected_version}
    return await change(request, platform, "sales_order_action", args, order_id, _json(body))


@router.post("/sales-orders/{order_id}/shipments", responses=CHANGE)
async def ship_lot(
    request: Request, order_id: str, body: ShipmentIn, who: Enterer, platform: PlatformDep
) -> Mapping[str, Any]:
    """Ship a whole lot against a line: the lot leaves and the line books it, both or neither."""
    await enterprise_only(request, platform, who)
    args = {"id": order_id, **_json(body), "user": who.name}
    return await change(request, platform, "sales_order_ship", args, order_id, _json(body))


# -- purchase orders ----------------------------------------------------------------------------


@router.get("/purchase-orders", responses=READ)
async def purchase_orders(
    request: Request,
    who: Reader,
    platform: PlatformDep,
    state: Annotated[list[PurchaseStateName] | None, Query()] = None,
    limit: Limit = 500,
) -> Mapping[str, Any]:
    """Purchase orders by id, with lines, promised dates and goods receipts (a supplier's
    users: their own)."""
    view = await view_of(request, platform, who)
    args = {**view.args(), "states": state, "limit": limit}
    return await ask(platform, "purchase_orders", args)


@router.get("/purchase-orders/{order_id}", responses=READ)
async def purchase_order(
    request: Request, order_id: str, who: Reader, platform: PlatformDep
) -> Mapping[str, Any]:
    """One purchase order and its version."""
    view = await view_of(request, platform, who)
    return await ask(platform, "purchase_order", {"id": order_id, **view.args()})


@router.post("/purchase-orders", responses=CHANGE, status_code=201)
async def create_purchase_order(
    request: Request, body: PurchaseOrder, who: Planner, platform: PlatformDep
) -> Mapping[str, Any]:
    """A new purchase order to a known supplier for known materials."""
    await enterprise_only(request, platform, who)
    return await change(
        request, platform, "purchase_order_create", {"order": _json(body)}, body.id,
        {"supplier": body.supplier},
    )  # fmt: skip


@router.post("/purchase-orders/{order_id}/actions", responses=CHANGE)
async def purchase_order_action(
    request: Request, order_id: str, body: ActionIn, who: Planner, platform: PlatformDep
) -> Mapping[str, Any]:
    """send, confirm, close or cancel (receipts move it to partially_received and received)."""
    await enterprise_only(request, platform, who)
    args = {"id": order_id, "action": body.action, "expected_version": body.expected_version}
    return await change(request, platform, "purchase_order_action", args, order_id, _json(body))


@router.post("/purchase-orders/{order_id}/receipts", responses=CHANGE)
async def receive_goods(
    request: Request, order_id: str, body: ReceiptIn, who: Enterer, platform: PlatformDep
) -> Mapping[str, Any]:
    """A goods receipt: a new lot of the line's material, booked on the line, both or neither;
    more than ordered (beyond the tolerance) is refused."""
    await enterprise_only(request, platform, who)
    args = {"id": order_id, **_json(body), "user": who.name}
    return await change(request, platform, "purchase_order_receive", args, order_id, _json(body))


# -- planning -----------------------------------------------------------------------------------


@router.post("/planning/runs", responses=CHANGE)
async def plan(
    request: Request, body: PlanRunIn, who: Planner, platform: PlatformDep
) -> Mapping[str, Any]:
    """Run material planning over open sales orders, stock, open purchase and work orders; the
    proposals still undecided are replaced by the new ones."""
    await enterprise_only(request, platform, who)
    return await change(request, platform, "plan_run", _json(body), "planning")


@router.get("/planning/proposals", responses=READ | PARTNER_DENIED)
async def proposals(
    request: Request,
    who: Reader,
    platform: PlatformDep,
    state: Annotated[list[Literal["proposed", "confirmed", "dismissed"]] | None, Query()] = None,
    limit: Limit = 500,
) -> Mapping[str, Any]:
    """Planned work and purchase orders with their reasons: the demands they cover, the stock
    and supply netted, the lot-size rule. A supplier's users see the purchase proposals naming
    them when the enterprise shares its forecasts with them."""
    view = await view_of(request, platform, who)
    if view.partner and "forecasts" not in view.shares:
        raise HTTPException(403, "the enterprise does not share its forecasts with you")
    return await ask(platform, "proposals", {**view.args(), "states": state, "limit": limit})


@router.post("/planning/proposals/{proposal_id}/confirm", responses=CHANGE)
async def confirm(
    request: Request, proposal_id: str, body: ConfirmIn, who: Planner, platform: PlatformDep
) -> Mapping[str, Any]:
    """Make the order: a work order in production's execution (on `line`, where you need
    production:plan), or a draft purchase order to the proposed supplier."""
    await enterprise_only(request, platform, who)
    if body.line is not None and not (
        who.sees(Permission.VALUES_READ, body.line)
        and who.can(Permission.PRODUCTION_PLAN, body.line)
    ):
        # As POST /orders: a work order goes only on a line where the caller plans production.
        raise HTTPException(404, f"no line {body.line!r} for you")
    args = {"id": proposal_id, **_json(body), "user": who.name}
    return await change(request, platform, "proposal_confirm", args, proposal_id, _json(body))


@router.post("/planning/proposals/{proposal_id}/dismiss", responses=CHANGE)
async def dismiss(
    request: Request, proposal_id: str, who: Planner, platform: PlatformDep
) -> Mapping[str, Any]:
    """Decide against a proposal; the next run does not propose it again."""
    await enterprise_only(request, platform, who)
    args = {"id": proposal_id, "user": who.name}
    return await change(request, platform, "proposal_dismiss", args, proposal_id)
