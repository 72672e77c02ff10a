"""Fuzzing JSON ingest items (`kiln.connectors.http.codec`).

Properties:

- `parse_items` never raises, for any JSON value as an item (objects with the four known keys
  holding any JSON, and anything else);
- every item it accepts follows the rules of `kiln.core.admission`: a valid path, a value that
  is finite unless its quality is Bad, a 64-bit integer or a string of at most 4096 characters,
  a timestamp inside the acceptance window;
- well-formed items are accepted as sent;
- `parse_body` raises only `BodyError` for any bytes, and never returns more than `max_items`.

Hypothesis, not atheris; see `fuzz_budget`.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from fuzz_budget import fuzz, mutations
from hypothesis import given, target
from hypothesis import strategies as st

from kiln.connectors.http.codec import BodyError, parse_body, parse_items
from kiln.core.admission import TimeWindow, value_problem
from kiln.core.values import validate_path

NOW_US = 1_767_225_600_000_000
NOW_MS = NOW_US // 1000
WINDOW = TimeWindow.at(NOW_US, 600)

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=12),
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
PATHS = st.sampled_from(
    ["acme/p1/temp", "acme/p1/line1/speed", "acme", "", "acme//x", "acme/../x", "acme/p1/\x00",
     "/acme/p1", "acme/" + "a" * 65, "acme/p1/" + "b/" * 600]
)  # fmt: skip
TIMESTAMPS = st.one_of(
    st.integers(NOW_MS - 10**9, NOW_MS + 10**9),
    st.floats(NOW_MS - 1e9, NOW_MS + 1e9),
    st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00", "0001-01-01T00:00:00-14:00",
                     "9999-12-31T23:59:59+14:00", "2099-01-01T00:00:00Z", "yesterday", ""]),
    JSON_SCALARS,
)  # fmt: skip
# A quality that is a float, a list or an object is the known failure below; kept out here so
# the rest is still fuzzed.
QUALITIES = st.one_of(
    st.sampled_from(["good", "bad", "uncertain", "GOOD", "bad_sensor_failure", "0x80000000"]),
    st.integers(0, 2**32 - 1),
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
)
VALUES = st.one_of(
    JSON_SCALARS,
    st.sampled_from([math.nan, math.inf, -math.inf, 2**63, -(2**63) - 1, "x" * 4097]),
    JSON,
)


@st.composite
def items(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    item: dict[str, Any] = {}
    for key, strategy in (("path", PATHS | JSON_SCALARS), ("value", VALUES),
                          ("ts", TIMESTAMPS), ("quality", QUALITIES)):  # fmt: skip
        if draw(st.integers(0, 5)):
            item[key] = draw(strategy)
    if draw(st.integers(0, 9)) == 0:
        item[draw(st.text(max_size=4))] = draw(JSON)
    return item


@fuzz(600)
@given(st.lists(items(), max_size=8))
def test_parse_items_never_raises_and_accepts_only_what_the_rules_allow(batch: list[Any]) -> None:
    good, bad = parse_items(batch, NOW_US, WINDOW)
    target(float(len(good)), label="accepted")
    assert sorted([i for i, _ in good] + [e.index for e in bad]) == list(range(len(batch)))
    for _, value in good:
        assert validate_path(value.path) == value.path
        assert value_problem(value.value, value.quality) is None
        assert WINDOW.problem(value.source_us) is None
        v = value.value
        if isinstance(v, int) and not isinstance(v, bool):
            assert -(2**63) <= v < 2**63
        if isinstance(v, str):
            assert len(v) <= 4096
        assert isinstance(v, bool | int | float | str)


@fuzz(300)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "path": st.sampled_from(["acme/p1/temp", "acme/p1/line1/speed"]),
                "value": st.floats(allow_nan=False, allow_infinity=False)
                | st.integers(-(2**63), 2**63 - 1)
                | st.booleans()
                | st.text(max_size=20),
                "ts": st.integers(NOW_MS - 10**9, NOW_MS),
            }
        ),
        max_size=6,
    )
)
def test_well_formed_items_are_accepted_as_sent(batch: list[dict[str, Any]]) -> None:
    good, bad = parse_items(batch, NOW_US, WINDOW)
    assert bad == []
    for (index, value), item in zip(good, batch, strict=True):
        assert batch[index] is item
        assert (value.path, value.value, value.source_us) == (
            item["path"],
            item["value"],
            item["ts"] * 1000,
        )


def _bodies() -> st.SearchStrategy[bytes]:
    valid = st.lists(items(), max_size=6).map(
        lambda batch: json.dumps({"values": batch}, default=str).encode()
    )
    edits = st.lists(
        st.tuples(st.integers(0, 4), st.integers(0, 2**12), st.binary(max_size=4)), max_size=4
    )
    return st.binary(max_size=300) | valid | st.builds(mutations, valid, edits)


@fuzz(400)
@given(_bodies())
def test_parse_body_raises_only_body_error(raw: bytes) -> None:
    status = None
    try:
        points, errors = parse_body(raw, max_items=5, receive_us=NOW_US, window=WINDOW)
    except BodyError as err:
        status = err.status
    if status is not None:
        assert status in (400, 413, 422)
    else:
        assert len(points) + len(errors) <= 5


# Found by this fuzzer: parse_quality called .strip() on any type, a 500 from /ingest.
@pytest.mark.parametrize("quality", [1.5, [], {}], ids=["float", "list", "object"])
def test_a_quality_of_another_json_type_is_an_item_error(quality: object) -> None:
    good, bad = parse_items([{"path": "acme/p1/temp", "value": 1, "quality": quality}], NOW_US)
    assert good == [] and [e.index for e in bad] == [0]
