"""InfluxDB line protocol: the reference's examples, escaping, every field type, precisions,
mapping into the namespace, and bad lines reported by number without losing the good ones."""

from __future__ import annotations

import gzip

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.connectors.http.codec import BodyError, Points
from kiln.connectors.http.line_protocol import (
    MAX_LINE_BYTES,
    LineError,
    Point,
    format_line,
    parse_body,
    parse_line,
    parse_lines,
)
from kiln.core.admission import TimeWindow

NOW_US = 1_767_225_600_000_000


def values(
    body: str, *, prefix: str = "acme/plant1", precision: str = "ns"
) -> list[tuple[str, object, int]]:
    got, errors = parse_lines(body, prefix=prefix, precision=precision, receive_us=NOW_US)
    assert errors == []
    return [(v.path, v.value, v.source_us) for v in got]


def test_a_line_becomes_one_value_per_field() -> None:
    line = 'weather,site=plant1,area=yard temperature=21.5,humidity=40i,ok=true,note="dry" 1767225600000000000'
    assert values(line, prefix="acme") == [
        ("acme/area/yard/site/plant1/weather/temperature", 21.5, NOW_US),  # tags sorted by key
        ("acme/area/yard/site/plant1/weather/humidity", 40, NOW_US),
        ("acme/area/yard/site/plant1/weather/ok", True, NOW_US),
        ("acme/area/yard/site/plant1/weather/note", "dry", NOW_US),
    ]


def test_escapes_and_quoted_strings() -> None:
    point = parse_line(r'my\ meas,tag\,key=a\=b f\ 1="say \"hi\" \\ there",f2=-1.5e3')
    assert point.measurement == "my meas"
    assert point.tags == (("tag,key", "a=b"),)
    assert point.fields == (("f 1", 'say "hi" \\ there'), ("f2", -1500.0))
    assert point.timestamp is None
    # Spaces and commas inside a quoted string do not end the field set.
    assert parse_line('m s="a, b c" 5').fields == (("s", "a, b c"),)


@pytest.mark.parametrize(
    ("raw", "value"),
    [("1", 1.0), ("-2.5", -2.5), ("3i", 3), ("4u", 4), ("t", True), ("FALSE", False), ('""', "")],
)
def test_field_types(raw: str, value: object) -> None:
    (field,) = parse_line(f"m v={raw}").fields
    assert field == ("v", value) and type(field[1]) is type(value)


@pytest.mark.parametrize(
    ("precision", "stamp", "us"),
    [("ns", "1767225600123456789", 1_767_225_600_123_456), ("us", "1767225600123456", 1_767_225_600_123_456),
     ("ms", "1767225600123", 1_767_225_600_123_000), ("s", "1767225600", 1_767_225_600_000_000)],
)  # fmt: skip
def test_precisions(precision: str, stamp: str, us: int) -> None:
    assert values(f"m v=1 {stamp}", precision=precision)[0][2] == us


def test_no_timestamp_is_the_receive_time_and_valid_names_are_kept_as_they_are() -> None:
    assert values("cpu load_avg=0.5", prefix="acme/it") == [("acme/it/cpu/load_avg", 0.5, NOW_US)]
    assert values("cpu,host=web-1.local usage=1")[0][0] == "acme/plant1/host/web-1.local/cpu/usage"


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("cpu load/avg=0.5", "field 'load/avg'"),
        ("cpu,host=a/b v=1", "tag value 'a/b' (tag 'host')"),
        ("cpu,host=.. v=1", "tag value '..' (tag 'host')"),
        ("cpu,host=a%2Fb v=1", "tag value 'a%2Fb' (tag 'host')"),
        ("cpu,host=a\x00b v=1", "tag value 'a\\x00b' (tag 'host')"),
        ("-cpu v=1", "measurement '-cpu'"),
        (f"cpu {'f' * 65}=1", f"field '{'f' * 65}'"),
        (f"{'m' * 65} v=1", "measurement 'mmmm"),
    ],
)
def test_names_that_are_not_path_segments_are_line_errors_never_rewritten(
    line: str, named: str
) -> None:
    got, errors = parse_lines(line, prefix="acme/plant1", precision="ns", receive_us=NOW_US)
    assert got == []
    assert len(errors) == 1 and errors[0].line == 1
    assert named in errors[0].error
    assert "is not a valid path segment" in errors[0].error
    assert "never rewrites" in errors[0].error


def test_four_distinct_series_never_become_two() -> None:
    """Finding 4 of issue 12: 'a/b' and 'a_b', 'x%2Fy' and 'x_y' were both stored as '*_*'."""
    body = "m,host=a/b v=1\nm,host=a_b v=2\nm,host=x%2Fy v=3\nm,host=x_y v=4"
    got, errors = parse_lines(body, prefix="acme/plant1", precision="ns", receive_us=NOW_US)
    assert [(v.path, v.value) for v in got] == [
        ("acme/plant1/host/a_b/m/v", 2.0),
        ("acme/plant1/host/x_y/m/v", 4.0),
    ]
    assert [e.line for e in errors] == [1, 3]


def test_series_that_differ_only_in_a_tag_key_are_two_tags() -> None:
    """Tag keys are part of the path: 'host=a' and 'site=a' were both stored as '.../a/m/v'."""
    body = "m,host=a v=1\nm,site=a v=2\nm v=3\nm,host=a,site=b v=4"
    got, errors = parse_lines(body, prefix="acme/plant1", precision="ns", receive_us=NOW_US)
    assert errors == []
    assert [v.path for v in got] == [
        "acme/plant1/host/a/m/v",
        "acme/plant1/site/a/m/v",
        "acme/plant1/m/v",
        "acme/plant1/host/a/site/b/m/v",
    ]
    _, errors = parse_lines("m,a/b=c v=1", prefix="acme/plant1", precision="ns", receive_us=0)
    assert "tag key 'a/b' is not a valid path segment" in errors[0].error


def test_a_double_quote_in_a_measurement_or_tag_is_literal() -> None:
    point = parse_line('m"x,k"=v" f="a b" 5')
    assert point.measurement == 'm"x'
    assert point.tags == (('k"', 'v"'),)
    assert point.fields == (("f", "a b"),) and point.timestamp == 5


def test_timestamps_outside_the_window_are_line_errors() -> None:
    future_ns = (NOW_US + 3_600_000_000) * 1000
    body = f"m v=1 {future_ns}\nm v=2 -1\nm v=3 {NOW_US * 1000}\nm v=4 253402300799000000000"
    got, errors = parse_lines(body, prefix="acme/plant1", precision="ns", receive_us=NOW_US)
    assert [v.value for v in got] == [3.0]
    assert [e.line for e in errors] == [1, 2, 4]
    assert "ahead of the server's clock" in errors[0].error
    assert "before 1970-01-01" in errors[1].error
    assert "9999-12-31" in errors[2].error


def test_non_finite_values_are_line_errors() -> None:
    got, errors = parse_lines(
        "m v=NaN\nm v=inf\nm v=-Infinity\nm v=1",
        prefix="acme/plant1",
        precision="ns",
        receive_us=NOW_US,
    )
    assert [v.value for v in got] == [1.0]
    assert [e.line for e in errors] == [1, 2, 3]
    assert all("not a finite number" in e.error for e in errors)


def test_bad_lines_are_reported_by_number_and_the_others_kept() -> None:
    body = "\n".join([
        "# a comment",
        "good v=1",
        "nofields",
        "m v=1 notatime",
        'm s="unclosed',
        "m v=12x",
        "m,tagonly v=1",
        "m v=99999999999999999999i",
        "m v=-1u",
        "",
        "also_good v=2i",
    ])  # fmt: skip
    got, errors = parse_lines(body, prefix="acme/plant1", precision="ns", receive_us=NOW_US)
    assert [v.path for v in got] == ["acme/plant1/good/v", "acme/plant1/also_good/v"]
    assert [e.line for e in errors] == [3, 4, 5, 6, 7, 8, 9]
    assert "needs a measurement and at least one field" in errors[0].error
    assert "not an integer" in errors[1].error
    assert "no closing double quote" in errors[2].error
    assert "is not a number" in errors[3].error
    assert "not key=value" in errors[4].error
    assert "does not fit 64 bits" in errors[5].error
    assert "negative" in errors[6].error


def test_an_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="precision 'h'"):
        parse_lines("m v=1", prefix="acme", precision="h", receive_us=0)


names = st.text(
    st.characters(codec="utf-8", exclude_characters='\n\r\\"'), min_size=1, max_size=8
).filter(lambda s: s.strip() == s and not s.startswith("#"))
field_values = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**63), 2**63 - 1)
    | st.booleans()
    | st.text(st.characters(codec="utf-8", exclude_characters="\n\r"), max_size=10)
)


@settings(max_examples=300, deadline=None)
@given(
    names,
    st.dictionaries(names, names, max_size=3),
    st.lists(st.tuples(names, field_values), min_size=1, max_size=4),
    st.none() | st.integers(0, 2**62),
)
def test_lines_round_trip(
    measurement: str, tags: dict[str, str], fields: list[tuple[str, object]], ts: int | None
) -> None:
    point = Point(measurement, tuple(sorted(tags.items())), tuple(fields), ts)  # type: ignore[arg-type]
    assert parse_line(format_line(point)) == point


def body_values(
    raw: bytes, *, gzipped: bool = False, max_values: int = 10, limit: int = 1 << 20
) -> tuple[Points, list[LineError]]:
    return parse_body(
        raw, gzipped=gzipped, max_inflated_bytes=limit, max_values=max_values,
        prefix="acme/plant1", precision="ns", receive_us=NOW_US,
        window=TimeWindow.at(NOW_US, 600),
    )  # fmt: skip


def test_a_gzip_body_is_read_in_pieces_and_stopped_at_the_value_limit() -> None:
    lines = b"m v=1\n" * 11
    # The broken end of the stream is never reached: reading stops at value 11.
    broken = gzip.compress(lines + b"m v=2\n" * 400_000)[:-40] + b"\x00" * 40
    with pytest.raises(BodyError, match="more than 10 values by line 11") as err:
        body_values(broken, gzipped=True, limit=1 << 30)
    assert err.value.status == 413
    points, errors = body_values(gzip.compress(b"m v=1\n" * 10), gzipped=True)
    assert len(points) == 10 and errors == []


def test_a_gzip_body_is_stopped_at_the_inflated_limit() -> None:
    with pytest.raises(BodyError, match="inflates to more than 65536 bytes") as err:
        body_values(gzip.compress(b"#\n" * 1_000_000), gzipped=True, limit=65536)
    assert err.value.status == 413


def test_gzip_members_lines_across_pieces_and_bad_utf8_lines() -> None:
    long_name = "m" + "x" * 60
    text = f"{long_name} v=1\n" * 30_000  # lines cross the 1 MiB pieces
    raw = gzip.compress(text.encode()[:900_000]) + gzip.compress(text.encode()[900_000:])
    points, errors = body_values(raw, gzipped=True, max_values=100_000, limit=1 << 30)
    assert len(points) == 30_000 and errors == []
    points, errors = body_values(b"m v=1\nm,t=\xff v=2\nm v=3")
    assert len(points) == 2
    assert [(e.line, e.error[:18]) for e in errors] == [(2, "not valid UTF-8 (t")]


def test_a_line_over_the_line_limit_is_an_error_and_not_held() -> None:
    raw = b"m v=1\n" + b"m v=" + b"1" * (MAX_LINE_BYTES + 1) + b"\nm v=3\n"
    points, errors = body_values(raw)
    assert points.values == [1.0, 3.0]
    assert [e.line for e in errors] == [2] and "longer than" in errors[0].error


def test_the_value_rules_of_every_ingest_path_hold_for_unsigned_and_text_fields() -> None:
    """An unsigned field beyond 64 bits and a text over 4,096 characters were stored by line
    protocol while JSON and bulk refused them (kiln.core.admission holds the one rule)."""
    body = "\n".join([
        "m v=99999999999999999999999u",
        "m v=9223372036854775808u",
        f'm s="{"x" * 4097}"',
        "m v=9223372036854775807u",
        f'm s="{"x" * 4096}"',
    ])  # fmt: skip
    got, errors = parse_lines(body, prefix="acme/plant1", precision="ns", receive_us=NOW_US)
    assert [e.line for e in errors] == [1, 2, 3]
    assert "64 bits" in errors[0].error and "64 bits" in errors[1].error
    assert "4096 characters" in errors[2].error
    assert [v.value for v in got] == [2**63 - 1, "x" * 4096]
