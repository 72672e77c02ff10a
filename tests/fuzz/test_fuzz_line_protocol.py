"""Fuzzing the InfluxDB line protocol parser (`kiln.connectors.http.line_protocol`).

Properties:

- `parse_lines` never raises for any text (each bad line is an error with its number), and
  `parse_body` raises only `BodyError` for any bytes;
- every path it produces is a valid namespace path (`kiln.core.values.validate_path`);
- `parse_line(format_line(point)) == point` for generated valid points, whatever characters
  the escapable names and the string values hold;
- distinct series (measurement, tag set, field) never map to the same path.

Hypothesis, not atheris; see `fuzz_budget`.
"""

from __future__ import annotations

from fuzz_budget import fuzz, mutations
from hypothesis import example, given, target
from hypothesis import strategies as st

from kiln.connectors.http.codec import BodyError
from kiln.connectors.http.line_protocol import (
    Point,
    format_line,
    parse_body,
    parse_line,
    parse_lines,
)
from kiln.core.admission import TimeWindow
from kiln.core.values import validate_path

NOW_US = 1_767_225_600_000_000
WINDOW = TimeWindow.at(NOW_US, 600)
PREFIX = "acme/plant1"
# Path segments: the names a series may have.
_FIRST = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
SEGMENT = st.builds(str.__add__, st.sampled_from(_FIRST), st.text(_FIRST + ".-", max_size=12))
# Any text a line can hold (no newline): `parse_line` reads names, the path rules come after.
TAG_KEY = st.text(st.characters(exclude_characters="\n\r"), min_size=1, max_size=8)
FIELD_VALUE = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.text(st.characters(exclude_characters="\n"), max_size=10),
)


@st.composite
def points(draw: st.DrawFn, tag_keys: st.SearchStrategy[str] = TAG_KEY) -> Point:
    tags = draw(st.dictionaries(tag_keys, SEGMENT, max_size=3))
    fields = draw(st.dictionaries(SEGMENT, FIELD_VALUE, min_size=1, max_size=3))
    return Point(
        measurement=draw(SEGMENT),
        tags=tuple(sorted(tags.items())),
        fields=tuple(fields.items()),
        timestamp=draw(st.none() | st.integers(-(2**63), 2**63 - 1)),
    )


def _utf8(text: str) -> bytes:
    return text.encode(
        "utf-8", "surrogatepass"
    )  # a lone surrogate becomes bytes that are not UTF-8


def valid_lines() -> st.SearchStrategy[str]:
    return st.lists(points().map(format_line), max_size=5).map("\n".join)


TEXT = (
    st.text(max_size=200)
    | valid_lines()
    | st.builds(
        lambda text, edits: mutations(_utf8(text), edits).decode("utf-8", "replace"),
        valid_lines(),
        st.lists(
            st.tuples(st.integers(0, 4), st.integers(0, 2**12), st.binary(max_size=4)), max_size=4
        ),
    )
)


@fuzz(300)
@given(TEXT, st.sampled_from(["ns", "us", "ms", "s"]))
def test_parse_lines_never_raises_and_every_path_is_valid(text: str, precision: str) -> None:
    values, errors = parse_lines(
        text, prefix=PREFIX, precision=precision, receive_us=NOW_US, window=WINDOW
    )
    target(float(len(values)), label="values")
    for value in values:
        assert validate_path(value.path) == value.path
        assert value.path.startswith(PREFIX + "/")
    assert all(1 <= e.line <= text.count("\n") + 1 for e in errors)


@fuzz(300)
@given(st.binary(max_size=300) | TEXT.map(_utf8), st.booleans())
def test_parse_body_raises_only_body_error(raw: bytes, gzipped: bool) -> None:
    try:
        values, _ = parse_body(
            raw, gzipped=gzipped, max_inflated_bytes=1 << 16, max_values=50, prefix=PREFIX,
            precision="ns", receive_us=NOW_US, window=WINDOW,
        )  # fmt: skip
    except BodyError:
        return
    assert len(values) <= 50


@fuzz(300)
@given(points())
def test_format_then_parse_gives_the_point_back(point: Point) -> None:
    assert parse_line(format_line(point)) == point


# Found by this test: a double quote in a tag key (literal in Influx) made the line an error.
def test_a_double_quote_in_a_tag_key_round_trips() -> None:
    point = Point("m", (('"', "a"),), (("f", 0.0),), None)
    assert parse_line(format_line(point)) == point


def _series_paths(lines: list[str]) -> dict[str, set[tuple[object, ...]]]:
    """Each produced path with the (measurement, tag set, field) series that produced it."""
    found: dict[str, set[tuple[object, ...]]] = {}
    for line in lines:
        values, errors = parse_lines(line, prefix=PREFIX, precision="ns", receive_us=NOW_US)
        if errors:
            continue
        point = parse_line(line)
        for (name, _), value in zip(point.fields, values, strict=True):
            found.setdefault(value.path, set()).add((point.measurement, point.tags, name))
    return found


# Tag keys were once left out of the path, so two series shared a tag (issue 12, finding 4).
@fuzz(300)
@given(
    st.lists(
        points(tag_keys=SEGMENT).map(lambda p: Point(p.measurement, p.tags, p.fields, None)),
        max_size=6,
    )
)
@example([Point("m", (("host", "a"),), (("f", 1.0),), None),
          Point("m", (("site", "a"),), (("f", 2.0),), None)])  # fmt: skip
def test_distinct_series_never_share_a_path(series: list[Point]) -> None:
    for path, sources in _series_paths([format_line(p) for p in series]).items():
        assert len(sources) == 1, f"{path} is fed by {sources}"
