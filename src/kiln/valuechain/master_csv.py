"""CSV import and export of master data: materials, bill-of-materials lines, routings and
inventory locations, one file each, for people who keep master data in spreadsheets.

Files and their columns (the order export writes; import takes any order, `*` required):

    materials.csv   code*, name, unit, decimals, kind*, purchasing_lead_days,
                    manufacturing_lead_days, safety_lead_days, supplier, supplier_lead_days,
                    safety_stock, lot_min, lot_max, lot_multiple
    bom_lines.csv   parent*, component*, quantity*, scrap_percent, output_quantity
                    (one row per line; output_quantity, the parent's batch, on each row)
    routings.csv    product*, operation*, name*, work_centre_kind*, work_centre*, cycle_s*,
                    setup_s, move_s, queue_s, components (codes separated by '|')
                    (one row per operation)
    locations.csv   code*, name, asset_path*, kind*, zone, bin, parent

An empty cell takes the field's default. Quantities are exact decimals, written in plain
notation ("0.25", never "2.5E-1"); times are seconds.

**Import** reads UTF-8 text, with or without a byte-order mark, delimited by ',' or ';'
(whichever the header line holds more of). In a ';' file a number may use a decimal comma
("0,25"), as spreadsheets in such locales write it. Header names are matched without case
and surrounding spaces. Blank rows are skipped, but they still count.

**Rows are numbered as a spreadsheet shows them**: the header is row 1, the first data row is
row 2. (A record is one row even when a quoted cell holds line breaks.)

Import collects every problem before it gives up, and then returns nothing but the problems
(`MasterCsvError.problems`), each naming the file, the row, the column, the value and why:
cells that are not numbers, codes or known choices; rules of a single row (a lot_max below
lot_min); header problems (an unknown or missing column, row 1); and problems of the whole,
at the row of the offending line: a code given twice (the later row), a component or parent
no material defines, a bill of materials cycle (at the line that closes it), an operation
number given twice, a location whose parent is unknown.

**Formula safety**: a spreadsheet runs a cell that starts with = + - @ (or, for tab and CR,
may turn it into one) as a formula. Export writes free-text cells (names, units) that start
so, or that start with a quote, with one more leading quote, and import takes one leading
quote off free-text cells, so a round trip gives back the same text. Other columns cannot
start with those characters (codes, paths, numbers that are never negative).

Pure: strings in, objects out; the caller reads and writes the files.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from kiln.valuechain.locations import Location, LocationKind, location_problems
from kiln.valuechain.master import (
    CODE_PATTERN,
    Bom,
    BomLine,
    MasterData,
    Material,
    MaterialKind,
    find_cycle,
)
from kiln.valuechain.routing import (
    Operation,
    Routing,
    WorkCentreKind,
    routing_problems,
)

# What a spreadsheet takes for the start of a formula; the same list as the alarm journal's
# and the audit log's CSV exports (kept here since theirs are private to the API and security).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
COMPONENT_SEPARATOR = "|"


class FileKind(StrEnum):
    MATERIALS = "materials"
    BOM_LINES = "bom_lines"
    ROUTINGS = "routings"
    LOCATIONS = "locations"

    @property
    def file_name(self) -> str:
        return f"{self.value}.csv"


@dataclass(frozen=True, slots=True)
class CsvProblem:
    """One problem of an imported file. `row` counts the header as row 1; `row` and `column`
    are None only for a problem of the file itself (not UTF-8, not a master data file)."""

    file: str
    row: int | None
    column: str | None
    value: str | None
    reason: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f" row {self.row}"
        if self.column is not None:
            where += f", column {self.column}"
        if self.value is None:
            return f"{where}: {self.reason}"
        return f"{where}: {self.value!r} {self.reason}"


class MasterCsvError(ValueError):
    """Imported master data that cannot be taken; `problems` holds every one found."""

    def __init__(self, problems: Iterable[CsvProblem]) -> None:
        self.problems = tuple(_in_row_order(problems))
        n = len(self.problems)
        super().__init__(
            f"{n} problem{'s' if n != 1 else ''} in the master data files:\n"
            + "\n".join(str(p) for p in self.problems)
        )


# --- Cells -------------------------------------------------------------------------------------


def escape_formula(text: str) -> str:
    """`text` as a free-text cell a spreadsheet will not run (see the module docstring)."""
    if text.startswith((*FORMULA_START, "'")):
        return "'" + text
    return text


def unescape_formula(cell: str) -> str:
    """The text of a free-text cell written by `escape_formula`."""
    return cell[1:] if cell.startswith("'") else cell


def _decimal_cell(value: Decimal) -> str:
    return format(value, "f")


def _float_cell(value: float) -> str:
    return repr(value)


class _CellError(ValueError):
    """A cell that is not of its column's form; the message completes "'value' ..."."""


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    parse: Callable[[str, str], Any]  # (cell, delimiter) -> value; _CellError if it is not
    required: bool = False
    text: bool = False  # free text: formula-escaped, kept exactly (no stripping)


def _text(cell: str, _: str) -> str:
    return unescape_formula(cell)


def _code(cell: str, _: str) -> str:
    return cell.strip()


# Plain ASCII numbers only: Decimal and int would also take "1_000" and other scripts' digits,
# which a spreadsheet user does not mean as a number.
_INT = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _int(cell: str, _: str) -> int:
    text = cell.strip()
    if _INT.fullmatch(text) is None:
        raise _CellError("is not a whole number")
    return int(text)


def _decimal(cell: str, delimiter: str) -> Decimal:
    text = cell.strip()
    if delimiter == ";" and "," in text and "." not in text:
        text = text.replace(",", ".", 1)
    if _NUMBER.fullmatch(text) is None:
        raise _CellError("is not a number")
    return Decimal(text)


def _float(cell: str, delimiter: str) -> float:
    return float(_decimal(cell, delimiter))


def _choice(kind: type[StrEnum]) -> Callable[[str, str], str]:
    choices = [member.value for member in kind]

    def parse(cell: str, _: str) -> str:
        text = cell.strip().lower()
        if text not in choices:
            raise _CellError("is not one of " + ", ".join(choices))
        return text

    return parse


def _codes(cell: str, _: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in cell.split(COMPONENT_SEPARATOR) if part.strip())


MATERIAL_COLUMNS = (
    _Column("code", _code, required=True),
    _Column("name", _text, text=True),
    _Column("unit", _text, text=True),
    _Column("decimals", _int),
    _Column("kind", _choice(MaterialKind), required=True),
    _Column("purchasing_lead_days", _int),
    _Column("manufacturing_lead_days", _int),
    _Column("safety_lead_days", _int),
    _Column("supplier", _code),
    _Column("supplier_lead_days", _int),
    _Column("safety_stock", _decimal),
    _Column("lot_min", _decimal),
    _Column("lot_max", _decimal),
    _Column("lot_multiple", _decimal),
)
BOM_COLUMNS = (
    _Column("parent", _code, required=True),
    _Column("component", _code, required=True),
    _Column("quantity", _decimal, required=True),
    _Column("scrap_percent", _decimal),
    _Column("output_quantity", _decimal),
)
ROUTING_COLUMNS = (
    _Column("product", _code, required=True),
    _Column("operation", _int, required=True),
    _Column("name", _text, required=True, text=True),
    _Column("work_centre_kind", _choice(WorkCentreKind), required=True),
    _Column("work_centre", _code, required=True),
    _Column("cycle_s", _float, required=True),
    _Column("setup_s", _float),
    _Column("move_s", _float),
    _Column("queue_s", _float),
    _Column("components", _codes),
)
LOCATION_COLUMNS = (
    _Column("code", _code, required=True),
    _Column("name", _text, text=True),
    _Column("asset_path", _code, required=True),
    _Column("kind", _choice(LocationKind), required=True),
    _Column("zone", _code),
    _Column("bin", _code),
    _Column("parent", _code),
)
COLUMNS: Mapping[FileKind, tuple[_Column, ...]] = {
    FileKind.MATERIALS: MATERIAL_COLUMNS,
    FileKind.BOM_LINES: BOM_COLUMNS,
    FileKind.ROUTINGS: ROUTING_COLUMNS,
    FileKind.LOCATIONS: LOCATION_COLUMNS,
}


# --- Export ------------------------------------------------------------------------------------


def _write(columns: Sequence[_Column], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(c.name for c in columns)
    for row in rows:
        cells: list[str] = []
        for column, value in zip(columns, row, strict=True):
            cells.append(_export_cell(value, text=column.text))
        writer.writerow(cells)
    return out.getvalue()


def _export_cell(value: object, *, text: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return _decimal_cell(value)
    if isinstance(value, float):
        return _float_cell(value)
    if isinstance(value, tuple):
        return COMPONENT_SEPARATOR.join(value)
    cell = str(value)
    return escape_formula(cell) if text else cell


def export_materials(materials: Iterable[Material]) -> str:
    """materials.csv: one row per material, in the order given."""
    return _write(
        MATERIAL_COLUMNS,
        ([getattr(m, c.name) for c in MATERIAL_COLUMNS] for m in materials),
    )


def export_bom_lines(boms: Iterable[Bom]) -> str:
    """bom_lines.csv: one row per line, bills in the order given, lines in their order."""
    return _write(
        BOM_COLUMNS,
        (
            [bom.parent, line.component, line.quantity, line.scrap_percent, bom.output_quantity]
            for bom in boms
            for line in bom.lines
        ),
    )


def export_routings(routings: Iterable[Routing]) -> str:
    """routings.csv: one row per operation, routings in the order given."""
    return _write(
        ROUTING_COLUMNS,
        (
            [
                routing.product,
                op.number,
                op.name,
                op.work_centre_kind.value,
                op.work_centre,
                op.cycle_s,
                op.setup_s,
                op.move_s,
                op.queue_s,
                op.components,
            ]
            for routing in routings
            for op in routing.operations
        ),
    )


def export_locations(locations: Iterable[Location]) -> str:
    """locations.csv: one row per location, in the order given."""
    return _write(
        LOCATION_COLUMNS,
        ([getattr(loc, c.name) for c in LOCATION_COLUMNS] for loc in locations),
    )


def export_master(
    master: MasterData, routings: Iterable[Routing] = (), locations: Iterable[Location] = ()
) -> dict[str, str]:
    """All four files, by file name."""
    return {
        FileKind.MATERIALS.file_name: export_materials(master.materials),
        FileKind.BOM_LINES.file_name: export_bom_lines(master.boms),
        FileKind.ROUTINGS.file_name: export_routings(routings),
        FileKind.LOCATIONS.file_name: export_locations(locations),
    }


# --- Reading a table ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    number: int
    raw: dict[str, str]  # column name -> cell as written
    values: dict[str, Any]  # column name -> parsed value, for the cells that parsed
    bad: set[str] = field(default_factory=set)  # columns whose cell did not parse


class _Problems:
    def __init__(self, kind: FileKind) -> None:
        self.file = kind.file_name
        self.items: list[CsvProblem] = []

    def add(self, row: int | None, column: str | None, value: str | None, reason: str) -> None:
        self.items.append(CsvProblem(self.file, row, column, value, reason))

    def at(self, row: _Row, column: str, reason: str) -> None:
        self.add(row.number, column, row.raw.get(column, ""), reason)


def _read(data: str | bytes, kind: FileKind, problems: _Problems) -> list[_Row]:
    """The data rows of a file, each cell parsed by its column; problems of the header, the
    cells and the CSV itself go to `problems`."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            row = data[: exc.start].count(b"\n") + 1
            problems.add(row, None, None, f"is not UTF-8 text (byte {exc.start + 1} of the file)")
            return []
    else:
        text = data.removeprefix("\ufeff")
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    columns = {c.name: c for c in COLUMNS[kind]}
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[_Row] = []
    header: list[str] | None = None
    number = 0
    try:
        for record in reader:
            number += 1
            if header is None:
                header = [cell.strip().lower() for cell in record]
                if not _header_ok(header, columns, problems):
                    return []
                continue
            if not any(cell.strip() for cell in record):
                continue
            rows.append(_parse_row(number, record, header, columns, delimiter, problems))
    except csv.Error as exc:
        problems.add(number + 1, None, None, f"is not well-formed CSV: {exc}")
        return []
    if header is None:
        required = ", ".join(c.name for c in COLUMNS[kind] if c.required)
        problems.add(1, None, None, f"is empty; the header needs at least {required}")
    return rows


def _header_ok(header: list[str], columns: Mapping[str, _Column], problems: _Problems) -> bool:
    ok = True
    seen: set[str] = set()
    for i, name in enumerate(header, start=1):
        if not name:
            # Trailing empty header cells come from spreadsheets; inner ones are columns too.
            if any(header[i:]):
                problems.add(1, f"#{i}", "", "is an empty column name")
                ok = False
            continue
        if name not in columns:
            problems.add(
                1, name, name, "is not a column of this file; columns: " + ", ".join(columns)
            )
            ok = False
        elif name in seen:
            problems.add(1, name, name, "is given twice")
            ok = False
        seen.add(name)
    for name, column in columns.items():
        if column.required and name not in seen:
            problems.add(1, name, None, "is missing: the column is required")
            ok = False
    return ok


def _parse_row(
    number: int,
    record: list[str],
    header: list[str],
    columns: Mapping[str, _Column],
    delimiter: str,
    problems: _Problems,
) -> _Row:
    row = _Row(number, {}, {})
    for i, cell in enumerate(record):
        if i >= len(header) or not header[i]:
            if cell.strip():
                row.bad.add(f"#{i + 1}")
                problems.add(number, f"#{i + 1}", cell, "is in a column without a header")
            continue
        name = header[i]
        row.raw[name] = cell
        if (cell if columns[name].text else cell.strip()) == "":
            continue  # the field's default
        try:
            row.values[name] = columns[name].parse(cell, delimiter)
        except _CellError as exc:
            row.bad.add(name)
            problems.at(row, name, str(exc))
    return row


M = TypeVar("M", bound=BaseModel)


def _build(
    model: type[M],
    row: _Row,
    problems: _Problems,
    *,
    rename: Mapping[str, str] | None = None,
    skip: Iterable[str] = (),
    fallback: str,
    rule_column: str | None = None,
) -> M | None:
    """`model` from a row's values; its validation errors, each at its column. `rename` maps
    field names to column names where they differ; fields in `skip` are not the model's."""
    rename = rename or {}
    to_field = {column: f for f, column in rename.items()}
    skipped = set(skip)
    data = {to_field.get(k, k): v for k, v in row.values.items() if k not in skipped}
    try:
        built = model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = error["loc"]
            column = rename.get(str(loc[0]), str(loc[0])) if loc else None
            if column in row.bad:
                continue  # already reported: the cell did not parse, so it was left out
            if column is None:
                if row.bad:
                    continue  # a rule across fields, judged without the cells that failed
                column = rule_column or _column_named_in(error["msg"], row, fallback)
            if error["type"] == "value_error":
                # The rules' own messages name the values they judge.
                problems.add(row.number, column, None, _reason(error))
            else:
                problems.at(row, column, _reason(error))
        return None
    return None if row.bad else built


NOT_A_CODE = "is not a code: 1-64 letters, digits, '_', '-' and '.', not starting with '-' or '.'"


def _reason(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is empty, and a value is required"
    if kind == "string_pattern_mismatch":
        if error.get("ctx", {}).get("pattern") == CODE_PATTERN:
            return NOT_A_CODE
        return "has a character or a length its column does not allow"
    msg = str(error["msg"])
    for prefix in ("Value error, ", "Input "):
        msg = msg.removeprefix(prefix)
    return msg


def _column_named_in(message: str, row: _Row, fallback: str) -> str:
    """The column a rule across fields is reported at: the first column its message names
    (the rules in `master` and `locations` name the fields they compare), else `fallback`."""
    text = str(message)
    code = row.raw.get("code", "").strip()
    if code:  # the messages start with the record's code, which must not pass for a column
        text = re.sub(rf"(?<![\w-]){re.escape(code)}(?![\w-])", " ", text)
    found = [
        (m.start(), name)
        for name in row.raw
        if (m := re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text))
    ]
    return min(found)[1] if found else fallback


# --- Import ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MasterFiles:
    """What `import_master` returns: master data checked as a whole, routings, locations."""

    master: MasterData
    routings: tuple[Routing, ...] = ()
    locations: tuple[Location, ...] = ()


def _materials(data: str | bytes, problems: _Problems) -> list[Material]:
    materials: list[Material] = []
    rows: dict[str, int] = {}  # code -> row
    for row in _read(data, FileKind.MATERIALS, problems):
        code = row.values.get("code")
        if code is not None and "code" not in row.bad:
            if code in rows:
                problems.at(row, "code", f"is given twice (first at row {rows[code]})")
                continue
            rows[code] = row.number
        material = _build(Material, row, problems, fallback="code")
        if material is not None:
            materials.append(material)
    return materials


def _boms(
    data: str | bytes, problems: _Problems, materials: Mapping[str, Material] | None
) -> list[Bom]:
    lines: dict[str, list[tuple[_Row, BomLine]]] = {}
    outputs: dict[str, tuple[Decimal, int]] = {}
    first_row: dict[str, _Row] = {}  # parent -> its first row
    named: dict[tuple[str, str], _Row] = {}  # (parent, component) -> the row naming it first
    ok = True
    for row in _read(data, FileKind.BOM_LINES, problems):
        line = _build(
            BomLine, row, problems, skip=("parent", "output_quantity"), fallback="component"
        )
        ok = ok and line is not None
        parent = row.values.get("parent")
        if parent is not None and not re.fullmatch(CODE_PATTERN, parent):
            problems.at(row, "parent", NOT_A_CODE)
            parent, ok = None, False
        if parent is not None:
            first_row.setdefault(parent, row)
        output = row.values.get("output_quantity", Decimal(1))
        if "output_quantity" in row.bad:
            ok = False
        elif output <= 0:
            problems.at(row, "output_quantity", "should be greater than 0")
            ok = False
        elif parent is not None:
            first = outputs.setdefault(parent, (output, row.number))
            if first[0] != output:
                problems.at(
                    row,
                    "output_quantity",
                    f"differs from {_decimal_cell(first[0])}, given for {parent} at row {first[1]}",
                )
                ok = False
        component = row.values.get("component")
        if parent is None or component is None or "component" in row.bad:
            continue
        if materials is not None and component not in materials:
            problems.at(row, "component", "is no material of materials.csv")
            ok = False
        earlier = named.setdefault((parent, component), row)
        if earlier is not row:
            problems.at(
                row,
                "component",
                f"is a component of {parent} twice (first at row {earlier.number}); give it "
                "once with the summed quantity",
            )
            ok = False
        elif line is not None:
            lines.setdefault(parent, []).append((row, line))
    if materials is not None:
        for p, row in first_row.items():
            if p not in materials:
                problems.at(row, "parent", "is no material of materials.csv")
                ok = False
            elif materials[p].bought:
                problems.at(
                    row,
                    "parent",
                    f"is {materials[p].kind.value}: a bought material has no bill of materials",
                )
                ok = False
    boms = [
        Bom(
            parent=p,
            output_quantity=outputs.get(p, (Decimal(1), 0))[0],
            lines=tuple(ln for _, ln in rows),
        )
        for p, rows in lines.items()
    ]
    # Every cycle, each at the line that closes it (the cycle's line latest in the file, as a
    # reader going down meets it): report one, leave that line out, look again.
    remaining = {bom.parent: bom for bom in boms}
    while (found := find_cycle(remaining.values())) is not None:
        edges = list(itertools.pairwise(found))
        last = max(range(len(edges)), key=lambda i: named[edges[i]].number)
        parent, component = edges[last]
        cycle = [p for p, _ in edges[last + 1 :] + edges[: last + 1]] + [component]
        problems.at(
            named[(parent, component)],
            "component",
            "closes a cycle of bills of materials: " + " -> ".join(cycle),
        )
        ok = False
        bom = remaining[parent]
        rest = tuple(ln for ln in bom.lines if ln.component != component)
        if rest:
            remaining[parent] = bom.model_copy(update={"lines": rest})
        else:
            del remaining[parent]
    return boms if ok else []


def _routings(
    data: str | bytes,
    problems: _Problems,
    master: MasterData | None,
    products: Iterable[str] | None,
    lines: Iterable[str] | None,
    asset_types: Iterable[str] | None,
) -> list[Routing]:
    ops: dict[str, dict[int, tuple[_Row, Operation]]] = {}
    ok = True
    for row in _read(data, FileKind.ROUTINGS, problems):
        product = row.values.get("product")
        if product is not None and not re.fullmatch(CODE_PATTERN, product):
            problems.at(row, "product", NOT_A_CODE)
            product = None
        op = _build(
            Operation,
            row,
            problems,
            rename={"number": "operation"},
            skip=("product",),
            fallback="work_centre",
            rule_column="work_centre",  # an operation's only rule across fields
        )
        if op is None or product is None:
            ok = False
            continue
        mine = ops.setdefault(product, {})
        if op.number in mine:
            problems.at(
                row,
                "operation",
                f"is given twice for {product} (first at row {mine[op.number][0].number})",
            )
            ok = False
            continue
        consumed = {c: r for r, o in mine.values() for c in o.components}
        twice = [c for c in op.components if c in consumed]
        if twice:
            problems.at(
                row,
                "components",
                f"consumes {', '.join(twice)}, consumed already at row {consumed[twice[0]].number}",
            )
            ok = False
            continue
        mine[op.number] = (row, op)
    routings = [
        Routing(product=p, operations=tuple(o for _, (_, o) in sorted(by_number.items())))
        for p, by_number in ops.items()
    ]
    for problem in routing_problems(
        routings, master, products=products, lines=lines, asset_types=asset_types
    ):
        by_number = ops[problem.product]
        if problem.operation is None:
            row = min((r for r, _ in by_number.values()), key=lambda r: r.number)
        else:
            row = by_number[problem.operation][0]
        problems.add(row.number, problem.field, None, problem.reason)  # it names the value
        ok = False
    return routings if ok else []


def _locations(
    data: str | bytes, problems: _Problems, known_paths: Iterable[str] | None
) -> list[Location]:
    locations: list[Location] = []
    rows: dict[str, _Row] = {}
    ok = True
    for row in _read(data, FileKind.LOCATIONS, problems):
        code = row.values.get("code")
        if isinstance(code, str) and code in rows:
            problems.at(row, "code", f"is given twice (first at row {rows[code].number})")
            ok = False
            continue
        location = _build(Location, row, problems, fallback="code")
        if location is None:
            ok = False
            continue
        locations.append(location)
        rows[location.code] = row
    for problem in location_problems(locations, known_paths):
        problems.add(rows[problem.code].number, problem.field, None, problem.reason)
        ok = False
    return locations if ok else []


def _raise_if(problems: _Problems) -> None:
    if problems.items:
        raise MasterCsvError(problems.items)


def _in_row_order(problems: Iterable[CsvProblem]) -> list[CsvProblem]:
    """Each file's problems by row (a file's own first) and within a row by column, files in
    the order first met."""
    problems = list(problems)
    order: dict[str, int] = {}
    for p in problems:
        order.setdefault(p.file, len(order))
    position = {
        (kind.file_name, c.name): i
        for kind, columns in COLUMNS.items()
        for i, c in enumerate(columns)
    }
    return sorted(
        problems,
        key=lambda p: (order[p.file], p.row or 0, position.get((p.file, p.column or ""), -1)),
    )


def import_materials(data: str | bytes) -> tuple[Material, ...]:
    """materials.csv as materials; MasterCsvError with every problem if it has any."""
    problems = _Problems(FileKind.MATERIALS)
    materials = _materials(data, problems)
    _raise_if(problems)
    return tuple(materials)


def import_bom_lines(
    data: str | bytes, materials: Iterable[Material] | None = None
) -> tuple[Bom, ...]:
    """bom_lines.csv as bills of materials, checked against `materials` when given."""
    problems = _Problems(FileKind.BOM_LINES)
    by_code = None if materials is None else {m.code: m for m in materials}
    boms = _boms(data, problems, by_code)
    _raise_if(problems)
    return tuple(boms)


def import_routings(
    data: str | bytes,
    master: MasterData | None = None,
    *,
    products: Iterable[str] | None = None,
    lines: Iterable[str] | None = None,
    asset_types: Iterable[str] | None = None,
) -> tuple[Routing, ...]:
    """routings.csv as routings, operations in number order, checked as `routing_problems`
    does against what is given."""
    problems = _Problems(FileKind.ROUTINGS)
    routings = _routings(data, problems, master, products, lines, asset_types)
    _raise_if(problems)
    return tuple(routings)


def import_locations(
    data: str | bytes, known_paths: Iterable[str] | None = None
) -> tuple[Location, ...]:
    """locations.csv as locations, checked as a whole and against `known_paths` if given."""
    problems = _Problems(FileKind.LOCATIONS)
    locations = _locations(data, problems, known_paths)
    _raise_if(problems)
    return tuple(locations)


def import_master(
    files: Mapping[str, str | bytes],
    *,
    known_paths: Iterable[str] | None = None,
    products: Iterable[str] | None = None,
    lines: Iterable[str] | None = None,
    asset_types: Iterable[str] | None = None,
) -> MasterFiles:
    """The files by name (materials.csv required, the others optional) as master data checked
    across files: components and routed products against materials.csv, routing components
    against bom_lines.csv. MasterCsvError with the problems of every file if any has one."""
    names = {kind.file_name: kind for kind in FileKind}
    found: list[CsvProblem] = []
    for name in files:
        if name not in names:
            found.append(
                CsvProblem(
                    name,
                    None,
                    None,
                    None,
                    "is not a master data file; they are: " + ", ".join(names),
                )
            )
    material_problems = _Problems(FileKind.MATERIALS)
    if FileKind.MATERIALS.file_name in files:
        materials = _materials(files[FileKind.MATERIALS.file_name], material_problems)
    else:
        materials = []
        material_problems.add(None, None, None, "is missing: master data starts from materials")
    by_code = None if material_problems.items else {m.code: m for m in materials}
    bom_problems = _Problems(FileKind.BOM_LINES)
    boms: list[Bom] = []
    if FileKind.BOM_LINES.file_name in files:
        boms = _boms(files[FileKind.BOM_LINES.file_name], bom_problems, by_code)
    master = None
    if not material_problems.items and not bom_problems.items:
        master = MasterData(materials=tuple(materials), boms=tuple(boms))
    routing_problems_ = _Problems(FileKind.ROUTINGS)
    routings: list[Routing] = []
    if FileKind.ROUTINGS.file_name in files:
        routings = _routings(
            files[FileKind.ROUTINGS.file_name],
            routing_problems_,
            master,
            products,
            lines,
            asset_types,
        )
    location_problems_ = _Problems(FileKind.LOCATIONS)
    locations: list[Location] = []
    if FileKind.LOCATIONS.file_name in files:
        locations = _locations(files[FileKind.LOCATIONS.file_name], location_problems_, known_paths)
    for p in (material_problems, bom_problems, routing_problems_, location_problems_):
        found.extend(p.items)
    if found:
        raise MasterCsvError(found)
    assert master is not None  # no problem in materials or bills of materials
    return MasterFiles(master, tuple(routings), tuple(locations))
