"""The XML side of B2MML: MESA's schemas loaded once, untrusted documents parsed safely and
validated, the BOD envelope (ApplicationArea, verb, nouns) written and read, and the value
encodings (decimals, times, durations) B2MML leaves to the sender.

Untrusted input. A partner's document is refused before it is parsed when it is larger than
`MAX_DOCUMENT_BYTES`, is not UTF-8, or carries a document type declaration (`<!DOCTYPE`, and so
any `<!ENTITY`): B2MML needs neither, and refusing them closes the entity-expansion ("billion
laughs") and external-entity attacks whatever the parser would do with them. Only then is it
parsed (`xml.etree.ElementTree`), refused if nested deeper than `MAX_DEPTH` (the validator
recurses), and validated against the vendored schemas. Those are read from the package alone
(`allow="local"`: no schema import reaches the network) and location hints in a document are
ignored, so a document cannot choose the schema it is checked against.

Encodings. Quantities are written as `xsd:decimal` literals of the exact `Decimal` (never
through a float, never in exponent form) and read back digit for digit. Times are xsd:dateTime
in UTC with microseconds (`2026-03-01T06:00:00.000000Z`); on import any zone offset is accepted
and converted, a time without a zone is refused (its instant is unknown), and so is one finer
than a microsecond. Lead times are xsd:duration in whole days (`P5D`).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from decimal import Decimal
from itertools import islice
from pathlib import Path

import xmlschema
from pydantic import ValidationError

NS = "http://www.mesa.org/xml/B2MML"

# The release the vendored schemas carry in their headers (b2mml_schemas/README.md).
RELEASE_ID = "0701"

# A B2MML exchange is master data or one schedule; 16 MiB is far beyond any of Kiln's.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024

# Deeper nesting than any B2MML document of Kiln's (lots split into parts of parts) is refused
# before validation, whose recursion it would otherwise exhaust.
MAX_DEPTH = 64

# The schema folder ships inside the package (pyproject's package-data).
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "b2mml_schemas"

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DATETIME = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$",
)
_DECIMAL = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_DAYS = re.compile(r"^P(\d+)D$")
# Characters XML 1.0 cannot carry at all, not even as a character reference.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_DECLARED_ENCODING = re.compile(r"""^<\?xml[^>]*encoding\s*=\s*["']([^"']+)["']""")

ET.register_namespace("", NS)


class B2mmlError(ValueError):
    """A B2MML document Kiln cannot take; the message names the element and what is wrong."""


@functools.cache
def schema() -> xmlschema.XMLSchema:
    """MESA's schemas, every one (AllSchemas.xsd). Built once: it takes seconds."""
    return xmlschema.XMLSchema(str(SCHEMA_DIR / "AllSchemas.xsd"), allow="local")


def q(name: str) -> str:
    """The qualified tag of a B2MML element."""
    return f"{{{NS}}}{name}"


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# -- writing ---------------------------------------------------------------------------------


def sub(parent: ET.Element, name: str, text: str | None = None) -> ET.Element:
    """A new child `name` of `parent`, with `text` if given."""
    child = ET.SubElement(parent, q(name))
    if text is not None:
        bad = _NOT_XML.search(text)
        if bad:
            raise ValueError(
                f"{name}: {text!r} has the character U+{ord(bad.group()):04X}, which XML "
                "cannot carry"
            )
        child.text = text
    return child


def envelope(
    verb: str, noun: str, *, created_us: int, sender: str | None
) -> tuple[ET.Element, ET.Element]:
    """`<{verb}{noun}>` with its ApplicationArea and the verb element in its DataArea, and that
    DataArea, to which the caller appends the nouns."""
    root = ET.Element(q(verb + noun), {"releaseID": RELEASE_ID})
    area = sub(root, "ApplicationArea")
    if sender is not None:
        sub(sub(area, "Sender"), "LogicalID", sender)
    sub(area, "CreationDateTime", format_time(created_us))
    data = sub(root, "DataArea")
    sub(data, verb)
    return root, data


def serialise(root: ET.Element) -> bytes:
    """The document as UTF-8 bytes, checked against the schemas: an export that does not
    validate is a bug in Kiln, raised here rather than found by a partner."""
    ET.indent(root)
    validate(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    # A parser reads a bare carriage return as a line feed; as a reference it stays itself.
    # Kiln's indentation has none, so every CR here is one of a value's.
    return document.replace(b"\r", b"&#13;")


def value(
    parent: ET.Element,
    name: str,
    ident: str,
    text: str,
    data_type: str,
    unit: str | None = None,
) -> None:
    """A property or parameter `name` (`<ID>`, then one `<Value>`) of `parent`."""
    prop = sub(parent, name)
    sub(prop, "ID", ident)
    v = sub(prop, "Value")
    sub(v, "ValueString", text)
    sub(v, "DataType", data_type)
    if unit is not None:
        sub(v, "UnitOfMeasure", unit)


def quantity(parent: ET.Element, amount: str, data_type: str, unit: str | None) -> None:
    """A `<Quantity>` of `parent`."""
    element = sub(parent, "Quantity")
    sub(element, "QuantityString", amount)
    sub(element, "DataType", data_type)
    if unit is not None:
        sub(element, "UnitOfMeasure", unit)


def format_decimal(number: Decimal) -> str:
    """An xsd:decimal literal of `number`, exactly: no exponent, the digits it carries."""
    return format(number, "f")


def format_time(us: int) -> str:
    """Microseconds since the epoch as an xsd:dateTime in UTC."""
    moment = _EPOCH + dt.timedelta(microseconds=us)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_days(days: int) -> str:
    return f"P{days}D"


# -- reading ---------------------------------------------------------------------------------


def parse(data: bytes | str, accepted: Iterable[str]) -> ET.Element:
    """The root of a document whose root element is one of `accepted` (local names), parsed
    and validated; B2mmlError for anything else."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise B2mmlError(
            f"document refused: {len(raw):,} bytes is more than the {MAX_DOCUMENT_BYTES:,} "
            "a B2MML document may have"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise B2mmlError(
            f"document refused: it is not UTF-8 ({e.reason} at byte {e.start})"
        ) from None
    declared = _DECLARED_ENCODING.match(text.lstrip("\ufeff"))
    if declared and declared.group(1).lower().replace("_", "-") not in ("utf-8", "us-ascii"):
        raise B2mmlError(
            f"document refused: it declares encoding {declared.group(1)}; B2MML is taken "
            "in UTF-8 only"
        )
    for marker in ("<!DOCTYPE", "<!ENTITY"):
        if marker in text:
            raise B2mmlError(
                f"document refused: it has a {marker} declaration; B2MML needs none, and "
                "entity declarations are how XML bombs and external-entity attacks work"
            )
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as e:
        raise B2mmlError(f"not well-formed XML: {e}") from None
    if _depth(root) > MAX_DEPTH:
        raise B2mmlError(f"document refused: elements are nested deeper than {MAX_DEPTH} levels")
    names = tuple(accepted)
    if root.tag not in {q(n) for n in names}:
        raise B2mmlError(
            f"/{local(root.tag)}: the root element must be one of {', '.join(names)} "
            f"in namespace {NS}"
        )
    validate(root)
    return root


def _depth(root: ET.Element) -> int:
    deepest = 0
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        stack.extend((c, depth + 1) for c in element)
    return deepest


def validate(root: ET.Element) -> None:
    """B2mmlError naming the first (up to three) schema violations in `root`, if any."""
    errors = list(islice(schema().iter_errors(root, use_location_hints=False), 3))
    if errors:
        raise B2mmlError(
            "not valid B2MML: "
            + "; ".join(f"{_path(e.path)}: {_unqualified(e.reason or e.message)}" for e in errors)
        )


def _path(path: str | None) -> str:
    # xmlschema names elements with the namespace prefix of its map ("b2mml:ID" or "{ns}ID");
    # the local names read better in a message.
    if not path:
        return "/"
    return re.sub(r"\{[^}]*\}|\b[A-Za-z][\w.-]*:(?=[A-Za-z])", "", path)


def _unqualified(reason: str) -> str:
    return reason.replace(f"{{{NS}}}", "")


def where(path: str, element: ET.Element) -> str:
    """`path` extended by `element`'s local name, for messages."""
    return f"{path}/{local(element.tag)}"


def child(element: ET.Element, name: str) -> ET.Element | None:
    return element.find(q(name))


def children(element: ET.Element, name: str) -> Iterator[ET.Element]:
    return iter(element.findall(q(name)))


def text(element: ET.Element, name: str) -> str | None:
    """The text of `element`'s first child `name` ("" if it is empty), or None if absent."""
    found = element.find(q(name))
    if found is None:
        return None
    return found.text or ""


def values(element: ET.Element, name: str) -> dict[str, tuple[str, str | None]]:
    """`element`'s properties or parameters `name` by ID: (first ValueString, its unit).
    A property without a value is left out."""
    found: dict[str, tuple[str, str | None]] = {}
    for prop in children(element, name):
        ident = text(prop, "ID")
        v = child(prop, "Value")
        if ident is None or v is None or ident in found:
            continue
        found[ident] = (text(v, "ValueString") or "", text(v, "UnitOfMeasure"))
    return found


def read_decimal(literal: str, what: str) -> Decimal:
    """The exact Decimal of an xsd:decimal literal; B2mmlError naming `what` otherwise."""
    stripped = literal.strip()
    if not _DECIMAL.match(stripped):
        raise B2mmlError(f"{what}: {literal!r} is not a decimal number")
    return Decimal(stripped)


def read_int(literal: str, what: str) -> int:
    stripped = literal.strip()
    if not re.fullmatch(r"[+-]?\d+", stripped):
        raise B2mmlError(f"{what}: {literal!r} is not an integer")
    return int(stripped)


def read_days(literal: str, what: str) -> int:
    match = _DAYS.match(literal.strip())
    if match is None:
        raise B2mmlError(f"{what}: {literal!r} is not a duration in whole days (P5D)")
    return int(match.group(1))


def read_time(literal: str, what: str) -> int:
    """Microseconds since the epoch of an xsd:dateTime that carries its zone."""
    match = _DATETIME.match(literal.strip())
    if match is None:
        raise B2mmlError(f"{what}: {literal!r} is not an xsd:dateTime")
    base, fraction, zone = match.groups()
    if zone is None:
        raise B2mmlError(f"{what}: {literal!r} has no time zone, so its instant is unknown")
    fraction = fraction or ""
    if fraction[6:].strip("0"):
        raise B2mmlError(f"{what}: {literal!r} is finer than a microsecond")
    tz = dt.UTC if zone == "Z" else dt.datetime.strptime(zone, "%z").tzinfo
    try:
        moment = dt.datetime.fromisoformat(base).replace(tzinfo=tz)
    except ValueError as e:
        raise B2mmlError(f"{what}: {literal!r}: {e}") from None
    delta = moment - _EPOCH
    micros = int(fraction[:6].ljust(6, "0"))
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + micros


def data_area(root: ET.Element) -> ET.Element:
    """The DataArea of a verb document (the schema requires one of every verb document)."""
    area = root.find(q("DataArea"))
    assert area is not None
    return area


def reason(error: ValidationError) -> str:
    """The first complaint of a Kiln model about imported values, with its field."""
    first = error.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    return f"{loc}: {first['msg']}" if loc else str(first["msg"])
