"""CSV import and export of master data (issue 16): round trips (exact decimals, unicode,
quoting, formula-safe cells), the accepted dialects, and every kind of problem reported at its
file, row (the header is row 1) and column, all of them at once."""

from __future__ import annotations

import csv
import io
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.valuechain.locations import Location, LocationKind
from kiln.valuechain.master import Bom, BomLine, MasterData, Material, MaterialKind
from kiln.valuechain.master_csv import (
    CsvProblem,
    MasterCsvError,
    MasterFiles,
    escape_formula,
    export_bom_lines,
    export_locations,
    export_master,
    export_materials,
    export_routings,
    import_bom_lines,
    import_locations,
    import_master,
    import_materials,
    import_routings,
    unescape_formula,
)
from kiln.valuechain.routing import Operation, Routing, WorkCentreKind

LINE = "acme/plant1/assembly/line2"

MATERIALS = (
    Material(
        code="LAMP",
        name='Desk lamp, "Aurora" — 40 W\nwith shade',
        kind=MaterialKind.FINISHED,
        manufacturing_lead_days=2,
        safety_lead_days=1,
        lot_multiple=D(5),
    ),
    Material(
        code="HEAD",
        name='=HYPERLINK("http://example.invalid")',
        kind=MaterialKind.MADE,
        manufacturing_lead_days=3,
        lot_min=D(40),
        lot_max=D(100),
        lot_multiple=D(20),
    ),
    Material(
        code="CORD",
        name="-cord; 2 m",
        kind=MaterialKind.PURCHASED,
        supplier="ELEC",
        supplier_lead_days=4,
        safety_stock=D(20),
    ),
    Material(
        code="RESIN",
        name="'quoted' résine ポリ",
        unit="kg",
        decimals=3,
        kind=MaterialKind.RAW,
        lot_min=D("25.125"),
        lot_multiple=D("0.005"),
        safety_stock=D("1.000"),
    ),
)
BOMS = (
    Bom(
        parent="LAMP",
        lines=(BomLine(component="HEAD", quantity=D(1)), BomLine(component="CORD", quantity=D(2))),
    ),
    Bom(
        parent="HEAD",
        output_quantity=D("2.5"),
        lines=(BomLine(component="RESIN", quantity=D("0.300"), scrap_percent=D("12.5")),),
    ),
)
MASTER = MasterData(materials=MATERIALS, boms=BOMS)
ROUTINGS = (
    Routing(
        product="LAMP",
        operations=(
            Operation(
                number=10,
                name="@assemble",
                work_centre_kind=WorkCentreKind.LINE,
                work_centre=LINE,
                cycle_s=30.5,
                setup_s=900.0,
                move_s=60.0,
                components=("HEAD", "CORD"),
            ),
            Operation(
                number=20,
                name="Pack",
                work_centre_kind=WorkCentreKind.ASSET_TYPE,
                work_centre="packer",
                cycle_s=0.1,
                queue_s=1e-05,
            ),
        ),
    ),
    Routing(
        product="HEAD",
        operations=(
            Operation(
                number=10,
                name="Mould",
                work_centre_kind=WorkCentreKind.ASSET_TYPE,
                work_centre="press",
                cycle_s=12.0,
            ),
        ),
    ),
)
LOCATIONS = (
    Location(code="WH1", name="+Main stores", asset_path="acme/plant1/stores", kind="warehouse"),
    Location(
        code="WH1-A",
        asset_path="acme/plant1/stores",
        kind=LocationKind.STORAGE_ZONE,
        zone="A",
        bin="03-2",
        parent="WH1",
    ),
    Location(code="L2", name="Line 2 side", asset_path=LINE, kind=LocationKind.LINE_SIDE),
)
KNOWN_PATHS = ("acme", "acme/plant1", "acme/plant1/stores", "acme/plant1/assembly", LINE)


def problems_of(call: object, *args: object, **kwargs: object) -> list[str]:
    assert callable(call)
    with pytest.raises(MasterCsvError) as caught:
        call(*args, **kwargs)
    return [str(p) for p in caught.value.problems]


# --- Round trips ---------------------------------------------------------------------------------


def test_everything_round_trips_through_the_four_files() -> None:
    files = export_master(MASTER, ROUTINGS, LOCATIONS)
    assert sorted(files) == ["bom_lines.csv", "locations.csv", "materials.csv", "routings.csv"]
    back = import_master(
        files,
        known_paths=KNOWN_PATHS,
        products=("LAMP", "HEAD"),
        lines=(LINE,),
        asset_types=("packer", "press"),
    )
    assert back == MasterFiles(MASTER, ROUTINGS, LOCATIONS)
    # Decimals come back with their written places, not only equal in value.
    resin = back.master.material("RESIN")
    assert str(resin.lot_min) == "25.125"
    assert str(back.master.boms[1].lines[0].quantity) == "0.300"
    # Bytes, with a byte-order mark, read the same.
    as_bytes = {name: b"\xef\xbb\xbf" + text.encode() for name, text in files.items()}
    assert import_master(as_bytes) == back


def test_the_exported_text_is_plain_rfc_4180_with_formula_safe_text() -> None:
    text = export_materials(MATERIALS[1:3])
    assert text == (
        "code,name,unit,decimals,kind,purchasing_lead_days,manufacturing_lead_days,"
        "safety_lead_days,supplier,supplier_lead_days,safety_stock,lot_min,lot_max,lot_multiple\r\n"
        'HEAD,"\'=HYPERLINK(""http://example.invalid"")",pcs,0,made,0,3,0,,0,0,40,100,20\r\n'
        "CORD,'-cord; 2 m,pcs,0,purchased,0,0,0,ELEC,4,20,0,,\r\n"
    )
    assert export_bom_lines(BOMS) == (
        "parent,component,quantity,scrap_percent,output_quantity\r\n"
        "LAMP,HEAD,1,0,1\r\n"
        "LAMP,CORD,2,0,1\r\n"
        "HEAD,RESIN,0.300,12.5,2.5\r\n"
    )
    assert export_routings(ROUTINGS).splitlines()[1:] == [
        f"LAMP,10,'@assemble,line,{LINE},30.5,900.0,60.0,0.0,HEAD|CORD",
        "LAMP,20,Pack,asset_type,packer,0.1,0.0,0.0,1e-05,",
        "HEAD,10,Mould,asset_type,press,12.0,0.0,0.0,0.0,",
    ]
    assert export_locations(LOCATIONS).splitlines() == [
        "code,name,asset_path,kind,zone,bin,parent",
        "WH1,'+Main stores,acme/plant1/stores,warehouse,,,",
        "WH1-A,,acme/plant1/stores,storage_zone,A,03-2,WH1",
        f"L2,Line 2 side,{LINE},line_side,,,",
    ]


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("=1+2", "'=1+2"),
        ("+49 30", "'+49 30"),
        ("-x", "'-x"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'kept'", "''kept'"),
        ("plain = text", "plain = text"),
        ("", ""),
    ],
)
def test_formula_escaping_is_undone_on_import(text: str, cell: str) -> None:
    assert escape_formula(text) == cell
    assert unescape_formula(cell) == text


def test_a_decimal_is_written_in_plain_notation() -> None:
    m = Material(code="X", kind=MaterialKind.RAW, unit="kg", decimals=2, lot_min=D("1E+2"))
    row = export_materials([m]).splitlines()[1]
    assert row.split(",")[11] == "100"
    assert import_materials(export_materials([m])) == (m,)


def test_semicolons_decimal_commas_crlf_case_and_column_order_are_accepted() -> None:
    text = (
        "\ufeffKind ; Code;unit;decimals; LOT_MIN\r\n"
        "RAW;RESIN;kg;3;25,125\r\n"
        "\r\n"
        'made;"HEAD";pcs;0;\r\n'
    )
    assert import_materials(text) == (
        Material(code="RESIN", kind=MaterialKind.RAW, unit="kg", decimals=3, lot_min=D("25.125")),
        Material(code="HEAD", kind=MaterialKind.MADE),
    )
    # In a comma file, a decimal comma cannot be: it would split the cell.
    assert problems_of(import_materials, 'code,kind,lot_min\nR,raw,"25,5"\n') == [
        "materials.csv row 2, column lot_min: '25,5' is not a number"
    ]


@pytest.mark.parametrize("cell", ["1_000", "NaN", "inf", "\u0661", "1.2.3", "0x10", "e5", ""])
def test_only_plain_numbers_are_numbers(cell: str) -> None:
    text = f"code,kind,safety_lead_days,lot_min\nA,raw,{cell},{cell}\n"
    if cell == "":
        assert import_materials(text)[0].lot_min == 0
        return
    assert problems_of(import_materials, text) == [
        f"materials.csv row 2, column safety_lead_days: {cell!r} is not a whole number",
        f"materials.csv row 2, column lot_min: {cell!r} is not a number",
    ]


@pytest.mark.parametrize(("cell", "value"), [("+7", "7"), (" 2.50 ", "2.50"), ("1e2", "1E+2")])
def test_plain_numbers_in_their_forms(cell: str, value: str) -> None:
    text = f"code,kind,unit,decimals,lot_min\nA,raw,kg,2,{cell}\n"
    assert str(import_materials(text)[0].lot_min) == value


def test_missing_optional_columns_take_the_defaults() -> None:
    assert import_bom_lines("parent,component,quantity\nA,B,2\nA,C,1.5\n") == (
        Bom(
            parent="A",
            lines=(
                BomLine(component="B", quantity=D(2)),
                BomLine(component="C", quantity=D("1.5")),
            ),
        ),
    )
    assert import_locations("code,asset_path,kind\nWH,acme/plant1,warehouse\n") == (
        Location(code="WH", asset_path="acme/plant1", kind=LocationKind.WAREHOUSE),
    )


def test_operations_come_back_in_number_order_whatever_the_row_order() -> None:
    text = (
        "product,operation,name,work_centre_kind,work_centre,cycle_s\n"
        "P,20,B,asset_type,t,2\n"
        "Q,10,C,asset_type,t,3\n"
        "P,10,A,asset_type,t,1\n"
    )
    routings = import_routings(text)
    assert [(r.product, [o.number for o in r.operations]) for r in routings] == [
        ("P", [10, 20]),
        ("Q", [10]),
    ]


# --- Problems, each at its row and column ----------------------------------------------------------

MATERIALS_HEAD = "code,name,unit,decimals,kind,lot_min,lot_max,lot_multiple\n"


def test_every_cell_problem_of_materials_is_named_at_once() -> None:
    text = MATERIALS_HEAD + (
        "OK,Fine,pcs,0,raw,,,\n"  # row 2
        "A,,pcs,0,raw,1,,ten\n"  # row 3
        "B,,pcs,zero,metal,,,\n"  # row 4
        "\n"  # row 5: blank, counted
        '"C D","two\nlines",pcs,0,raw,,,\n'  # row 6: one row, two lines
        "E,,kg,1,raw,-1,,\n"  # row 7
        ",,pcs,0,,,,\n"  # row 8
        "F,,kg,1,made,,,0.25\n"  # row 9: a rule across fields
        "G,,m,0,made,,7,5\n"  # row 10: a unit that is a letter of a column's name
        "OK,Again,pcs,0,raw,,,\n"  # row 11
    )
    assert problems_of(import_materials, text) == [
        "materials.csv row 3, column lot_multiple: 'ten' is not a number",
        "materials.csv row 4, column decimals: 'zero' is not a whole number",
        "materials.csv row 4, column kind: 'metal' is not one of raw, purchased, made, finished",
        "materials.csv row 6, column code: 'C D' is not a code: 1-64 letters, digits, '_', '-' "
        "and '.', not starting with '-' or '.'",
        "materials.csv row 7, column lot_min: '-1' should be greater than or equal to 0",
        "materials.csv row 8, column code: '' is empty, and a value is required",
        "materials.csv row 8, column kind: '' is empty, and a value is required",
        "materials.csv row 9, column lot_multiple: material F: lot_multiple 0.25 has more "
        "decimal places than its unit's precision (1)",
        "materials.csv row 10, column lot_max: material G: lot_max 7 is not a multiple of "
        "lot_multiple 5, so no order could respect both",
        "materials.csv row 11, column code: 'OK' is given twice (first at row 2)",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "code,kind,colour\nA,raw,red\n",
            "materials.csv row 1, column colour: 'colour' is not a column of this file; columns: "
            "code, name, unit, decimals, kind, purchasing_lead_days, manufacturing_lead_days, "
            "safety_lead_days, supplier, supplier_lead_days, safety_stock, lot_min, lot_max, "
            "lot_multiple",
        ),
        (
            "code,name\nA,a\n",
            "materials.csv row 1, column kind: is missing: the column is required",
        ),
        ("code,kind,code\nA,raw,A\n", "materials.csv row 1, column code: 'code' is given twice"),
        ("code,,kind\nA,,raw\n", "materials.csv row 1, column #2: '' is an empty column name"),
        ("", "materials.csv row 1: is empty; the header needs at least code, kind"),
        (
            'code,kind\nA,raw\n"B,raw\n',
            "materials.csv row 3: is not well-formed CSV: unexpected end of data",
        ),
        (
            "code,kind\nA,raw,surplus\n",
            "materials.csv row 2, column #3: 'surplus' is in a column without a header",
        ),
    ],
)
def test_header_and_file_problems(text: str, expected: str) -> None:
    assert problems_of(import_materials, text) == [expected]


def test_trailing_empty_header_and_row_cells_from_spreadsheets_are_fine() -> None:
    assert import_materials("code,kind,,\nA,raw,,\n") == (
        Material(code="A", kind=MaterialKind.RAW),
    )


def test_bytes_that_are_not_utf8_are_named_by_row() -> None:
    data = b"code,name,kind\nA,ok,raw\nB,caf\xe9,raw\n"
    assert problems_of(import_materials, data) == [
        "materials.csv row 3: is not UTF-8 text (byte 30 of the file)"
    ]


BOM_HEAD = "parent,component,quantity,scrap_percent,output_quantity\n"


def test_every_problem_of_bom_lines_is_named_at_its_row() -> None:
    materials = (
        *MATERIALS,
        Material(code="SHADE", kind=MaterialKind.MADE),
        Material(code="FRAME", kind=MaterialKind.MADE),
    )
    text = BOM_HEAD + (
        "LAMP,HEAD,1,,\n"  # row 2
        "LAMP,GHOST,1,,\n"  # row 3: unknown component
        "LAMP,HEAD,2,,\n"  # row 4: twice
        "CORD,RESIN,1,,\n"  # row 5: a bought parent
        "NOPE,RESIN,1,,\n"  # row 6: unknown parent
        "HEAD,LAMP,1,,\n"  # row 7: closes LAMP -> HEAD -> LAMP
        "SHADE,FRAME,1,,2\n"  # row 8
        "SHADE,CORD,x,,3\n"  # row 9: quantity, and output differs from row 8's
        "FRAME,SHADE,1,,0\n"  # row 10: output 0; closes SHADE -> FRAME -> SHADE
        "FRAME,CORD,1,100,\n"  # row 11: scrap
    )
    assert problems_of(import_bom_lines, text, materials) == [
        "bom_lines.csv row 3, column component: 'GHOST' is no material of materials.csv",
        "bom_lines.csv row 4, column component: 'HEAD' is a component of LAMP twice (first at "
        "row 2); give it once with the summed quantity",
        "bom_lines.csv row 5, column parent: 'CORD' is purchased: a bought material has no bill "
        "of materials",
        "bom_lines.csv row 6, column parent: 'NOPE' is no material of materials.csv",
        "bom_lines.csv row 7, column component: 'LAMP' closes a cycle of bills of materials: "
        "LAMP -> HEAD -> LAMP",
        "bom_lines.csv row 9, column quantity: 'x' is not a number",
        "bom_lines.csv row 9, column output_quantity: '3' differs from 2, given for SHADE at row 8",
        "bom_lines.csv row 10, column component: 'SHADE' closes a cycle of bills of materials: "
        "SHADE -> FRAME -> SHADE",
        "bom_lines.csv row 10, column output_quantity: '0' should be greater than 0",
        "bom_lines.csv row 11, column scrap_percent: '100' should be less than 100",
    ]


def test_every_cycle_is_named_at_the_line_that_closes_it() -> None:
    materials = [Material(code=c, kind=MaterialKind.MADE) for c in "ABCDE"]
    text = BOM_HEAD + "A,B,1,,\nB,C,1,,\nC,A,1,,\nD,E,1,,\nE,D,1,,\nB,A,1,,\n"
    assert problems_of(import_bom_lines, text, materials) == [
        "bom_lines.csv row 4, column component: 'A' closes a cycle of bills of materials: "
        "A -> B -> C -> A",
        "bom_lines.csv row 6, column component: 'D' closes a cycle of bills of materials: "
        "D -> E -> D",
        "bom_lines.csv row 7, column component: 'A' closes a cycle of bills of materials: "
        "A -> B -> A",
    ]


ROUTING_HEAD = "product,operation,name,work_centre_kind,work_centre,cycle_s,setup_s,components\n"


def test_every_problem_of_routings_is_named_at_its_row() -> None:
    text = ROUTING_HEAD + (
        f"LAMP,10,Assemble,line,{LINE},30,,HEAD\n"  # row 2
        f"LAMP,10,Again,line,{LINE},30,,\n"  # row 3: number twice
        "LAMP,20,Pack,asset_type,packer,0,-5,\n"  # row 4: times
        "LAMP,30,Test,cell,tester,1,,\n"  # row 5: kind
        "LAMP,40,Fit,asset_type,fitter,1,,HEAD|CORD\n"  # row 6: HEAD consumed twice
        "LAMP,50,Check,line,nowhere,1,,\n"  # row 7: one segment is no line path
        "LAMP,,,asset_type,x,1.5.1,,\n"  # row 8
        "HEAD,10,Mould,asset_type,press,12,,RESIN|GHOST|CORD\n"  # row 9
        "CORD,10,Cut,line,acme/plant1/cutting/line9,1,,\n"  # row 10
    )
    assert problems_of(
        import_routings,
        text,
        MASTER,
        products=("LAMP", "HEAD"),
        lines=(LINE,),
        asset_types=("packer", "press"),
    ) == [
        "routings.csv row 3, column operation: '10' is given twice for LAMP (first at row 2)",
        "routings.csv row 4, column cycle_s: '0' should be greater than 0",
        "routings.csv row 4, column setup_s: '-5' should be greater than or equal to 0",
        "routings.csv row 5, column work_centre_kind: 'cell' is not one of line, asset_type",
        "routings.csv row 6, column components: 'HEAD|CORD' consumes HEAD, consumed already at "
        "row 2",
        "routings.csv row 7, column work_centre: operation 50: work centre: path 'nowhere' has "
        "one segment; a tag path needs at least an asset and a tag name, e.g. "
        "acme/plant1/line1/filler/weight",
        "routings.csv row 8, column operation: '' is empty, and a value is required",
        "routings.csv row 8, column name: '' is empty, and a value is required",
        "routings.csv row 8, column cycle_s: '1.5.1' is not a number",
        "routings.csv row 9, column components: GHOST is no known material",
        "routings.csv row 9, column components: CORD is no component of the "
        "bill of materials of HEAD",
        "routings.csv row 10, column product: CORD is no product of production",
        "routings.csv row 10, column product: CORD is purchased: bought, so not routed",
        "routings.csv row 10, column work_centre: line acme/plant1/cutting/line9 is not known",
    ]


LOCATION_HEAD = "code,name,asset_path,kind,zone,bin,parent\n"


def test_every_problem_of_locations_is_named_at_its_row() -> None:
    text = LOCATION_HEAD + (
        "WH1,Stores,acme/plant1/stores,warehouse,,,\n"  # row 2
        "WH1,Twice,acme/plant1/stores,warehouse,,,\n"  # row 3
        "Z,,acme/plant1/stores,storage_zone,,07,WH1\n"  # row 4: bin without zone
        "ORPHAN,,acme/plant1/stores,storage_zone,A,,GONE\n"  # row 5
        "L3,,acme/plant1/assembly/line3,line_side,,,\n"  # row 6
        "FAR,,acme/plant1/assembly,storage_zone,B,,WH1\n"  # row 7: outside its parent
        "C1,,acme/plant1/stores,storage_zone,C,,C2\n"  # row 8
        "C2,,acme/plant1/stores,storage_zone,C,,C1\n"  # row 9
        "BAD,,acme//x,attic,,,\n"  # row 10
    )
    assert problems_of(import_locations, text, KNOWN_PATHS) == [
        "locations.csv row 3, column code: 'WH1' is given twice (first at row 2)",
        "locations.csv row 4, column bin: location Z: a bin is given without its zone",
        "locations.csv row 5, column parent: parent GONE is no known location",
        "locations.csv row 6, column asset_path: asset path "
        "acme/plant1/assembly/line3 is not in the asset hierarchy (its nearest known ancestor "
        "is acme/plant1/assembly)",
        "locations.csv row 7, column asset_path: asset path "
        "acme/plant1/assembly is not at or below acme/plant1/stores, the asset path of its "
        "parent WH1",
        "locations.csv row 8, column parent: parents form a cycle: C1 -> C2 -> C1",
        "locations.csv row 10, column asset_path: path 'acme//x' has an invalid segment '': "
        "segments are 1-64 characters of letters, digits, '_', '-' and '.', not starting with "
        "'-' or '.'",
        "locations.csv row 10, column kind: 'attic' is not one of warehouse, storage_zone, "
        "line_side, quarantine, shipping, receiving",
    ]


def test_import_master_checks_across_files_and_returns_nothing_on_a_problem() -> None:
    files = export_master(MASTER, ROUTINGS, LOCATIONS)
    files["materials.csv"] += "RESIN,again,kg,0,raw,0,0,0,,0,0,0,,\r\n"  # row 6
    files["bom_lines.csv"] += "LAMP,SHADE,1,0,1\r\n"  # row 5
    files["routings.csv"] += "SHADE,10,Sew,asset_type,sewer,1.0,0,0,0,\r\n"  # row 5
    files["locations.csv"] += "X,,mars/base,warehouse,,,\r\n"  # row 5
    files["prices.csv"] = "code,price\r\n"
    assert problems_of(import_master, files, known_paths=KNOWN_PATHS) == [
        "prices.csv: is not a master data file; they are: materials.csv, bom_lines.csv, "
        "routings.csv, locations.csv",
        "materials.csv row 6, column code: 'RESIN' is given twice (first at row 5)",
        # With materials.csv refused, components are not checked against it,
        "locations.csv row 5, column asset_path: asset path mars/base is not in "
        "the asset hierarchy",
    ]
    files["materials.csv"] = export_materials(MATERIALS)
    assert problems_of(import_master, files, known_paths=KNOWN_PATHS) == [
        "prices.csv: is not a master data file; they are: materials.csv, bom_lines.csv, "
        "routings.csv, locations.csv",
        "bom_lines.csv row 5, column component: 'SHADE' is no material of materials.csv",
        "locations.csv row 5, column asset_path: asset path mars/base is not in "
        "the asset hierarchy",
    ]
    del files["prices.csv"], files["bom_lines.csv"]
    files["locations.csv"] = export_locations(LOCATIONS)
    # Without bom_lines.csv, HEAD has no bill, so LAMP's routing consumes no component of one.
    assert problems_of(import_master, files) == [
        "routings.csv row 2, column components: HEAD is no component of the bill of "
        "materials of LAMP",
        "routings.csv row 2, column components: CORD is no component of the bill of "
        "materials of LAMP",
        "routings.csv row 5, column product: SHADE is no known material",
    ]
    assert problems_of(import_master, {}) == [
        "materials.csv: is missing: master data starts from materials"
    ]


def test_the_error_message_lists_every_problem() -> None:
    with pytest.raises(MasterCsvError) as caught:
        import_materials("code,kind\nA,rock\nB,\n")
    assert str(caught.value) == (
        "2 problems in the master data files:\n"
        "materials.csv row 2, column kind: 'rock' is not one of raw, purchased, made, finished\n"
        "materials.csv row 3, column kind: '' is empty, and a value is required"
    )
    assert caught.value.problems[0] == CsvProblem(
        "materials.csv", 2, "kind", "rock", "is not one of raw, purchased, made, finished"
    )


# --- Property: any master data round trips ----------------------------------------------------------

CODES = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,10}", fullmatch=True)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)


@st.composite
def quantities(draw: st.DrawFn, places: int, positive: bool = False) -> D:
    scale = draw(st.integers(0, places))
    n = draw(st.integers(1 if positive else 0, 10**7))
    return D(n).scaleb(-scale)


@st.composite
def materials_of(draw: st.DrawFn, codes: list[str]) -> list[Material]:
    out = []
    for code in codes:
        unit = draw(
            st.sampled_from(["pcs", "kg", "m", "=x", "\u2113"])
            | TEXT.filter(lambda t: 0 < len(t) <= 32)
        )
        decimals = 0 if unit == "pcs" else draw(st.integers(0, 6))
        kind = draw(st.sampled_from(list(MaterialKind)))
        multiple = draw(st.none() | quantities(decimals, positive=True))
        lot_min = draw(quantities(decimals))
        lot_max = None
        if draw(st.booleans()):
            step = multiple if multiple is not None else D(1)
            lot_max = step * max(1, int(lot_min / step) + draw(st.integers(1, 5)))
        out.append(
            Material(
                code=code,
                name=draw(TEXT),
                unit=unit,
                decimals=decimals,
                kind=kind,
                purchasing_lead_days=draw(st.integers(0, 400)),
                safety_stock=draw(quantities(decimals)),
                lot_min=lot_min,
                lot_max=lot_max,
                lot_multiple=multiple,
                supplier=draw(st.none() | CODES) if kind in {"raw", "purchased"} else None,
            )
        )
    return out


@st.composite
def master_data(draw: st.DrawFn) -> MasterData:
    codes = draw(st.lists(CODES, min_size=1, max_size=6, unique=True))
    materials = draw(materials_of(codes))
    boms = []
    for i, m in enumerate(materials):
        # Components only later in the list: no cycle.
        later = codes[i + 1 :]
        if m.bought or not later or not draw(st.booleans()):
            continue
        components = draw(st.lists(st.sampled_from(later), min_size=1, unique=True))
        boms.append(
            Bom(
                parent=m.code,
                output_quantity=draw(quantities(3, positive=True)),
                lines=tuple(
                    BomLine(
                        component=c,
                        quantity=draw(quantities(4, positive=True)),
                        scrap_percent=draw(st.decimals(0, D("99.99"), places=2)),
                    )
                    for c in components
                ),
            )
        )
    return MasterData(materials=tuple(materials), boms=tuple(boms))


SECONDS = st.floats(min_value=0, max_value=1e9, exclude_min=True, allow_subnormal=False)


@st.composite
def routings(draw: st.DrawFn) -> list[Routing]:
    out = []
    for product in draw(st.lists(CODES, max_size=4, unique=True)):
        numbers = sorted(draw(st.lists(st.integers(1, 9999), min_size=1, max_size=4, unique=True)))
        components = draw(st.lists(CODES, max_size=4, unique=True))
        operations = []
        for n in numbers:
            mine, components = components[:1], components[1:]
            line = draw(st.booleans())
            operations.append(
                Operation(
                    number=n,
                    name=draw(TEXT.filter(bool)),
                    work_centre_kind=WorkCentreKind.LINE if line else WorkCentreKind.ASSET_TYPE,
                    work_centre=draw(
                        st.lists(CODES, min_size=2, max_size=4).map("/".join) if line else CODES
                    ),
                    cycle_s=draw(SECONDS),
                    setup_s=draw(st.just(0.0) | SECONDS),
                    move_s=draw(st.just(0.0) | SECONDS),
                    queue_s=draw(st.just(0.0) | SECONDS),
                    components=tuple(mine),
                )
            )
        out.append(Routing(product=product, operations=tuple(operations)))
    return out


@st.composite
def locations(draw: st.DrawFn) -> list[Location]:
    codes = draw(st.lists(CODES, max_size=6, unique=True))
    out: list[Location] = []
    for i, code in enumerate(codes):
        parent = draw(st.none() | st.sampled_from(out)) if out else None
        base = (
            parent.asset_path
            if parent is not None
            else draw(st.lists(CODES, min_size=1, max_size=3).map("/".join))
        )
        path = base + ("/" + draw(CODES) if draw(st.booleans()) else "")
        zone = draw(
            st.none()
            | st.from_regex(r"[A-Za-z0-9_]([A-Za-z0-9_.\-/ ]{0,8}[a-z/])?", fullmatch=True)
        )
        out.append(
            Location(
                code=code,
                name=draw(TEXT),
                asset_path=path,
                kind=draw(st.sampled_from(list(LocationKind))),
                zone=zone,
                bin=None if zone is None or i % 2 else draw(CODES),
                parent=None if parent is None else parent.code,
            )
        )
    return out


@settings(max_examples=100, deadline=None)
@given(master_data(), routings(), locations())
def test_any_master_data_round_trips(
    master: MasterData, routed: list[Routing], placed: list[Location]
) -> None:
    files = export_master(master, routed, placed)
    assert import_materials(files["materials.csv"]) == master.materials
    assert import_bom_lines(files["bom_lines.csv"], master.materials) == master.boms
    assert import_routings(files["routings.csv"]) == tuple(routed)
    assert import_locations(files["locations.csv"]) == tuple(placed)
    # Every cell a spreadsheet would run as a formula has been escaped.
    for text in files.values():
        for row in csv.reader(io.StringIO(text, newline="")):
            assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)
