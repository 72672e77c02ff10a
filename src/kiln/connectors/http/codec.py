"""Parsing of `POST /api/v1/ingest` items into TagValues, one precise error per bad item.

Pure: no I/O, no platform. An item is
``{"path": "acme/plant1/line1/filler1/weight", "value": 21.5, "ts": ..., "quality": "good"}``
where `ts` is ISO 8601 with a zone or epoch milliseconds (absent: the receive time) and
`quality` a name or an OPC UA StatusCode (absent: good). Every item goes through the rules all
ingest paths share (`kiln.core.admission`): a timestamp inside the acceptance window, a finite
number unless the quality is Bad.

`parse_body` reads a whole request body, ``{"values": [item, ...]}``, in bounded pieces: it is
run in a worker thread, and parsing one item per call (rather than the whole body in one C
call that holds the GIL) lets the event loop run between items. The item limit is checked
while reading, so the work done for a body over it stops at item `max_items + 1`.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kiln.core.admission import TimeWindow, value_problem
from kiln.core.clock import datetime_to_us
from kiln.core.errors import InvalidPathError
from kiln.core.quality import Quality, parse_quality
from kiln.core.values import Scalar, TagValue, validate_path

_KEYS = frozenset({"path", "value", "ts", "quality"})
# Epoch milliseconds outside 1973..2200 are almost certainly seconds or microseconds by mistake
# (seconds since the epoch stay below 1e11 until the year 5138).
_MS_MIN, _MS_MAX = 100_000_000_000, 7_258_118_400_000
_WS = re.compile(r"[ \t\n\r]*")
_WS_CHARS = frozenset(" \t\n\r")  # not "": an empty slice (the end) is no whitespace
_DECODE_CHUNK = 1 << 20  # bytes decoded per call, so no single C call holds the GIL for long
MAX_VALUE_CHARS = 64 * 1024  # an item is far smaller: path 512, text value 4,096 characters
_VALUE_END = re.compile(r"[,\]}]")
_JSON_STARTS = frozenset('["-0123456789tfnNI')
_SHAPE = 'send {"values": [{"path": ..., "value": ...}, ...]}'


class BodyError(ValueError):
    """The body as a whole cannot be read; `status` is the HTTP answer (400, 413 or 422)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class ItemError:
    index: int
    path: str | None
    error: str


@dataclass(slots=True)
class Points:
    """Parsed points as columns: item index, path, value, source time, quality.

    Plain lists of strings and numbers, which the garbage collector does not track: a request
    of 100k points parsed into 100k objects instead made each full collection (holding the
    GIL, stalling the event loop) take half a second.
    """

    index: list[int] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    values: list[Scalar] = field(default_factory=list)
    source_us: list[int] = field(default_factory=list)
    qualities: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def append(self, index: int, path: str, value: Scalar, source_us: int, quality: int) -> None:
        self.index.append(index)
        self.paths.append(path)
        self.values.append(value)
        self.source_us.append(source_us)
        self.qualities.append(quality)

    def rows(self, keep: Sequence[int]) -> Points:
        """The points at the positions `keep`, in that order."""
        return Points(
            [self.index[i] for i in keep],
            [self.paths[i] for i in keep],
            [self.values[i] for i in keep],
            [self.source_us[i] for i in keep],
            [self.qualities[i] for i in keep],
        )

    def tag_values(self, receive_us: int | None = None) -> list[tuple[int, TagValue]]:
        """(index, TagValue) pairs: for tests and small callers."""
        return [
            (i, TagValue(p, v, ts, q, receive_us))
            for i, p, v, ts, q in zip(
                self.index, self.paths, self.values, self.source_us, self.qualities, strict=True
            )
        ]

    @classmethod
    def of(cls, pairs: Sequence[tuple[int, TagValue]]) -> Points:
        points = cls()
        for i, tv in pairs:
            points.append(i, tv.path, tv.value, tv.source_us, int(tv.quality))
        return points


def parse_body(
    raw: bytes, *, max_items: int, receive_us: int, window: TimeWindow
) -> tuple[Points, list[ItemError]]:
    """A request body into points and item errors.

    Raises BodyError for a body that cannot be read at all: invalid UTF-8 (400, with the byte
    offset), not JSON (400, with the position), nested too deep (400), more than `max_items`
    items (413), or JSON of another shape (422).
    """
    items = read_items(decode_utf8(raw), max_items)
    return parse_points(items, receive_us, window)


def decode_utf8(raw: bytes) -> str:
    """`raw` as text, decoded in pieces; BodyError names the offset of the first bad byte."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    parts: list[str] = []
    for start in range(0, len(raw), _DECODE_CHUNK):
        buffered = len(decoder.getstate()[0])
        try:
            parts.append(decoder.decode(raw[start : start + _DECODE_CHUNK]))
        except UnicodeDecodeError as err:
            raise _bad_utf8(start - buffered + err.start) from None
    try:
        parts.append(decoder.decode(b"", final=True))
    except UnicodeDecodeError:
        raise _bad_utf8(len(raw) - len(decoder.getstate()[0])) from None
    return "".join(parts)


def _bad_utf8(offset: int) -> BodyError:
    return BodyError(f"the body is not valid UTF-8: the byte at offset {offset} is invalid")


def read_items(text: str, max_items: int) -> list[Any]:
    """The items of ``{"values": [...]}`` in `text`, read one value per C call."""
    reader = _Reader(text)
    pos = reader.skip(0)
    if not text.startswith("{", pos):
        if pos >= len(text):
            raise BodyError(f"the body is empty: {_SHAPE}", 422)
        if text[pos] not in _JSON_STARTS:
            raise reader.error("Expecting value", pos)
        raise BodyError(f"the body must be a JSON object: {_SHAPE}", 422)
    items: list[Any] | None = None
    pos = reader.skip(pos + 1)
    if text.startswith("}", pos):
        pos += 1
    else:
        while True:
            if not text.startswith('"', pos):
                raise reader.error("Expecting property name enclosed in double quotes", pos)
            key, pos = reader.value(pos)
            pos = reader.skip(pos)
            if not text.startswith(":", pos):
                raise reader.error("Expecting ':' delimiter", pos)
            pos = reader.skip(pos + 1)
            if key == "values" and text.startswith("[", pos):
                items, pos = reader.array(pos, max_items)
            else:
                _, pos = reader.value(pos)
                if key == "values":
                    raise BodyError(f"'values' must be an array: {_SHAPE}", 422)
            pos = reader.skip(pos)
            if text.startswith(",", pos):
                pos = reader.skip(pos + 1)
            elif text.startswith("}", pos):
                pos += 1
                break
            else:
                raise reader.error("Expecting ',' delimiter", pos)
    if reader.skip(pos) != len(text):
        raise reader.error("Extra data", reader.skip(pos))
    if items is None:
        raise BodyError(f"'values' is missing: {_SHAPE}", 422)
    return items


class _Reader:
    """Reads JSON values one at a time from `text`, with positions in errors."""

    def __init__(self, text: str) -> None:
        self.text = text
        # One decoder per body: its C scanner keeps per-call state, not to be shared by threads.
        self._decoder = json.JSONDecoder()

    def skip(self, pos: int) -> int:
        match = _WS.match(self.text, pos)
        return match.end() if match else pos

    def value(self, pos: int) -> tuple[Any, int]:
        """The JSON value at `pos` and the position after it, reading at most MAX_VALUE_CHARS.

        One `raw_decode` over the whole text would parse a 15 MiB array in one C call, holding
        the GIL (and stalling the event loop) for its whole length. So the value is decoded
        from a slice: up to the first closing character that could end it (an item, a flat
        object, ends at its first '}'), else up to MAX_VALUE_CHARS.
        """
        text = self.text
        if text.startswith("{", pos):
            stop = text.find("}", pos, pos + MAX_VALUE_CHARS) + 1
        else:
            end = _VALUE_END.search(text, pos, pos + MAX_VALUE_CHARS)
            stop = end.start() if end is not None else 0
        if stop > pos:
            try:
                value, used = self._decoder.raw_decode(text[pos:stop])
            except (ValueError, RecursionError):
                pass  # a string or a nested value holds that character: read further
            else:
                if used == stop - pos:
                    return value, stop
        piece = text[pos : pos + MAX_VALUE_CHARS]
        cut = pos + len(piece) < len(text)
        try:
            value, used = self._decoder.raw_decode(piece)
        except json.JSONDecodeError as err:
            if cut:
                raise self._too_long(pos) from None
            raise self.error(err.msg, pos + err.pos) from None
        except ValueError as err:  # e.g. an integer of more digits than Python converts
            raise self.error(str(err), pos) from None
        except RecursionError:
            raise BodyError(
                f"the JSON value at {self._where(pos)} is nested too deeply: an item is a flat "
                'object like {"path": ..., "value": ...}'
            ) from None
        return value, pos + used

    def _too_long(self, pos: int) -> BodyError:
        return BodyError(
            f"the JSON value at {self._where(pos)} is not valid JSON within its first "
            f"{MAX_VALUE_CHARS} characters: an item is a small flat object like "
            '{"path": ..., "value": ...}'
        )

    def array(self, pos: int, max_items: int) -> tuple[list[Any], int]:
        """The items of the array at `pos`; BodyError (413) at item `max_items + 1`."""
        # The hot loop of a large body: the common case (a flat item, then ", ") inline.
        text, decode, find, skip = self.text, self._decoder.raw_decode, self.text.find, self.skip
        items: list[Any] = []
        pos = skip(pos + 1)
        if text.startswith("]", pos):
            return items, pos + 1
        while True:
            if len(items) == max_items:
                raise BodyError(
                    f"more than {max_items} items: at most {max_items} per request "
                    "(ingest.max_items); send smaller batches",
                    413,
                )
            stop = find("}", pos, pos + MAX_VALUE_CHARS) + 1 if text.startswith("{", pos) else 0
            try:
                item, used = decode(text[pos:stop]) if stop else (None, -1)
            except (ValueError, RecursionError):
                used = -1
            if used == stop - pos:
                pos = stop
            else:
                item, pos = self.value(pos)
            items.append(item)
            if text[pos : pos + 1] in _WS_CHARS:
                pos = skip(pos)
            if text.startswith(",", pos):
                pos += 1
                if text[pos : pos + 1] in _WS_CHARS:
                    pos = skip(pos)
            elif text.startswith("]", pos):
                return items, pos + 1
            else:
                raise self.error("Expecting ',' delimiter", pos)

    def error(self, message: str, pos: int) -> BodyError:
        return BodyError(f"the body is not valid JSON: {message} at {self._where(pos)}")

    def _where(self, pos: int) -> str:
        line = self.text.count("\n", 0, pos) + 1
        column = pos - self.text.rfind("\n", 0, pos)
        return f"line {line} column {column} (character {pos})"


def parse_items(
    items: Sequence[Any], receive_us: int, window: TimeWindow | None = None
) -> tuple[list[tuple[int, TagValue]], list[ItemError]]:
    """Split raw items into (index, TagValue) pairs and errors; never raises for bad input.

    `window` is the acceptance window of source timestamps (default: the receive time plus
    ten minutes).
    """
    points, errors = parse_points(items, receive_us, window)
    return points.tag_values(receive_us), errors


def parse_points(
    items: Sequence[Any], receive_us: int, window: TimeWindow | None = None
) -> tuple[Points, list[ItemError]]:
    """`parse_items` into columns."""
    window = window or TimeWindow.at(receive_us, 600)
    good = Points()
    bad: list[ItemError] = []
    for i, item in enumerate(items):
        try:
            path, value, ts, quality = _item(item, receive_us, window)
        except ValueError as err:
            named = item.get("path") if isinstance(item, dict) else None
            bad.append(ItemError(i, named if isinstance(named, str) else None, str(err)))
        else:
            good.append(i, path, value, ts, quality)
    return good, bad


def parse_item(item: Any, receive_us: int, window: TimeWindow | None = None) -> TagValue:
    """One item (raises ValueError saying what is wrong)."""
    path, value, ts, quality = _item(item, receive_us, window or TimeWindow.at(receive_us, 600))
    return TagValue(path, value, ts, quality, receive_us)


def _item(item: Any, receive_us: int, window: TimeWindow) -> tuple[str, Scalar, int, int]:
    if not isinstance(item, dict):
        raise ValueError('an item must be an object like {"path": ..., "value": ...}')
    unknown = set(item) - _KEYS
    if unknown:
        raise ValueError(
            f"unknown field(s) {', '.join(sorted(unknown))}; allowed: path, value, ts, quality"
        )
    if "path" not in item:
        raise ValueError("'path' is missing")
    path = item["path"]
    if not isinstance(path, str):
        raise ValueError("'path' must be a string")
    try:
        validate_path(path)
    except InvalidPathError as err:
        raise ValueError(str(err)) from None
    if "value" not in item:
        raise ValueError("'value' is missing")
    value = _value(item["value"])
    ts = _timestamp(item["ts"]) if item.get("ts") is not None else receive_us
    quality = int(
        parse_quality(item["quality"]) if item.get("quality") is not None else Quality.GOOD
    )
    problem = value_problem(value, quality) or window.problem(ts)
    if problem:
        raise ValueError(problem)
    return path, value, ts, quality


def _value(value: Any) -> Scalar:
    if isinstance(value, bool | str):
        if isinstance(value, str) and len(value) > 4096:
            raise ValueError("string values are limited to 4096 characters")
        return value
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ValueError("integer value does not fit in 64 bits")
        return value
    if isinstance(value, float):
        return value  # finite unless the quality is Bad: checked with the quality
    raise ValueError("'value' must be a number, a boolean or a string")


def _timestamp(ts: Any) -> int:
    if isinstance(ts, bool):
        raise ValueError("'ts' must be ISO 8601 text or epoch milliseconds")
    if isinstance(ts, int | float):
        if not _MS_MIN <= ts <= _MS_MAX:
            raise ValueError(
                f"'ts' {ts} is not epoch milliseconds between 1973 and 2200 "
                "(seconds or microseconds by mistake?)"
            )
        return round(ts * 1000)
    if isinstance(ts, str):
        try:
            dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"'ts' {ts!r} is not ISO 8601 (e.g. 2026-01-01T00:00:00Z) or epoch milliseconds"
            ) from None
        if dt.tzinfo is None:
            raise ValueError(
                f"'ts' {ts!r} has no time zone: add Z for UTC or an offset like +01:00"
            )
        return datetime_to_us(dt)
    raise ValueError("'ts' must be ISO 8601 text or epoch milliseconds")
