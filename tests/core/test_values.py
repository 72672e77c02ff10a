from __future__ import annotations

import pytest

from kiln.core.errors import InvalidPathError
from kiln.core.quality import Quality, Severity, parse_quality, quality_name, severity
from kiln.core.values import TagValue, ValueBatch, path_has_prefix, validate_path


@pytest.mark.parametrize(
    "path",
    ["acme/plant1/line1/cnc1/spindle_speed", "a/b", "x-1/y.2/Z_3"],
)
def test_valid_paths(path: str) -> None:
    assert validate_path(path) == path


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("", "empty"),
        ("single", "one segment"),
        ("a//b", "invalid segment ''"),
        ("a/+/b", "invalid segment '+'"),
        ("a/#", "invalid segment '#'"),
        ("a/$SYS", "invalid segment '$SYS'"),
        ("a/" + "x" * 65, "invalid segment"),
        ("/a/b", "invalid segment ''"),
    ],
)
def test_invalid_paths_say_why(path: str, why: str) -> None:
    with pytest.raises(InvalidPathError, match=r".*" + why.replace("$", r"\$").replace("+", r"\+")):
        validate_path(path)


def test_prefix_is_segment_wise() -> None:
    assert path_has_prefix("a/b/c", "a/b")
    assert path_has_prefix("a/b", "a/b/")
    assert not path_has_prefix("a/bc", "a/b")
    assert path_has_prefix("anything", "")


def test_quality_severity_and_names() -> None:
    assert severity(Quality.GOOD) is Severity.GOOD
    assert severity(Quality.UNCERTAIN_LAST_USABLE_VALUE) is Severity.UNCERTAIN
    assert severity(Quality.BAD_NOT_CONNECTED) is Severity.BAD
    assert severity(0xC0000000) is Severity.BAD
    assert quality_name(0x808A0000) == "bad_not_connected"
    assert quality_name(0x80AB0000) == "bad_0x80ab0000"
    assert parse_quality("Good") == 0
    assert parse_quality("bad_sensor_failure") == Quality.BAD_SENSOR_FAILURE
    assert parse_quality("0x40000000") == Quality.UNCERTAIN
    with pytest.raises(ValueError, match="unknown quality 'great'"):
        parse_quality("great")
    with pytest.raises(ValueError, match="outside"):
        parse_quality(-1)


def test_batch_columns_must_agree() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        ValueBatch(["a/b"], [1, 2], [1], [0], receive_us=0)


def test_batch_rows_and_select() -> None:
    b = ValueBatch.of([TagValue("a/b", 1.5, 10), TagValue("c/d", "x", 20, 0x80000000)], 99)
    rows = list(b)
    assert rows[1] == TagValue("c/d", "x", 20, 0x80000000, 99)
    assert rows[0].source_ts.isoformat() == "1970-01-01T00:00:00.000010+00:00"
    assert list(b.select(lambda p: p.startswith("c")).paths) == ["c/d"]


def test_ack_identity_is_plain_data_and_select_drops_it() -> None:
    b = ValueBatch.of([TagValue("a/b", 1.0, 1), TagValue("c/d", 2.0, 2)], 0)
    assert not b.wants_ack
    b.batch_id, b.origin = "node-a:7", "node-a"
    assert b.wants_ack
    assert b.select(lambda p: True) is b  # the whole batch keeps its identity
    part = b.select(lambda p: p == "c/d")
    assert (part.batch_id, part.origin, part.wants_ack) == ("", "", False)
    with pytest.raises(ValueError, match="differ in length"):
        ValueBatch(["a/b"], [1, 2], [1], [0], receive_us=0)
