"""Parsing of ingest items: every bad item gets its own precise error."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.connectors.http.codec import parse_items
from kiln.core.quality import Quality

RECV = 1_767_225_600_000_000


def test_good_items_in_every_form() -> None:
    items = [
        {"path": "a/b/c", "value": 21.5, "ts": "2026-01-01T00:00:01Z", "quality": "good"},
        {"path": "a/b/d", "value": 3, "ts": 1767225602000},
        {"path": "a/b/e", "value": True, "quality": "bad_not_connected"},
        {"path": "a/b/f", "value": "running", "quality": 0x40000000},
    ]
    good, bad = parse_items(items, RECV)
    assert bad == []
    by_path = {tv.path: tv for _, tv in good}
    assert by_path["a/b/c"].source_us == RECV + 1_000_000
    assert by_path["a/b/d"].source_us == RECV + 2_000_000
    assert by_path["a/b/d"].value == 3
    assert by_path["a/b/e"].source_us == RECV  # no ts: the receive time
    assert by_path["a/b/e"].quality == Quality.BAD_NOT_CONNECTED
    assert by_path["a/b/f"].quality == Quality.UNCERTAIN


@pytest.mark.parametrize(
    ("item", "error"),
    [
        ("text", "must be an object"),
        ({"value": 1}, "'path' is missing"),
        ({"path": "a/b"}, "'value' is missing"),
        ({"path": 5, "value": 1}, "'path' must be a string"),
        ({"path": "nosegments", "value": 1}, "one segment"),
        ({"path": "a/b", "value": [1]}, "must be a number, a boolean or a string"),
        ({"path": "a/b", "value": None}, "must be a number"),
        ({"path": "a/b", "value": 2**64}, "64 bits"),
        ({"path": "a/b", "value": 1, "ts": "yesterday"}, "not ISO 8601"),
        ({"path": "a/b", "value": 1, "ts": "2026-01-01T00:00:00"}, "no time zone"),
        ({"path": "a/b", "value": 1, "ts": 1767225600}, "seconds or microseconds by mistake"),
        ({"path": "a/b", "value": 1, "quality": "great"}, "unknown quality"),
        ({"path": "a/b", "value": 1, "unit": "C"}, "unknown field(s) unit"),
    ],
)
def test_each_bad_item_says_why(item: Any, error: str) -> None:
    good, bad = parse_items([item], RECV)
    assert good == []
    assert len(bad) == 1
    assert error in bad[0].error


def test_bad_items_do_not_block_good_ones() -> None:
    items = [
        {"path": "a/b", "value": 1},
        {"path": "a/b", "value": "x", "ts": "bad"},
        {"path": "c/d", "value": 2},
    ]
    good, bad = parse_items(items, RECV)
    assert [i for i, _ in good] == [0, 2]
    assert [(e.index, e.path) for e in bad] == [(1, "a/b")]
