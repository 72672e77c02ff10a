"""Topic filters, path templates and JSON paths of the plain MQTT connector (pure)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kiln.connectors.mqtt.codec import (
    CompiledMapping,
    MalformedMessage,
    TopicMapping,
    decode,
    extract,
    parse_json_path,
)
from kiln.core.quality import Quality

RECV = 1_767_225_600_000_000


def compiled(**kw: str) -> list[CompiledMapping]:
    return [CompiledMapping.of(TopicMapping(**kw))]


def test_wildcards_fill_the_path_template() -> None:
    c = compiled(topic="factory/+/+/telemetry", path="acme/plant1/{1}/{2}/temperature",
                 value="$.temp")  # fmt: skip
    (v,) = decode(c, "factory/press/p7/telemetry", b'{"temp": 81.5}', RECV)
    assert (v.path, v.value, v.source_us, v.quality) == (
        "acme/plant1/press/p7/temperature", 81.5, RECV, Quality.GOOD,
    )  # fmt: skip
    assert decode(c, "factory/press/p7/status", b"{}", RECV) == []
    assert decode(c, "factory/press/telemetry", b"{}", RECV) == []
    rest = compiled(topic="site/#", path="acme/{#}", value="$")
    assert [v.path for v in decode(rest, "site/a/b/c", b"3", RECV)] == ["acme/a/b/c"]
    # MQTT 3.1.1, 4.7.2: a leading wildcard does not match $-topics.
    assert decode(compiled(topic="#", path="a/{#}"), "$SYS/broker/load", b"1", RECV) == []


def test_json_paths_timestamps_and_quality() -> None:
    assert parse_json_path('$.a.b[2]["odd key"]') == ("a", "b", 2, "odd key")
    assert extract({"a": [{"v": 1}]}, ("a", 0, "v")) == 1
    with pytest.raises(KeyError, match=r"\$\.a\[3\]"):
        extract({"a": [1]}, ("a", 3))
    c = compiled(topic="m/+", path="acme/m/{1}", value="$.r[0].v", timestamp="$.ts",
                 quality="$.q")  # fmt: skip
    (v,) = decode(c, "m/x", b'{"r": [{"v": true}], "ts": 1767225601000, "q": "bad"}', RECV)
    assert (v.value, v.source_us, v.quality) == (True, RECV + 1_000_000, Quality.BAD)
    (v,) = decode(
        c, "m/x", b'{"r": [{"v": "on"}], "ts": "2026-01-01T00:00:02+00:00", "q": 0}', RECV
    )
    assert (v.value, v.source_us, v.quality) == ("on", RECV + 2_000_000, Quality.GOOD)


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'{"temp": {"nested": 1}}', "dict, not a scalar"),
        (b'{"other": 1}', "$.temp"),
        (b'{"temp": 1, "ts": 1767225601}', "not epoch milliseconds"),
        (b'{"temp": 1, "ts": "2026-01-01T00:00:00"}', "no time zone"),
        (b'{"temp": 1, "ts": true}', "true/false"),
    ],
)
def test_malformed_messages_say_what_is_wrong(payload: bytes, problem: str) -> None:
    c = compiled(topic="m/+", path="acme/m/{1}", value="$.temp", timestamp="$.ts")
    with pytest.raises(MalformedMessage, match=problem.replace("$", r"\$")):
        decode(c, "m/x", payload, RECV)


def test_a_topic_level_that_is_no_path_segment_is_malformed() -> None:
    c = compiled(topic="m/+", path="acme/m/{1}", value="$")
    with pytest.raises(MalformedMessage, match="invalid path"):
        decode(c, "m/bad segment!", b"1", RECV)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"topic": "a/#/b", "path": "x/y"}, "'#' must be a whole level and the last one"),
        ({"topic": "a/b+", "path": "x/y"}, "'\\+' must be a whole level"),
        ({"topic": "a/b", "path": "x/y", "value": "temp"}, "not a JSON path"),
        ({"topic": "a/b", "path": "single"}, "one segment"),
    ],
)
def test_bad_mappings_are_refused_with_the_reason(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TopicMapping(**fields)


def test_template_placeholders_must_exist_in_the_filter() -> None:
    with pytest.raises(ValueError, match="only 1"):
        CompiledMapping.of(TopicMapping(topic="a/+", path="x/{2}"))
    with pytest.raises(ValueError, match="has no '#'"):
        CompiledMapping.of(TopicMapping(topic="a/+", path="x/{#}"))
