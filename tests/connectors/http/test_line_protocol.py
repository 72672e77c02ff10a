"""InfluxDB line protocol: the reference's examples, escaping, every field type, precisions,
mapping into the namespace, and bad lines reported by number without losing the good ones."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.connectors.http.line_protocol import Point, format_line, parse_line, parse_lines

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
        ("acme/yard/plant1/weather/temperature", 21.5, NOW_US),  # tag values by key: area, site
        ("acme/yard/plant1/weather/humidity", 40, NOW_US),
        ("acme/yard/plant1/weather/ok", True, NOW_US),
        ("acme/yard/plant1/weather/note", "dry", NOW_US),
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


def test_no_timestamp_is_the_receive_time_and_names_become_segments() -> None:
    assert values("cpu load/avg=0.5", prefix="acme/it") == [("acme/it/cpu/load_avg", 0.5, NOW_US)]
    assert values("cpu,host=web-1.local usage=1")[0][0] == "acme/plant1/web-1.local/cpu/usage"


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
