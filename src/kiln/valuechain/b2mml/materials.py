"""Material definitions (`kiln.valuechain.master`) and material lots and sublots
(`kiln.valuechain.lots`) as B2MML.

**Material definitions** go out as `SyncMaterialDefinition`: Kiln owns its master data and a
partner keeps a copy, which is what ISA-95 Part 5's Sync verb means. The code is the
definition's `ID`, the name its `Description`. ISA-95's material definition has no element for
a unit, a precision, lead times, lot sizes or safety stock, so each is a
`MaterialDefinitionProperty` (`PROPERTY_*` below; quantities carry the unit as
`UnitOfMeasure`, lead times are durations in days).

The bill of materials is the definition's **assembly**: ISA-95 (Part 2, material definition)
models "what this material is made of" as the assembly of other material definitions, with
`AssemblyType` Physical and `AssemblyRelationship` Permanent for a component built in. Each
component is an `AssemblyDefinition` naming the component by `ID`, and its quantity per batch
and scrap percentage are properties of that assembly member, which is where ISA-95 puts what
holds for a member in this assembly only (the component's own definition is sent as its own
`MaterialDefinition`). The alternative, an `OperationsMaterialBill`, belongs to an operations
definition (a routing's segments), which Kiln does not export; a definition's assembly is read
by any B2MML consumer without one. The batch size the bill is written for is the parent's
`bomOutputQuantity` property.

**Lots** go out as `SyncMaterialLot`. A lot's state is its `Status` (Kiln's word: available,
held, ...) with the ISA-95 `Disposition` beside it for other systems (available: UnRestricted,
held: Restricted, consumed, shipped and scrapped: Closed); its location is its
`StorageLocation`; supplier, purchase and production orders, customer and shipment, hold reason
and the created and updated times are `MaterialLotProperty` values. The parts a lot was split
into are its `MaterialSubLot`s (a part split again: `MaterialSubLotChild`), each a whole Kiln
lot of the parent's material.

On import, a property Kiln does not know is ignored (partners add their own), a missing one
takes the model's default, and what the model refuses (a lot size that breaks its rules, a
cycle in the bills) is a B2mmlError naming the element.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from kiln.valuechain.b2mml.document import (
    B2mmlError,
    child,
    children,
    data_area,
    envelope,
    format_days,
    format_decimal,
    format_time,
    parse,
    quantity,
    read_days,
    read_decimal,
    read_int,
    read_time,
    reason,
    serialise,
    sub,
    text,
    value,
    values,
    where,
)
from kiln.valuechain.lots import EdgeKind, GenealogyEdge, Lot, LotState
from kiln.valuechain.master import Bom, BomLine, MasterData, Material

# The verbs Kiln writes, and the ones it reads: a partner may Show, Sync or Process the same
# nouns, or send a Change of them.
DEFINITION_VERB = "Sync"
LOT_VERB = "Sync"
READ_VERBS = ("Sync", "Show", "Process", "Change")

# Material definition properties: (Material field, property ID).
PROPERTY_KIND = "kind"
PROPERTY_UNIT = "unit"
PROPERTY_DECIMALS = "decimals"
PROPERTY_SUPPLIER = "supplier"
PROPERTY_OUTPUT = "bomOutputQuantity"
LEAD_TIMES = {
    "purchasing_lead_days": "purchasingLeadTime",
    "manufacturing_lead_days": "manufacturingLeadTime",
    "safety_lead_days": "safetyLeadTime",
    "supplier_lead_days": "supplierLeadTime",
}
QUANTITIES = {
    "safety_stock": "safetyStock",
    "lot_min": "lotSizeMinimum",
    "lot_max": "lotSizeMaximum",
    "lot_multiple": "lotSizeMultiple",
}
# Assembly member properties.
PROPERTY_QUANTITY = "quantity"
PROPERTY_SCRAP = "scrapPercent"

# Lot properties: (Lot field, property ID), all text.
LOT_TEXTS = {
    "supplier": "supplier",
    "supplier_lot": "supplierLot",
    "purchase_order": "purchaseOrder",
    "order_id": "productionOrder",
    "customer": "customer",
    "shipment_id": "shipmentID",
    "sales_order": "salesOrder",
    "hold_reason": "holdReason",
}
LOT_TIMES = {"created_us": "createdTime", "updated_us": "updatedTime"}

DISPOSITION = {
    LotState.AVAILABLE: "UnRestricted",
    LotState.HELD: "Restricted",
    LotState.CONSUMED: "Closed",
    LotState.SHIPPED: "Closed",
    LotState.SCRAPPED: "Closed",
}
# A lot from another system has a Disposition and maybe no Kiln Status.
STATE_OF_DISPOSITION = {
    "UnRestricted": LotState.AVAILABLE,
    "Restricted": LotState.HELD,
    "Closed": LotState.CONSUMED,
}

# A lot's location is free text (`Lot.location`), which ISA-95 calls a location Description.
LOCATION_TYPE = "Description"


# -- material definitions --------------------------------------------------------------------


def export_material_definitions(
    master: MasterData, *, created_us: int, sender: str | None = None
) -> bytes:
    """`SyncMaterialDefinition` of every material in `master`, each with its bill of materials
    as its assembly; UTF-8 bytes that validate against the B2MML schemas."""
    root, data = envelope(
        DEFINITION_VERB, "MaterialDefinition", created_us=created_us, sender=sender
    )
    if not master.materials:
        raise ValueError("a B2MML material definition document needs at least one material")
    boms = master.bom_of()
    units = {m.code: m.unit for m in master.materials}
    for material in master.materials:
        _definition(data, material, boms.get(material.code), units)
    return serialise(root)


def _definition(parent: ET.Element, m: Material, bom: Bom | None, units: Mapping[str, str]) -> None:
    el = sub(parent, "MaterialDefinition")
    sub(el, "ID", m.code)
    if m.name:
        sub(el, "Description", m.name)
    prop = "MaterialDefinitionProperty"
    value(el, prop, PROPERTY_KIND, m.kind.value, "Code")
    value(el, prop, PROPERTY_UNIT, m.unit, "Code")
    value(el, prop, PROPERTY_DECIMALS, str(m.decimals), "integer")
    for name, ident in LEAD_TIMES.items():
        value(el, prop, ident, format_days(getattr(m, name)), "duration")
    if m.supplier is not None:
        value(el, prop, PROPERTY_SUPPLIER, m.supplier, "Identifier")
    for name, ident in QUANTITIES.items():
        number = getattr(m, name)
        if number is not None:
            value(el, prop, ident, format_decimal(number), "decimal", m.unit)
    if bom is None:
        return
    value(el, prop, PROPERTY_OUTPUT, format_decimal(bom.output_quantity), "decimal", m.unit)
    for line in bom.lines:
        member = sub(el, "AssemblyDefinition")
        sub(member, "ID", line.component)
        unit = units.get(line.component)
        value(member, prop, PROPERTY_QUANTITY, format_decimal(line.quantity), "decimal", unit)
        value(member, prop, PROPERTY_SCRAP, format_decimal(line.scrap_percent), "decimal", "%")
    sub(el, "AssemblyType", "Physical")
    sub(el, "AssemblyRelationship", "Permanent")


def import_material_definitions(data: bytes | str) -> MasterData:
    """The materials and bills of materials of a B2MML MaterialDefinition document (any of
    `READ_VERBS`, or a bare `MaterialDefinition`), validated against the schemas and then
    checked as `MasterData`; B2mmlError naming what is wrong otherwise."""
    root = parse(data, [v + "MaterialDefinition" for v in READ_VERBS] + ["MaterialDefinition"])
    path = "/" + root.tag.rsplit("}", 1)[-1]
    elements = (
        [root]
        if root.tag.endswith("}MaterialDefinition")
        else list(children(data_area(root), "MaterialDefinition"))
    )
    materials: list[Material] = []
    boms: list[Bom] = []
    for i, el in enumerate(elements, 1):
        here = f"{path}/DataArea/MaterialDefinition[{i}]" if el is not root else path
        material, bom = _read_definition(el, here)
        materials.append(material)
        if bom is not None:
            boms.append(bom)
    try:
        return MasterData(materials=tuple(materials), boms=tuple(boms))
    except ValidationError as e:
        raise B2mmlError(f"{path}: {reason(e)}") from None


def _read_definition(el: ET.Element, here: str) -> tuple[Material, Bom | None]:
    code = text(el, "ID") or ""
    props = values(el, "MaterialDefinitionProperty")
    fields: dict[str, object] = {"code": code}
    name = text(el, "Description")
    if name:
        fields["name"] = name
    at = f"{here}/MaterialDefinitionProperty"
    if PROPERTY_KIND in props:
        fields["kind"] = props[PROPERTY_KIND][0]
    if PROPERTY_UNIT in props:
        fields["unit"] = props[PROPERTY_UNIT][0]
    if PROPERTY_DECIMALS in props:
        fields["decimals"] = read_int(props[PROPERTY_DECIMALS][0], f"{at}[{PROPERTY_DECIMALS}]")
    if PROPERTY_SUPPLIER in props:
        fields["supplier"] = props[PROPERTY_SUPPLIER][0]
    for name, ident in LEAD_TIMES.items():
        if ident in props:
            fields[name] = read_days(props[ident][0], f"{at}[{ident}]")
    for name, ident in QUANTITIES.items():
        if ident in props:
            fields[name] = read_decimal(props[ident][0], f"{at}[{ident}]")
    try:
        material = Material.model_validate(fields)
    except ValidationError as e:
        raise B2mmlError(f"{here}: {reason(e)}") from None
    members = list(children(el, "AssemblyDefinition"))
    if not members:
        return material, None
    lines: list[BomLine] = []
    for i, member in enumerate(members, 1):
        member_at = f"{here}/AssemblyDefinition[{i}]"
        mprops = values(member, "MaterialDefinitionProperty")
        if PROPERTY_QUANTITY not in mprops:
            raise B2mmlError(
                f"{member_at}: a component needs its {PROPERTY_QUANTITY} property "
                "(how much one batch of the parent takes)"
            )
        line: dict[str, object] = {
            "component": text(member, "ID") or "",
            "quantity": read_decimal(mprops[PROPERTY_QUANTITY][0], f"{member_at}/quantity"),
        }
        if PROPERTY_SCRAP in mprops:
            line["scrap_percent"] = read_decimal(mprops[PROPERTY_SCRAP][0], f"{member_at}/scrap")
        try:
            lines.append(BomLine.model_validate(line))
        except ValidationError as e:
            raise B2mmlError(f"{member_at}: {reason(e)}") from None
    bom: dict[str, object] = {"parent": code, "lines": tuple(lines)}
    if PROPERTY_OUTPUT in props:
        bom["output_quantity"] = read_decimal(props[PROPERTY_OUTPUT][0], f"{at}[{PROPERTY_OUTPUT}]")
    try:
        return material, Bom.model_validate(bom)
    except ValidationError as e:
        raise B2mmlError(f"{here}: {reason(e)}") from None


# -- lots and sublots ------------------------------------------------------------------------


@dataclass(frozen=True)
class MaterialLots:
    """Lots as B2MML carries them: the lots, and the parts each was split into (by lot id;
    a part's own parts are in the same mapping)."""

    lots: tuple[Lot, ...]
    parts: Mapping[str, tuple[Lot, ...]] = field(default_factory=dict)


def split_parts(
    lots: Mapping[str, Lot], edges: Iterable[GenealogyEdge]
) -> dict[str, tuple[Lot, ...]]:
    """The parts each lot was split into, from a ledger's lots and genealogy edges, in the
    order the edges were recorded."""
    parts: dict[str, list[Lot]] = {}
    for edge in edges:
        if edge.kind is EdgeKind.SPLIT_INTO:
            parts.setdefault(edge.source, []).append(lots[edge.target])
    return {source: tuple(found) for source, found in parts.items()}


def export_material_lots(
    lots: Iterable[Lot],
    *,
    created_us: int,
    parts: Mapping[str, Sequence[Lot]] | None = None,
    sender: str | None = None,
) -> bytes:
    """`SyncMaterialLot` of `lots`, each with the parts it was split into (`parts`, by lot id:
    see `split_parts`) as its sublots; UTF-8 bytes that validate against the schemas."""
    root, data = envelope(LOT_VERB, "MaterialLot", created_us=created_us, sender=sender)
    parts = parts or {}
    count = 0
    for lot in lots:
        count += 1
        el = sub(data, "MaterialLot")
        sub(el, "ID", lot.id)
        sub(el, "MaterialDefinitionID", lot.material)
        _lot_body(el, lot, parts, "MaterialSubLot", set())
    if count == 0:
        raise ValueError("a B2MML material lot document needs at least one lot")
    return serialise(root)


def _lot_body(
    el: ET.Element,
    lot: Lot,
    parts: Mapping[str, Sequence[Lot]],
    part_tag: str,
    seen: set[str],
) -> None:
    # MaterialLot and MaterialSubLot share this order after their ID (and MaterialDefinitionID):
    # Status, Disposition, properties, [a lot's sublots], StorageLocation, Quantity,
    # [a sublot's children].
    if lot.id in seen:
        raise ValueError(f"lot {lot.id} is its own part")
    seen = seen | {lot.id}
    sub(el, "Status", lot.state.value)
    sub(el, "Disposition", DISPOSITION[lot.state])
    for name, ident in LOT_TEXTS.items():
        v = getattr(lot, name)
        if v is not None:
            value(el, "MaterialLotProperty", ident, v, "string")
    for name, ident in LOT_TIMES.items():
        value(el, "MaterialLotProperty", ident, format_time(getattr(lot, name)), "dateTime")

    def write_parts() -> None:
        for part in parts.get(lot.id, ()):
            if part.material != lot.material:
                raise ValueError(f"part {part.id} of lot {lot.id} is of another material")
            part_el = sub(el, part_tag)
            sub(part_el, "ID", part.id)
            _lot_body(part_el, part, parts, "MaterialSubLotChild", seen)

    if part_tag == "MaterialSubLot":
        write_parts()
    location = sub(el, "StorageLocation")
    sub(location, "Location", lot.location)
    sub(location, "LocationType", LOCATION_TYPE)
    quantity(el, format_decimal(lot.quantity), "decimal", lot.unit)
    if part_tag == "MaterialSubLotChild":
        write_parts()


def import_material_lots(data: bytes | str, *, default_time_us: int | None = None) -> MaterialLots:
    """The lots and their parts of a B2MML MaterialLot document (any of `READ_VERBS`, or a
    bare `MaterialLot`), validated against the schemas. A lot without Kiln's created and
    updated times takes `default_time_us` (the time of receipt, say), else it is refused."""
    root = parse(data, [v + "MaterialLot" for v in READ_VERBS] + ["MaterialLot"])
    path = "/" + root.tag.rsplit("}", 1)[-1]
    elements = (
        [root]
        if root.tag.endswith("}MaterialLot")
        else list(children(data_area(root), "MaterialLot"))
    )
    lots: list[Lot] = []
    parts: dict[str, tuple[Lot, ...]] = {}
    for i, el in enumerate(elements, 1):
        here = f"{path}/DataArea/MaterialLot[{i}]" if el is not root else path
        material = text(el, "MaterialDefinitionID")
        if not material:
            raise B2mmlError(f"{here}: a lot needs its MaterialDefinitionID")
        lots.append(_read_lot(el, here, material, "MaterialSubLot", parts, default_time_us))
    return MaterialLots(lots=tuple(lots), parts=parts)


def _read_lot(
    el: ET.Element,
    here: str,
    material: str,
    part_tag: str,
    parts: dict[str, tuple[Lot, ...]],
    default_time_us: int | None,
) -> Lot:
    lot_id = text(el, "ID") or ""
    fields: dict[str, object] = {"id": lot_id, "material": material}
    status = text(el, "Status")
    disposition = text(el, "Disposition")
    if status in {s.value for s in LotState}:
        fields["state"] = status
    elif disposition in STATE_OF_DISPOSITION:
        fields["state"] = STATE_OF_DISPOSITION[disposition]
    props = values(el, "MaterialLotProperty")
    for name, ident in LOT_TEXTS.items():
        if ident in props:
            fields[name] = props[ident][0]
    for name, ident in LOT_TIMES.items():
        if ident in props:
            fields[name] = read_time(props[ident][0], f"{here}/MaterialLotProperty[{ident}]")
        elif default_time_us is not None:
            fields[name] = default_time_us
        else:
            raise B2mmlError(
                f"{here}: the lot has no {ident} property and no default time was given"
            )
    location = child(el, "StorageLocation")
    if location is None:
        raise B2mmlError(f"{here}: a lot needs its StorageLocation")
    fields["location"] = text(location, "Location") or ""
    amount = child(el, "Quantity")
    if amount is None:
        raise B2mmlError(f"{here}: a lot needs its Quantity")
    fields["quantity"] = read_decimal(text(amount, "QuantityString") or "", f"{here}/Quantity")
    unit = text(amount, "UnitOfMeasure")
    if not unit:
        raise B2mmlError(f"{here}/Quantity: a lot's quantity needs its UnitOfMeasure")
    fields["unit"] = unit
    try:
        lot = Lot.model_validate(fields)
    except ValidationError as e:
        raise B2mmlError(f"{here}: {reason(e)}") from None
    found = [
        _read_lot(
            p, f"{where(here, p)}[{i}]", material, "MaterialSubLotChild", parts, default_time_us
        )
        for i, p in enumerate(children(el, part_tag), 1)
    ]
    if found:
        parts[lot.id] = tuple(found)
    return lot
