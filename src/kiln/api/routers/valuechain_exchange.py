"""Value chain master data beyond materials (routings, inventory locations), master data as CSV
files, and B2MML (ISA-95) documents in and out.

Through the value chain engine (target `valuechain`) like the other value chain routes; all of
it is the enterprise's (a partner's users get 403). Reading needs valuechain:read; changing
master data, importing CSV and B2MML definitions or schedules valuechain:plan; importing lots
and performance (which book stock) valuechain:enter. Every change is audited.

Locations name asset paths of the ISA-95 hierarchy: when the asset model runs in this process,
a location whose path the model does not declare is refused with the nearest one it does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Request, Response

from kiln.api.deps import PlatformDep
from kiln.api.routers.alarms import ask as ask_target
from kiln.api.routers.valuechain import Enterer, Planner, Reader
from kiln.api.routers.valuechain_access import (
    CHANGE,
    PARTNER_DENIED,
    READ,
    RulesRoute,
    ask,
    change,
    enterprise_only,
)
from kiln.core.platform import Platform
from kiln.model.info import AssetNode
from kiln.model.service import AssetModel
from kiln.production.engine import PRODUCTION_TARGET
from kiln.security.permissions import Permission
from kiln.security.principal import Principal
from kiln.valuechain.locations import Location
from kiln.valuechain.routing import Routing

router = APIRouter(tags=["value chain"], route_class=RulesRoute)

MasterFile = Literal["materials", "bom_lines", "routings", "locations"]
# Importing lots or a performance books stock: the storekeeper's; the others are planning's.
_BOOKS_STOCK = ("material-lots", "operations-performance")
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
# Building MESA's schemas takes seconds, once per process: the first document may be slow.
B2MML_TIMEOUT_S = 60.0
_OF_ORDERS = ("operations-schedule", "operations-performance")
XML = "application/xml"
_XML_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {XML: {}}, "description": "the B2MML document"}
}
_CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "the CSV file"}
}


def _known_paths(platform: Platform) -> list[str] | None:
    """Every asset path the model declares, or None when it does not run here."""
    if not platform.has(AssetModel):
        return None
    out: list[str] = []

    def walk(nodes: list[AssetNode]) -> None:
        for node in nodes:
            out.append(node.path)
            walk(node.children)

    walk(platform.service(AssetModel).tree())
    return out or None  # a model that declares nothing cannot tell a path from a typo


def _same(path_id: str, body_id: str, what: str) -> None:
    if path_id != body_id:
        raise HTTPException(400, f"the path names {what} {path_id!r}, the body {body_id!r}")


# -- routings and locations ---------------------------------------------------------------------


@router.get("/routings", responses=READ | PARTNER_DENIED)
async def routings(request: Request, who: Reader, platform: PlatformDep) -> Mapping[str, Any]:
    """Every routing: each product's operations with their work centres and times."""
    await enterprise_only(request, platform, who)
    return await ask(platform, "routings", {})


@router.put("/routings/{product}", responses=CHANGE)
async def put_routing(
    request: Request, product: str, body: Routing, who: Planner, platform: PlatformDep
) -> Mapping[str, Any]:
    """Add or replace the routing of a material in master data."""
    await enterprise_only(request, platform, who)
    _same(product, body.product, "product")
    args = {"routing": body.model_dump(mode="json")}
    return await change(request, platform, "routing_put", args, product)


@router.delete("/routings/{product}", responses=CHANGE)
async def delete_routing(
    request: Request, product: str, who: Planner, platform: PlatformDep
) -> Mapping[str, Any]:
    """Delete the routing of `product`."""
    await enterprise_only(request, platform, who)
    return await change(request, platform, "routing_delete", {"product": product}, product)


@router.get("/locations", responses=READ | PARTNER_DENIED)
async def locations(request: Request, who: Reader, platform: PlatformDep) -> Mapping[str, Any]:
    """Every inventory location with its asset path, kind, zone and bin."""
    await enterprise_only(request, platform, who)
    return await ask(platform, "locations", {})


@router.put("/locations/{code}", responses=CHANGE)
async def put_location(
    request: Request, code: str, body: Location, who: Planner, platform: PlatformDep
) -> Mapping[str, Any]:
    """Add or replace a location; its asset path must be one the asset model declares."""
    await enterprise_only(request, platform, who)
    _same(code, body.code, "location")
    args = {"location": body.model_dump(mode="json"), "known_paths": _known_paths(platform)}
    return await change(request, platform, "location_put", args, code)


@router.delete("/locations/{code}", responses=CHANGE)
async def delete_location(
    request: Request, code: str, who: Planner, platform: PlatformDep
) -> Mapping[str, Any]:
    """Delete a location that holds no other location."""
    await enterprise_only(request, platform, who)
    return await change(request, platform, "location_delete", {"code": code}, code)


# -- CSV ----------------------------------------------------------------------------------------


@router.get(
    "/master-data/{file}.csv",
    responses=READ | PARTNER_DENIED | _CSV_RESPONSE,
    response_class=Response,
)
async def master_file(
    request: Request, file: MasterFile, who: Reader, platform: PlatformDep
) -> Response:
    """One master data file as CSV (UTF-8, the header first; docs/valuechain.md)."""
    await enterprise_only(request, platform, who)
    files = (await ask(platform, "master_export", {}))["files"]
    return Response(
        files[f"{file}.csv"],
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{file}.csv"'},
    )


@router.post("/master-data/import", responses=CHANGE)
async def import_master(
    request: Request,
    body: Annotated[
        dict[str, str],
        Body(
            description="file name -> its CSV text: materials.csv (required), bom_lines.csv, "
            "routings.csv, locations.csv. What they name is added or replaced, all or nothing; "
            "a refusal lists every problem with its file, row (the header is row 1) and column"
        ),
    ],
    who: Planner,
    platform: PlatformDep,
) -> Mapping[str, Any]:
    """Import master data files."""
    await enterprise_only(request, platform, who)
    if sum(len(v) for v in body.values()) > MAX_DOCUMENT_BYTES:
        raise HTTPException(413, "the files are larger than 16 MiB together: import in parts")
    args = {"files": body, "known_paths": _known_paths(platform)}
    return await change(
        request, platform, "master_import", args, "master-data", {"files": list(body)}
    )


# -- B2MML --------------------------------------------------------------------------------------


async def _readable_orders(platform: Platform, who: Principal) -> list[str]:
    """Production's work orders on lines the caller reads (values:read), as production's own
    routes show them: another tenant's or scope's orders stay out of the document."""
    reply = await ask_target(platform, "orders", {"limit": 5000}, target=PRODUCTION_TARGET,
                             who="the production engine")  # fmt: skip
    orders = [o["id"] for o in reply["orders"] if who.sees(Permission.VALUES_READ, o["line"])]
    if not orders:
        raise HTTPException(404, "no work orders on lines you may read")
    return orders


async def _may_plan_every_line(platform: Platform, who: Principal, args: dict[str, Any]) -> None:
    """A schedule's orders are created only on lines where the caller plans production, as
    with POST /orders: one line outside its tenant or scopes and nothing is created (404, the
    same answer as for a line that does not exist)."""
    reply = await ask(platform, "b2mml_import", {**args, "dry_run": True},
                      timeout_s=B2MML_TIMEOUT_S)  # fmt: skip
    for order in reply["orders"]:
        line = order["line"]
        if not (
            who.sees(Permission.VALUES_READ, line) and who.can(Permission.PRODUCTION_PLAN, line)
        ):
            raise HTTPException(404, f"no line {line!r} for you (order {order['id']!r})")


def _export_route(document: str) -> None:
    """GET /b2mml/<document>: one literal path per document (with its POST beside it), so a
    path's methods are the ones its document says."""

    async def export_document(
        request: Request, who: Reader, platform: PlatformDep, material: str | None = None
    ) -> Response:
        await enterprise_only(request, platform, who)
        args: dict[str, Any] = {"document": document, "material": material}
        if document in _OF_ORDERS:
            args["orders"] = await _readable_orders(platform, who)
        reply = await ask(platform, "b2mml_export", args, timeout_s=B2MML_TIMEOUT_S)
        return Response(reply["xml"], media_type=XML)

    export_document.__name__ = f"export_{document.replace('-', '_')}"
    export_document.__doc__ = (
        f"B2MML {document.replace('-', ' ')} that validate against MESA's schemas. "
        + _EXPORTS[document]
    )
    router.add_api_route(
        f"/b2mml/{document}",
        export_document,
        methods=["GET"],
        responses=READ | PARTNER_DENIED | _XML_RESPONSE,
        response_class=Response,
    )


_EXPORTS = {
    "material-definitions": "Every material, its bill of materials as the assembly.",
    "material-lots": "Lots (`material` limits them) with the parts they were split into as "
    "sublots.",
    "operations-schedule": "Production's work orders as operations requests.",
    "operations-performance": "What production's orders consumed and produced, lot by lot.",
}


def _import_route(document: str, guard: Any) -> None:
    """POST /b2mml/<document>: lots and performance book stock (valuechain:enter), definitions
    and schedules are planning's (valuechain:plan)."""

    async def import_document(request: Request, who: Principal, platform: PlatformDep) -> Any:
        await enterprise_only(request, platform, who)
        data = await request.body()
        if len(data) > MAX_DOCUMENT_BYTES:
            raise HTTPException(413, "the document is larger than 16 MiB")
        try:
            xml = data.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPException(400, "a B2MML document must be UTF-8") from None
        args = {"document": document, "xml": xml, "user": who.name}
        if document == "operations-schedule":
            await _may_plan_every_line(platform, who, args)
        return await change(
            request, platform, "b2mml_import", args, document, timeout_s=B2MML_TIMEOUT_S
        )

    # The guard differs per document: set as an object (the module's annotations are text that
    # FastAPI resolves in the module's namespace, where this function's local is not).
    import_document.__annotations__["who"] = guard
    import_document.__name__ = f"import_{document.replace('-', '_')}"
    import_document.__doc__ = (
        f"Import a B2MML {document.replace('-', ' ')} document, validated against the schemas "
        "first (400 names the element and the complaint). " + _IMPORTS[document]
    )
    router.add_api_route(
        f"/b2mml/{document}",
        import_document,
        methods=["POST"],
        responses=CHANGE,
        openapi_extra={
            "requestBody": {"required": True, "content": {XML: {"schema": {"type": "string"}}}}
        },
    )


_IMPORTS = {
    "material-definitions": "Materials and bills of materials are added or replaced, checked "
    "as a whole.",
    "material-lots": "Each lot is received (one that exists is refused, and nothing booked).",
    "operations-schedule": "Each order is created in production's execution.",
    "operations-performance": "Its consumption and production are booked; importing it again "
    "books nothing twice.",
}
for _document in _EXPORTS:
    _export_route(_document)
for _document, _guard in (
    ("material-definitions", Planner),
    ("operations-schedule", Planner),
    ("material-lots", Enterer),
    ("operations-performance", Enterer),
):
    _import_route(_document, _guard)
