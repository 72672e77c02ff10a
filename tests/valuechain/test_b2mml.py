"""B2MML import and export: every export validates against the vendored MESA schemas; export
then import gives the same objects back (exact decimals, unicode, optional fields absent);
hand-written minimal documents import; unsafe or invalid documents are refused with a
B2mmlError that names the element; the vendored schemas are MESA's, with the acknowledgement."""

from __future__ import annotations

import re
import tomllib
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.production.orders import OrderState, WorkOrder
from kiln.valuechain.b2mml import (
    B2mmlError,
    MaterialLots,
    MaterialMovement,
    MaterialUse,
    OrderPerformance,
    export_material_definitions,
    export_material_lots,
    export_operations_performance,
    export_operations_schedule,
    import_material_definitions,
    import_material_lots,
    import_operations_performance,
    import_operations_schedule,
    order_performance,
    split_parts,
)
from kiln.valuechain.b2mml.document import (
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    NS,
    SCHEMA_DIR,
    format_time,
    read_time,
    schema,
)
from kiln.valuechain.lots import Consume, Ledger, Lot, LotState, Produce, Receive, Split, SplitPart
from kiln.valuechain.master import Bom, BomLine, MasterData, Material, MaterialKind

D = Decimal
T0 = 1_767_225_600_123_456  # 2026-01-01T00:00:00.123456Z
ROOT = Path(__file__).resolve().parents[2]
ACK = (
    "The Business To Manufacturing Markup Language (B2MML) is used courtesy of MESA International."
)
# What the BatchML files ask for instead (AllSchemas.xsd includes them).
BATCHML_ACKS = (
    "The Batch Markup Language (BatchML) is used courtesy of MESA International.",
    "The Batch Markup Language (BatchML) is used courtesy of the World Batch Forum.",
)


def valid(document: bytes) -> bool:
    """The document validates against the vendored schemas, checked apart from Kiln's code."""
    root = ET.fromstring(document)
    return bool(schema().is_valid(root))


def master() -> MasterData:
    return MasterData(
        materials=(
            Material(
                code="BIKE",
                name="Vélo de ville — 自転車 ✓",
                kind=MaterialKind.FINISHED,
                manufacturing_lead_days=3,
                safety_lead_days=1,
                lot_min=D(10),
                lot_max=D(200),
                lot_multiple=D(5),
            ),
            Material(
                code="FRAME",
                name="Frame",
                kind=MaterialKind.MADE,
                manufacturing_lead_days=2,
                safety_stock=D(4),
            ),
            Material(
                code="STEEL",
                name="Stahl, warmgewalzt",
                unit="kg",
                decimals=6,
                kind=MaterialKind.RAW,
                purchasing_lead_days=2,
                supplier="ACME",
                supplier_lead_days=7,
                safety_stock=D("12.345678"),
                lot_min=D("0.000001"),
                lot_multiple=D("0.25"),
            ),
            # Every optional field absent.
            Material(code="PAINT", kind=MaterialKind.PURCHASED),
        ),
        boms=(
            Bom(
                parent="BIKE",
                lines=(
                    BomLine(component="FRAME", quantity=D(1)),
                    BomLine(component="PAINT", quantity=D(2), scrap_percent=D("0.5")),
                ),
            ),
            Bom(
                parent="FRAME",
                output_quantity=D(4),
                lines=(
                    BomLine(component="STEEL", quantity=D("3.141592"), scrap_percent=D("7.25")),
                ),
            ),
        ),
    )


def lot(lot_id: str, **fields: object) -> Lot:
    base: dict[str, object] = {
        "id": lot_id,
        "material": "STEEL",
        "quantity": D("1234.567891234"),
        "unit": "kg",
        "location": "Lager Süd/Regal 7",
        "created_us": T0,
        "updated_us": T0 + 1,
    }
    return Lot.model_validate(base | fields)


def work_orders() -> list[WorkOrder]:
    return [
        WorkOrder(
            id="WO-1",
            product="BIKE",
            line="plant/assembly/line-1",
            quantity=120.0,
            state=OrderState.RELEASED,
            due_us=T0 + 86_400_000_000,
            created_us=T0,
            updated_us=T0 + 5,
            version=2,
            comment="Eilauftrag: für Kunde «Nord»\r\nZeile 2",
        ),
        # Optional fields absent; a quantity that is no short decimal.
        WorkOrder(
            id="WO-2",
            product="FRAME",
            line="plant/frames",
            quantity=0.1 + 0.2,
            created_us=T0,
            updated_us=T0,
        ),
    ] + [
        WorkOrder(
            id=f"WO-{state.value}",
            product="BIKE",
            line="plant/assembly/line-1",
            quantity=1.5,
            state=state,
            created_us=T0,
            updated_us=T0,
        )
        for state in OrderState
    ]


def ledger() -> Ledger:
    book = Ledger()
    book.apply_all(
        [
            Receive(
                id="t1",
                time_us=T0,
                lot_id="S1",
                material="STEEL",
                quantity=D("100.123456789"),
                unit="kg",
                location="store",
                supplier="ACME",
                purchase_order="PO-7",
            ),
            Receive(
                id="t2",
                time_us=T0,
                lot_id="S2",
                material="STEEL",
                quantity=D(50),
                unit="kg",
                location="store",
                supplier="ACME",
            ),
            Consume(
                id="t3", time_us=T0 + 1, lot_id="S1", quantity=D("0.000000001"), order_id="WO-2"
            ),
            Consume(id="t4", time_us=T0 + 2, lot_id="S2", quantity=D("12.5"), order_id="WO-2"),
            Consume(id="t5", time_us=T0 + 3, lot_id="S1", quantity=D("40"), order_id="WO-2"),
            Produce(
                id="t6",
                time_us=T0 + 4,
                lot_id="F1",
                material="FRAME",
                quantity=D(3),
                unit="pcs",
                location="line",
                order_id="WO-2",
            ),
            Split(
                id="t7",
                time_us=T0 + 5,
                lot_id="S2",
                parts=(
                    SplitPart(lot_id="S2a", quantity=D("30")),
                    SplitPart(lot_id="S2b", quantity=D("7.5")),
                ),
            ),
            Split(
                id="t8",
                time_us=T0 + 6,
                lot_id="S2a",
                parts=(
                    SplitPart(lot_id="S2a1", quantity=D(10)),
                    SplitPart(lot_id="S2a2", quantity=D(20), location="dock"),
                ),
            ),
        ]
    )
    return book


# -- exports validate and round-trip -----------------------------------------------------------


def test_material_definitions_round_trip() -> None:
    data = master()
    document = export_material_definitions(data, created_us=T0, sender="kiln-plant-1")
    assert valid(document)
    assert document.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert b"<SyncMaterialDefinition" in document
    # Decimals are written digit for digit, never through a float or in exponent form.
    assert b"<ValueString>3.141592</ValueString>" in document
    assert b"<ValueString>0.000001</ValueString>" in document
    back = import_material_definitions(document)
    assert back == data
    assert back.material("STEEL").safety_stock.as_tuple() == D("12.345678").as_tuple()


def test_the_bill_of_materials_is_the_definitions_assembly() -> None:
    root = ET.fromstring(export_material_definitions(master(), created_us=T0))
    ns = {"b": NS}
    frame = next(
        d
        for d in root.iterfind(".//b:MaterialDefinition", ns)
        if d.findtext("b:ID", namespaces=ns) == "FRAME"
    )
    members = frame.findall("b:AssemblyDefinition", ns)
    assert [m.findtext("b:ID", namespaces=ns) for m in members] == ["STEEL"]
    props = {
        p.findtext("b:ID", namespaces=ns): (
            p.findtext("b:Value/b:ValueString", namespaces=ns),
            p.findtext("b:Value/b:UnitOfMeasure", namespaces=ns),
        )
        for p in members[0].findall("b:MaterialDefinitionProperty", ns)
    }
    assert props == {"quantity": ("3.141592", "kg"), "scrapPercent": ("7.25", "%")}
    assert frame.findtext("b:AssemblyType", namespaces=ns) == "Physical"


def test_lots_with_sublots_round_trip() -> None:
    book = ledger()
    lots = book.lots
    parts = split_parts(lots, book.edges)
    assert [p.id for p in parts["S2"]] == ["S2a", "S2b"]
    assert [p.id for p in parts["S2a"]] == ["S2a1", "S2a2"]
    top = [lots["S1"], lots["S2"], lots["F1"]]
    document = export_material_lots(top, created_us=T0, parts=parts)
    assert valid(document)
    back = import_material_lots(document)
    assert back == MaterialLots(lots=tuple(top), parts=parts)
    assert back.lots[0].quantity == D("60.123456788")
    assert back.parts["S2a"][1].location == "dock"


def test_lot_fields_round_trip_and_optional_ones_stay_absent() -> None:
    full = lot(
        "L-1",
        state=LotState.SHIPPED,
        supplier="ACME",
        supplier_lot="acme-42",
        purchase_order="PO-1",
        order_id="WO-9",
        customer="Nordrad GmbH",
        shipment_id="SH-3",
        sales_order="SO-5",
    )
    held = lot("L-2", state=LotState.HELD, hold_reason="Prüfung: Risse ≥ 2 mm", quantity=D("0"))
    bare = lot("L-3")
    document = export_material_lots([full, held, bare], created_us=T0)
    assert valid(document)
    assert import_material_lots(document) == MaterialLots(lots=(full, held, bare))
    assert b"<Disposition>Closed</Disposition>" in document
    assert b"<Disposition>Restricted</Disposition>" in document
    assert document.count(b"<MaterialLotProperty>") == 7 + 2 + 1 + 2 + 2  # texts and times


# Any quantity a lot may hold (up to 9 places, below 10**15), any text XML 1.0 can carry.
quantities = st.decimals(
    min_value=0, max_value=D(10) ** 15 - 1, places=9, allow_nan=False, allow_infinity=False
)
xml_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Cn")) | st.sampled_from("\t\n\r "), min_size=1
)


@settings(max_examples=60, deadline=None)
@given(quantity=quantities, location=xml_text, reason=xml_text, created=st.integers(0, 2**52))
def test_any_lot_round_trips_exactly(
    quantity: Decimal, location: str, reason: str, created: int
) -> None:
    one = lot(
        "L-1",
        quantity=quantity,
        location=location[:512],
        state=LotState.HELD,
        hold_reason=reason,
        created_us=created,
        updated_us=created,
    )
    back = import_material_lots(export_material_lots([one], created_us=T0))
    assert back.lots == (one,)
    assert back.lots[0].quantity.as_tuple() == quantity.as_tuple()


def test_operations_schedule_round_trips_to_the_same_work_orders() -> None:
    orders = work_orders()
    document = export_operations_schedule(orders, schedule_id="2026-W01", created_us=T0)
    assert valid(document)
    assert b"<ProcessOperationsSchedule" in document
    back = import_operations_schedule(document)
    assert back.id == "2026-W01"
    assert [WorkOrder.model_validate(o.model_dump()) for o in back.orders] == orders
    assert back.orders[1].quantity == 0.1 + 0.2


def test_operations_performance_from_a_ledger_round_trips() -> None:
    book = ledger()
    performance = order_performance(book, "WO-2", state="completed", start_us=T0, end_us=T0 + 4)
    assert performance.movements == (
        MaterialMovement(
            lot_id="S1",
            material="STEEL",
            quantity=D("40.000000001"),
            unit="kg",
            use=MaterialUse.CONSUMED,
        ),
        MaterialMovement(
            lot_id="S2", material="STEEL", quantity=D("12.5"), unit="kg", use=MaterialUse.CONSUMED
        ),
        MaterialMovement(
            lot_id="F1", material="FRAME", quantity=D(3), unit="pcs", use=MaterialUse.PRODUCED
        ),
    )
    idle = OrderPerformance(order_id="WO-3")
    document = export_operations_performance(
        [performance, idle], performance_id="perf-1", created_us=T0, schedule_id="2026-W01"
    )
    assert valid(document)
    back = import_operations_performance(document)
    assert (back.id, back.schedule_id, back.orders) == ("perf-1", "2026-W01", (performance, idle))


def test_an_empty_document_is_refused_on_export() -> None:
    # Every B2MML data area carries at least one noun.
    with pytest.raises(ValueError, match="at least one material"):
        export_material_definitions(MasterData(materials=()), created_us=T0)
    with pytest.raises(ValueError, match="at least one lot"):
        export_material_lots([], created_us=T0)
    with pytest.raises(ValueError, match="at least one order"):
        export_operations_schedule([], schedule_id="s", created_us=T0)
    with pytest.raises(ValueError, match="at least one order"):
        export_operations_performance([], performance_id="p", created_us=T0)


def test_text_xml_cannot_carry_is_refused_on_export() -> None:
    with pytest.raises(ValueError, match="U\\+0001, which XML cannot carry"):
        export_material_lots([lot("L-1", hold_reason="bell\x01")], created_us=T0)


def test_times_are_utc_with_microseconds_and_zones_are_converted() -> None:
    assert format_time(T0) == "2026-01-01T00:00:00.123456Z"
    assert read_time(format_time(T0), "t") == T0
    assert read_time(format_time(-1), "t") == -1
    assert read_time("2026-01-01T01:00:00.123456+01:00", "t") == T0
    assert read_time("2026-01-01T00:00:00.1234560Z", "t") == T0
    with pytest.raises(B2mmlError, match="no time zone"):
        read_time("2026-01-01T00:00:00", "t")
    with pytest.raises(B2mmlError, match="finer than a microsecond"):
        read_time("2026-01-01T00:00:00.1234567Z", "t")


# -- hand-written documents ------------------------------------------------------------------

MINIMAL_DEFINITION = """<?xml version="1.0" encoding="UTF-8"?>
<ShowMaterialDefinition xmlns="http://www.mesa.org/xml/B2MML" releaseID="0701">
  <ApplicationArea><CreationDateTime>2026-01-01T00:00:00Z</CreationDateTime></ApplicationArea>
  <DataArea>
    <Show/>
    <MaterialDefinition>
      <ID>BOLT-M8</ID>
      <MaterialDefinitionProperty>
        <ID>kind</ID><Value><ValueString>purchased</ValueString></Value>
      </MaterialDefinitionProperty>
      <MaterialDefinitionProperty>
        <ID>partnerOnly</ID><Value><ValueString>ignored</ValueString></Value>
      </MaterialDefinitionProperty>
    </MaterialDefinition>
  </DataArea>
</ShowMaterialDefinition>
"""

MINIMAL_LOT = """<MaterialLot xmlns="http://www.mesa.org/xml/B2MML">
  <ID>acme-lot-1</ID>
  <MaterialDefinitionID>BOLT-M8</MaterialDefinitionID>
  <Disposition>Restricted</Disposition>
  <StorageLocation><Location>dock 2</Location><LocationType>Description</LocationType></StorageLocation>
  <Quantity><QuantityString>500</QuantityString><UnitOfMeasure>pcs</UnitOfMeasure></Quantity>
</MaterialLot>
"""

MINIMAL_SCHEDULE = """<SyncOperationsSchedule xmlns="http://www.mesa.org/xml/B2MML" releaseID="1">
  <ApplicationArea><CreationDateTime>2026-01-01T00:00:00Z</CreationDateTime></ApplicationArea>
  <DataArea>
    <Sync/>
    <OperationsSchedule>
      <ID>erp-7</ID>
      <OperationsRequest>
        <ID>4711</ID>
        <SegmentRequirement>
          <ID>1</ID>
          <ProcessSegmentID>assemble</ProcessSegmentID>
          <OperationsDefinitionID>ROUTING-9</OperationsDefinitionID>
          <OperationsSegmentID>assemble</OperationsSegmentID>
          <SegmentParameter><ID>createdTime</ID><Value><ValueString>2026-01-01T00:00:00Z</ValueString></Value></SegmentParameter>
          <SegmentParameter><ID>updatedTime</ID><Value><ValueString>2026-01-01T00:00:00Z</ValueString></Value></SegmentParameter>
          <EquipmentRequirement><ID>e</ID><EquipmentID>plant/line-2</EquipmentID></EquipmentRequirement>
          <MaterialRequirement>
            <ID>m</ID><MaterialDefinitionID>BIKE</MaterialDefinitionID><MaterialUse>Produced</MaterialUse>
            <Quantity><QuantityString>25</QuantityString></Quantity>
          </MaterialRequirement>
        </SegmentRequirement>
      </OperationsRequest>
    </OperationsSchedule>
  </DataArea>
</SyncOperationsSchedule>
"""


def test_a_minimal_material_definition_imports() -> None:
    data = import_material_definitions(MINIMAL_DEFINITION)
    assert data == MasterData(materials=(Material(code="BOLT-M8", kind=MaterialKind.PURCHASED),))


def test_a_minimal_lot_imports_with_the_default_time() -> None:
    lots = import_material_lots(MINIMAL_LOT.encode(), default_time_us=T0)
    assert lots.lots == (
        Lot(
            id="acme-lot-1",
            material="BOLT-M8",
            quantity=D(500),
            unit="pcs",
            location="dock 2",
            state=LotState.HELD,
            created_us=T0,
            updated_us=T0,
        ),
    )
    with pytest.raises(B2mmlError, match="no createdTime property and no default time"):
        import_material_lots(MINIMAL_LOT)


def test_a_minimal_schedule_imports() -> None:
    schedule = import_operations_schedule(MINIMAL_SCHEDULE)
    assert [WorkOrder.model_validate(o.model_dump()) for o in schedule.orders] == [
        WorkOrder(
            id="4711",
            product="BIKE",
            line="plant/line-2",
            quantity=25.0,
            created_us=T0 - 123_456,
            updated_us=T0 - 123_456,
        )
    ]


# -- refusals --------------------------------------------------------------------------------


def refusal(document: bytes | str) -> str:
    with pytest.raises(B2mmlError) as caught:
        import_material_definitions(document)
    return str(caught.value)


def test_a_wrong_root_element_is_named() -> None:
    message = refusal(export_material_lots([lot("L-1")], created_us=T0))
    assert message.startswith("/SyncMaterialLot: the root element must be one of")


def test_a_wrong_element_inside_names_its_path_and_the_schemas_complaint() -> None:
    document = MINIMAL_DEFINITION.replace("<ID>BOLT-M8</ID>", "<Code>BOLT-M8</Code>")
    message = refusal(document)
    assert message.startswith("not valid B2MML: ")
    assert "/ShowMaterialDefinition/DataArea/MaterialDefinition" in message
    assert "Code" in message


def test_a_missing_required_element_is_refused() -> None:
    document = MINIMAL_DEFINITION.replace(
        "<ApplicationArea><CreationDateTime>2026-01-01T00:00:00Z</CreationDateTime></ApplicationArea>",
        "<ApplicationArea></ApplicationArea>",
    )
    message = refusal(document)
    assert "/ShowMaterialDefinition/ApplicationArea" in message
    assert "CreationDateTime" in message


def test_values_the_model_refuses_name_the_element() -> None:
    bad_kind = MINIMAL_DEFINITION.replace("purchased", "bought-somewhere")
    assert refusal(bad_kind).startswith(
        "/ShowMaterialDefinition/DataArea/MaterialDefinition[1]: kind"
    )
    bad_number = export_material_definitions(master(), created_us=T0).replace(
        b"<ValueString>3.141592</ValueString>", b"<ValueString>3,14</ValueString>"
    )
    message = refusal(bad_number)
    assert "AssemblyDefinition[1]/quantity: '3,14' is not a decimal number" in message
    cycle = export_material_definitions(master(), created_us=T0).replace(
        b"<ID>PAINT</ID>\n        <MaterialDefinitionProperty>\n          <ID>quantity",
        b"<ID>BIKE</ID>\n        <MaterialDefinitionProperty>\n          <ID>quantity",
    )
    assert "form a cycle: BIKE -> BIKE" in refusal(cycle)


def test_dtds_and_entities_are_refused_before_parsing() -> None:
    bomb = (
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n'
        "<ShowMaterialDefinition>&lol2;</ShowMaterialDefinition>"
    )
    assert "<!DOCTYPE declaration" in refusal(bomb)
    external = '<!ENTITY xxe SYSTEM "file:///etc/passwd">' + MINIMAL_DEFINITION
    assert "<!ENTITY declaration" in refusal(external)


def test_not_xml_other_encodings_and_oversize_documents_are_refused() -> None:
    assert refusal(b"ID,kind\nBOLT,purchased\n").startswith("not well-formed XML: ")
    assert refusal(b"").startswith("not well-formed XML: ")
    assert "not UTF-8" in refusal(MINIMAL_DEFINITION.encode("utf-16"))
    latin = MINIMAL_DEFINITION.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
    assert "declares encoding ISO-8859-1" in refusal(latin)
    big = MINIMAL_DEFINITION.replace("<Show/>", "<Show/>" + " " * MAX_DOCUMENT_BYTES)
    assert "is more than the" in refusal(big)


def test_deep_nesting_is_refused_before_validation() -> None:
    depth = MAX_DEPTH + 1
    nested = "<MaterialSubLotChild><ID>p</ID>" * depth + "</MaterialSubLotChild>" * depth
    document = MINIMAL_LOT.replace(
        "</MaterialLot>", f"<MaterialSubLot><ID>s</ID>{nested}</MaterialSubLot></MaterialLot>"
    )
    with pytest.raises(B2mmlError, match=f"nested deeper than {MAX_DEPTH} levels"):
        import_material_lots(document, default_time_us=T0)


def test_other_imports_refuse_with_the_element_path() -> None:
    with pytest.raises(B2mmlError, match=r"OperationsRequest\[1\]/RequestState: .*'Other'"):
        import_operations_schedule(
            MINIMAL_SCHEDULE.replace(
                "<SegmentRequirement>", "<RequestState>Other</RequestState><SegmentRequirement>"
            )
        )
    document = export_operations_performance(
        [
            OrderPerformance(
                order_id="WO-1",
                movements=(
                    MaterialMovement(
                        lot_id="L", material="M", quantity=D(1), unit="kg", use=MaterialUse.PRODUCED
                    ),
                ),
            )
        ],
        performance_id="p",
        created_us=T0,
    )
    with pytest.raises(B2mmlError, match=r"MaterialActual\[1\]/MaterialUse: .*'Inventoried'"):
        import_operations_performance(document.replace(b">Produced<", b">Inventoried<"))
    with pytest.raises(B2mmlError, match=r"MaterialLot\[1\]/Quantity: '-1x' is not a decimal"):
        import_material_lots(
            export_material_lots([lot("L-1")], created_us=T0).replace(b">1234.567891234<", b">-1x<")
        )


# -- the vendored schemas --------------------------------------------------------------------


def test_the_vendored_schemas_are_mesas_with_the_acknowledgement() -> None:
    schemas = sorted(SCHEMA_DIR.glob("*.xsd"))
    assert len(schemas) == 39
    statements: set[str] = set()
    for path in schemas:
        head = " ".join(path.read_text(encoding="utf-8")[:4000].split())
        assert re.search(r"Copyright 20\d\d MESA International", head), path.name
        # Each file asks for one of three acknowledgements; the README beside them gives all.
        found = [s for s in (ACK, *BATCHML_ACKS) if f'"{s}"' in head]
        assert found, path.name
        statements.update(found)
    assert statements == {ACK, *BATCHML_ACKS}
    versioned = [
        p.name
        for p in schemas
        if "MESA International, Version 0701" in p.read_text(encoding="utf-8")
    ]
    assert len(versioned) == 37
    licence = " ".join((SCHEMA_DIR / "LICENSE").read_text(encoding="utf-8").split())
    assert "Copyright 2020 MESA International, Version 0700" in licence
    assert f'"{ACK}"' in licence
    readme = " ".join((SCHEMA_DIR / "README.md").read_text(encoding="utf-8").split())
    for statement in (ACK, *BATCHML_ACKS):
        assert f'"{statement}"' in readme


def test_the_schemas_ship_as_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "valuechain/b2mml_schemas/*" in config["tool"]["setuptools"]["package-data"]["kiln"]
