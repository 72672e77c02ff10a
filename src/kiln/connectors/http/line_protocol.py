"""InfluxDB line protocol into namespace values, so Telegraf and every Influx client can feed Kiln.

    weather,site=plant1,area=yard temperature=21.5,humidity=40i,ok=true 1767225600000000000

A line is a measurement, optional tags (`key=value`, comma-separated), one or more fields and an
optional timestamp (nanoseconds by default; `precision` says otherwise). Field values are
floats, integers (`40i`), unsigned integers (`40u`), booleans (`t`, `true`, `F`, ...) or
double-quoted strings. Commas, spaces and equals signs in names are escaped with a backslash,
and quotes and backslashes in strings (the InfluxDB 1.x/2.x line protocol reference).

Each field becomes one value, at the path `{prefix}/{tag values...}/{measurement}/{field}`:
the tag values in the order of their keys (sorted, as Influx itself sorts them), each made a
valid path segment (characters outside letters, digits, `_`, `.` and `-` become `_`). The
prefix is the database or bucket the client writes to, e.g. `acme/plant1`.

Pure: no I/O. `parse_lines` never raises for bad input: each bad line is an error with its
line number, and the other lines are still read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from kiln.core.quality import Quality
from kiln.core.values import Scalar, TagValue

PRECISION_US = {"ns": None, "n": None, "us": 1, "u": 1, "ms": 1_000, "s": 1_000_000}
_BAD_SEGMENT = re.compile(r"[^A-Za-z0-9_.\-]")
_INT = re.compile(r"^-?\d+$")
_BOOLS = {
    "t": True, "T": True, "true": True, "True": True, "TRUE": True,
    "f": False, "F": False, "false": False, "False": False, "FALSE": False,
}  # fmt: skip
_I64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True, slots=True)
class LineError:
    line: int  # 1-based
    error: str


@dataclass(frozen=True, slots=True)
class Point:
    """One parsed line."""

    measurement: str
    tags: tuple[tuple[str, str], ...]
    fields: tuple[tuple[str, Scalar], ...]
    timestamp: int | None  # in the request's precision


def segment(text: str) -> str:
    """A path segment for a name or tag value."""
    cleaned = _BAD_SEGMENT.sub("_", text)[:64]
    return cleaned if cleaned and cleaned[0] not in ".-" else "_" + cleaned[:63]


def _split(text: str, separators: str) -> Iterator[tuple[str, str]]:
    """Cut `text` at unescaped, unquoted separators: (piece, separator found or '')."""
    start, i, quoted = 0, 0, False
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif not quoted and c in separators:
            yield text[start:i], c
            start = i + 1
        i += 1
    if quoted:
        raise ValueError("a string field value has no closing double quote")
    yield text[start:], ""


def _unescape(text: str, chars: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in chars:
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _field_value(raw: str) -> Scalar:
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"'):
            raise ValueError(f"string field value {raw!r} is not closed by a double quote")
        return _unescape(raw[1:-1], '"\\')
    if raw in _BOOLS:
        return _BOOLS[raw]
    if raw.endswith(("i", "u")) and _INT.match(raw[:-1]):
        number = int(raw[:-1])
        if raw.endswith("u") and number < 0:
            raise ValueError(f"unsigned field value {raw!r} is negative")
        if raw.endswith("i") and not _I64[0] <= number <= _I64[1]:
            raise ValueError(f"integer field value {raw!r} does not fit 64 bits")
        return number
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(
            f"field value {raw!r} is not a number, an integer (42i), a boolean or a quoted string"
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"field value {raw!r} is not finite")
    return value


def parse_line(line: str) -> Point:
    """One line (raises ValueError saying what is wrong)."""
    sections = [piece for piece, _ in _split(line, " ")]
    sections = [s for s in sections if s]  # runs of spaces
    if len(sections) < 2:
        raise ValueError("a line needs a measurement and at least one field, e.g. cpu value=1")
    if len(sections) > 3:
        raise ValueError("unexpected text after the timestamp (unescaped space in a name?)")
    head = [piece for piece, _ in _split(sections[0], ",")]
    measurement = _unescape(head[0], ", =\\")
    if not measurement:
        raise ValueError("the measurement name is empty")
    tags = []
    for item in head[1:]:
        key, sep, value = _cut(item)
        if not sep or not key or not value:
            raise ValueError(f"tag {item!r} is not key=value")
        tags.append((_unescape(key, ", =\\"), _unescape(value, ", =\\")))
    fields = []
    for item, _ in _split(sections[1], ","):
        key, sep, raw = _cut(item)
        if not sep or not key:
            raise ValueError(f"field {item!r} is not key=value")
        fields.append((_unescape(key, ", =\\"), _field_value(raw)))
    timestamp = None
    if len(sections) == 3:
        if not _INT.match(sections[2]):
            raise ValueError(f"timestamp {sections[2]!r} is not an integer")
        timestamp = int(sections[2])
    return Point(measurement, tuple(sorted(tags)), tuple(fields), timestamp)


def _cut(item: str) -> tuple[str, str, str]:
    """Split at the first unescaped '='."""
    for piece, sep in _split(item, "="):
        if sep:
            return piece, sep, item[len(piece) + 1 :]
        return piece, "", ""
    return item, "", ""


def parse_lines(
    body: str, *, prefix: str, precision: str, receive_us: int
) -> tuple[list[TagValue], list[LineError]]:
    """Every field of every line as a TagValue under `prefix`, and the lines that failed."""
    if precision not in PRECISION_US:
        raise ValueError(f"precision {precision!r} is not one of ns, us, ms, s")
    divisor = PRECISION_US[precision]
    values: list[TagValue] = []
    errors: list[LineError] = []
    for number, line in enumerate(body.splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            point = parse_line(text)
        except ValueError as err:
            errors.append(LineError(number, str(err)))
            continue
        if point.timestamp is None:
            ts_us = receive_us
        elif divisor is None:
            ts_us = point.timestamp // 1_000  # nanoseconds: Kiln keeps microseconds
        else:
            ts_us = point.timestamp * divisor
        base = "/".join(
            [prefix.strip("/"), *(segment(v) for _, v in point.tags), segment(point.measurement)]
        ).strip("/")
        for name, value in point.fields:
            values.append(TagValue(f"{base}/{segment(name)}", value, ts_us, Quality.GOOD))
    return values, errors


def format_line(point: Point) -> str:
    """The line protocol text of `point` (the inverse of `parse_line`; tests, tools)."""

    def name(text: str) -> str:
        return re.sub(r"([, =\\])", r"\\\1", text)

    def field(value: Scalar) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return f"{value}i"
        if isinstance(value, float):
            return repr(value)
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    head = ",".join([name(point.measurement), *(f"{name(k)}={name(v)}" for k, v in point.tags)])
    fields = ",".join(f"{name(k)}={field(v)}" for k, v in point.fields)
    tail = f" {point.timestamp}" if point.timestamp is not None else ""
    return f"{head} {fields}{tail}"
