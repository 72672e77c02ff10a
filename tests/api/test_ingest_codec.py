"""Parsing of ingest items: every bad item gets its own precise error."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.connectors.http.codec import BodyError, decode_utf8, parse_body, parse_items
from kiln.core.admission import TimeWindow
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


NOW = TimeWindow.at(RECV, 600)


def test_a_body_over_the_item_limit_is_refused_before_the_rest_is_read() -> None:
    # Item 4 is where reading stops: the garbage after it is never looked at.
    body = b'{"values": [' + b'{"path": "a/b", "value": 1},' * 4 + b"garbage"
    with pytest.raises(BodyError, match="more than 3 items") as err:
        parse_body(body, max_items=3, receive_us=RECV, window=NOW)
    assert err.value.status == 413
    good, bad = parse_body(
        b'{"values": [{"path": "a/b", "value": 1}]}', max_items=1, receive_us=RECV, window=NOW
    )
    assert [tv.path for _, tv in good.tag_values()] == ["a/b"] and bad == []


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (b'{"values": ["\xc3\x28"]}', 400, "the byte at offset 13 is invalid"),
        (b"\xe2\x82", 400, "offset 0"),
        (b'{"values": [' + b"[" * 5000 + b"]" * 5000 + b"]}", 400, "nested too deeply"),
        (b'{"values": [{"path": "a/b",\n "value": 1,}]}', 400, "line 2 column 13"),
        (b'{"values" 1}', 400, "Expecting ':' delimiter"),
        (b"{1: 2}", 400, "Expecting property name"),
        (b"  ", 422, "the body is empty"),
        (b'"text"', 422, "must be a JSON object"),
    ],
)
def test_bodies_that_cannot_be_read_say_why(raw: bytes, status: int, message: str) -> None:
    with pytest.raises(BodyError, match=message) as err:
        parse_body(raw, max_items=10, receive_us=RECV, window=NOW)
    assert err.value.status == status


def test_utf8_is_decoded_in_pieces_with_the_right_offset() -> None:
    big = "é" * (700_000)  # more than one piece of 1 MiB, a character split between pieces
    assert decode_utf8(big.encode()) == big
    with pytest.raises(BodyError, match=f"offset {len(big.encode())}"):
        decode_utf8(big.encode() + b"\xff")


@pytest.mark.parametrize(
    ("ts", "error"),
    [
        ("2099-01-01T00:00:00Z", "ahead of the server's clock"),
        ("0001-01-01T00:00:00Z", "before 1970-01-01"),
        ("9999-12-31T23:59:59Z", "ahead of the server's clock"),
        (RECV // 1000 + 601_000, "more than 600 s ahead"),
    ],
)
def test_the_time_window_is_the_final_word(ts: object, error: str) -> None:
    good, bad = parse_items([{"path": "a/b", "value": 1, "ts": ts}], RECV, NOW)
    assert good == [] and error in bad[0].error
    ok, _ = parse_items([{"path": "a/b", "value": 1, "ts": RECV // 1000 + 599_000}], RECV, NOW)
    assert len(ok) == 1


def test_non_finite_numbers_need_a_bad_quality() -> None:
    nan = {"path": "a/b", "value": float("nan")}
    _, bad = parse_items([nan, {**nan, "value": float("inf")}], RECV, NOW)
    assert [e.index for e in bad] == [0, 1]
    assert "not a finite number" in bad[0].error
    good, bad = parse_items([{**nan, "quality": "bad"}], RECV, NOW)
    assert bad == [] and len(good) == 1
