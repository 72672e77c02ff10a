"""InfluxDB line protocol into namespace values, so Telegraf and every Influx client can feed Kiln.

    weather,site=plant1,area=yard temperature=21.5,humidity=40i,ok=true 1767225600000000000
    -> acme/area/yard/site/plant1/weather/temperature, .../weather/humidity, .../weather/ok

A line is a measurement, optional tags (`key=value`, comma-separated), one or more fields and an
optional timestamp (nanoseconds by default; `precision` says otherwise). Field values are
floats, integers (`40i`), unsigned integers (`40u`), booleans (`t`, `true`, `F`, ...) or
double-quoted strings. Commas, spaces and equals signs in names are escaped with a backslash,
and quotes and backslashes in strings (the InfluxDB 1.x/2.x line protocol reference); a double
quote is a literal character in a measurement or a tag.

Each field becomes one value, at the path `{prefix}/{key}/{value}/.../{measurement}/{field}`:
each tag as two segments, its key then its value, in the order of the keys (sorted, as Influx
itself sorts them). The prefix is the database or bucket the client writes to, e.g.
`acme/plant1`. The mapping is injective: a path has two segments per tag, so the number of tags
and each key, value, measurement and field can be read back from it, and two different series
(`m,host=a f=1` and `m,site=a f=1`) can never end up as one tag. Names are never rewritten: a
measurement, tag key, tag value or field name that is not a valid path segment (1-64 letters,
digits, `_`, `-` and `.`, not starting with `-` or `.`; `kiln.core.values.validate_path`) makes
its line an error naming it.

Every value goes through the rules all ingest paths share (`kiln.core.admission`): its
timestamp inside the acceptance window (nanoseconds are floored to Kiln's microseconds), a
finite number.

`parse_body` reads a raw request body, inflating gzip in pieces: it stops at the inflated-size
limit and at the value limit as it goes, so the work done for a rejected body is bounded by the
limits, and it reads line by line so a worker thread parsing it returns to the interpreter
(and lets the event loop run) often.

Pure: no I/O. `parse_lines` never raises for bad input: each bad line is an error with its
line number, and the other lines are still read.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from kiln.connectors.http.codec import BodyError, Points
from kiln.core.admission import TimeWindow, value_problem
from kiln.core.errors import InvalidPathError
from kiln.core.quality import Quality
from kiln.core.values import _SEGMENT, Scalar, TagValue, validate_path

PRECISION_US = {"ns": None, "n": None, "us": 1, "u": 1, "ms": 1_000, "s": 1_000_000}
_CHUNK = 1 << 20  # bytes inflated or split per call: no single C call holds the GIL for long
MAX_LINE_BYTES = 1 << 20  # a longer line is an error, not held in memory nor parsed
_SEGMENT_RULE = (
    "a path segment is 1-64 characters of letters, digits, '_', '-' and '.', not starting "
    "with '-' or '.'; Kiln never rewrites names, so rename it at the source"
)
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


def _split(text: str, separators: str, *, quotes: bool = True) -> list[tuple[str, str]]:
    """Cut `text` at unescaped (and, with `quotes`, unquoted) separators: (piece, separator
    found or ''). Double quotes delimit only string field values; in a measurement or a tag
    they are literal characters."""
    if len(separators) == 1 and "\\" not in text and not (quotes and '"' in text):
        pieces = text.split(separators)
        return [(p, separators) for p in pieces[:-1]] + [(pieces[-1], "")]
    out: list[tuple[str, str]] = []
    start, i, quoted = 0, 0, False
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            i += 2
            continue
        if c == '"' and quotes:
            quoted = not quoted
        elif not quoted and c in separators:
            out.append((text[start:i], c))
            start = i + 1
        i += 1
    if quoted:
        raise ValueError("a string field value has no closing double quote")
    out.append((text[start:], ""))
    return out


def _unescape(text: str, chars: str) -> str:
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in chars:
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _typed_value(raw: str) -> Scalar:
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
            f"field value {raw[:40]!r} is not a number, an integer (42i), a boolean or a "
            "quoted string"
        ) from None
    return value


def _field_value(raw: str) -> Scalar:
    """A field's value, held to the rules every ingest path applies (kiln.core.admission)."""
    value = _typed_value(raw)
    problem = value_problem(value, Quality.GOOD)
    if problem:
        raise ValueError(f"field value {raw[:40]!r}: {problem}")
    return value


def parse_line(line: str) -> Point:
    """One line (raises ValueError saying what is wrong)."""
    end = _head_end(line)
    head_text = line[:end]
    sections = [head_text] + [piece for piece, _ in _split(line[end + 1 :], " ") if piece]
    if len(sections) < 2 or not head_text:
        raise ValueError("a line needs a measurement and at least one field, e.g. cpu value=1")
    if len(sections) > 3:
        raise ValueError("unexpected text after the timestamp (unescaped space in a name?)")
    head = [piece for piece, _ in _split(head_text, ",", quotes=False)]
    measurement = _unescape(head[0], ", =\\")
    if not measurement:
        raise ValueError("the measurement name is empty")
    tags = []
    for item in head[1:]:
        key, sep, value = _cut(item, quotes=False)
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


def _head_end(line: str) -> int:
    """Where the measurement and tags end: the first unescaped space, quotes or not."""
    if "\\" not in line:
        end = line.find(" ")
        return len(line) if end < 0 else end
    i = 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
        elif line[i] == " ":
            return i
        else:
            i += 1
    return len(line)


def _cut(item: str, *, quotes: bool = True) -> tuple[str, str, str]:
    """Split at the first unescaped '='."""
    if "\\" not in item and not (quotes and '"' in item):
        return item.partition("=")
    for piece, sep in _split(item, "=", quotes=quotes):
        if sep:
            return piece, sep, item[len(piece) + 1 :]
        return piece, "", ""
    return item, "", ""


def parse_lines(
    body: str,
    *,
    prefix: str,
    precision: str,
    receive_us: int,
    window: TimeWindow | None = None,
    max_values: int | None = None,
) -> tuple[list[TagValue], list[LineError]]:
    """Every field of every line as a TagValue under `prefix`, and the lines that failed.

    `window` is the acceptance window of timestamps (default: `receive_us` plus ten minutes);
    more than `max_values` values raise BodyError (413) as soon as the line that passes it is read.
    """
    reader = _Lines(prefix, precision, receive_us, window, max_values)
    for number, line in enumerate(body.split("\n"), start=1):
        reader.line(number, line)
    return [tv for _, tv in reader.points.tag_values()], reader.errors


def parse_body(
    raw: bytes,
    *,
    gzipped: bool,
    max_inflated_bytes: int,
    max_values: int,
    prefix: str,
    precision: str,
    receive_us: int,
    window: TimeWindow,
) -> tuple[Points, list[LineError]]:
    """`parse_lines` for a raw request body, as columns (the index of a point is its position), inflated (gzip) and split in pieces.

    Raises BodyError: 400 for a body that is not gzip, 413 past `max_inflated_bytes` inflated
    or `max_values` values. A line that is not UTF-8 is a line error, the others are kept.
    """
    reader = _Lines(prefix, precision, receive_us, window, max_values)
    chunks = _inflate(raw, max_inflated_bytes) if gzipped else _pieces(raw)
    number = 0
    for line in _split_lines(chunks):
        number += 1
        if line is None:
            reader.errors.append(
                LineError(number, f"longer than {MAX_LINE_BYTES} bytes: split it into lines")
            )
            continue
        try:
            text = line.decode()
        except UnicodeDecodeError as err:
            reader.errors.append(
                LineError(number, f"not valid UTF-8 (the byte at offset {err.start} of the line)")
            )
            continue
        reader.line(number, text)
    return reader.points, reader.errors


class _Lines:
    """Parses lines into values under the rules, counting values against the limit."""

    def __init__(
        self,
        prefix: str,
        precision: str,
        receive_us: int,
        window: TimeWindow | None,
        max_values: int | None,
    ) -> None:
        if precision not in PRECISION_US:
            raise ValueError(f"precision {precision!r} is not one of ns, us, ms, s")
        self.divisor = PRECISION_US[precision]
        self.prefix = prefix.strip("/")
        self.receive_us = receive_us
        self.window = window or TimeWindow.at(receive_us, 600)
        self.max_values = max_values
        self.points = Points()
        self.errors: list[LineError] = []

    def line(self, number: int, line: str) -> None:
        text = line.strip()
        if not text or text.startswith("#"):
            return
        try:
            ts_us, paths, values = self._values(text)
        except ValueError as err:
            self.errors.append(LineError(number, str(err)))
            return
        points = self.points
        for path, value in zip(paths, values, strict=True):
            points.append(len(points), path, value, ts_us, Quality.GOOD)
        if self.max_values is not None and len(points) > self.max_values:
            raise BodyError(
                f"more than {self.max_values} values by line {number}: at most "
                f"{self.max_values} per request (ingest.max_items); send smaller batches",
                413,
            )

    def _values(self, text: str) -> tuple[int, list[str], list[Scalar]]:
        point = parse_line(text)
        if point.timestamp is None:
            ts_us = self.receive_us
        elif self.divisor is None:
            ts_us = point.timestamp // 1_000  # nanoseconds: floored to Kiln's microseconds
        else:
            ts_us = point.timestamp * self.divisor
        problem = self.window.problem(ts_us)
        if problem:
            raise ValueError(problem)
        # Key and value both: `m,host=a` and `m,site=a` are two series, so two paths.
        names: list[str] = []
        for k, v in point.tags:
            names += [_named(f"tag key {k!r}", k), _named(f"tag value {v!r} (tag {k!r})", v)]
        names.append(_named(f"measurement {point.measurement!r}", point.measurement))
        base = "/".join([self.prefix, *names]).strip("/")
        paths, values = [], []
        for name, value in point.fields:
            path = f"{base}/{_named(f'field {name!r}', name)}"
            try:
                validate_path(path)
            except InvalidPathError as err:
                raise ValueError(str(err)) from None
            paths.append(path)
            values.append(value)
        return ts_us, paths, values


def _named(what: str, name: str) -> str:
    """`name` if it is a valid path segment, else the line's error naming it and the rule."""
    if not _SEGMENT.fullmatch(name):
        shown = what if len(what) <= 120 else what[:117] + "..."
        raise ValueError(f"{shown} is not a valid path segment: {_SEGMENT_RULE}")
    return name


def _pieces(raw: bytes) -> Iterator[bytes]:
    view = memoryview(raw)
    for start in range(0, len(raw), _CHUNK):
        yield bytes(view[start : start + _CHUNK])


def _inflate(raw: bytes, limit: int) -> Iterator[bytes]:
    """The gzip members of `raw` inflated a piece at a time, refused past `limit` bytes."""
    total = 0
    data = raw
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        while True:
            try:
                out = inflater.decompress(data, _CHUNK)
            except zlib.error as err:
                raise BodyError(f"the body is not valid gzip: {err}") from None
            data = inflater.unconsumed_tail
            total += len(out)
            if total > limit:
                raise BodyError(
                    f"the body inflates to more than {limit} bytes "
                    "(ingest.max_inflated_bytes): send smaller batches",
                    413,
                )
            if out:
                yield out
            if inflater.eof or not (out or data):
                break
        if not inflater.eof:
            raise BodyError("the body is not valid gzip: it ends before the gzip stream does")
        data = inflater.unused_data  # a next gzip member, as `gzip -c a b` writes


def _split_lines(chunks: Iterable[bytes], max_line: int = MAX_LINE_BYTES) -> Iterator[bytes | None]:
    """The lines of the concatenated `chunks` (a line may span chunks); None for a line longer
    than `max_line` bytes, which is skipped rather than held in memory and parsed."""
    pending: list[bytes] = []
    size = 0
    too_long = False
    for chunk in chunks:
        lines = chunk.split(b"\n")
        for complete in lines[:-1]:
            if too_long or size + len(complete) > max_line:
                yield None
            else:
                pending.append(complete)
                yield b"".join(pending)
            pending, size, too_long = [], 0, False
        last = lines[-1]
        if too_long or size + len(last) > max_line:
            pending, size, too_long = [], 0, True
        else:
            pending.append(last)
            size += len(last)
    if too_long:
        yield None
    elif size:
        yield b"".join(pending)


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
