"""Audit records: input cleaning (secrets redacted, text storable, sizes bounded) and the MAC."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import Enum

import pytest

from kiln.security.audit.chain import ZERO_MAC, chain, chain_key, mac_matches, record_mac
from kiln.security.audit.record import (
    FIELD_LIMITS,
    MAX_DETAIL_BYTES,
    REDACTED,
    Category,
    Entry,
    Result,
    canonical_json,
    clean_detail,
)

KEY = chain_key(bytes(range(32)))


def test_secret_keys_are_redacted_at_every_depth_and_case() -> None:
    detail = {
        "Password": "hunter2",
        "new_password": "x",
        "client_secret": "s",
        "refresh_TOKEN": "t",
        "apiKey": "k",
        "otp": "123456",
        "Credentials": {"user": "u", "pass": "p"},
        "user": "alice",
        "roles": ["admin", {"session_token": "abc", "name": "ops"}],
        "nested": {"deeper": {"private_key_pem": "-----BEGIN", "port": 502}},
    }

    cleaned = clean_detail(detail)

    assert cleaned == {
        "Password": REDACTED,
        "new_password": REDACTED,
        "client_secret": REDACTED,
        "refresh_TOKEN": REDACTED,
        "apiKey": REDACTED,
        "otp": REDACTED,
        "Credentials": REDACTED,  # the whole value, not just the keys inside it
        "user": "alice",
        "roles": ["admin", {"session_token": REDACTED, "name": "ops"}],
        "nested": {"deeper": {"private_key_pem": REDACTED, "port": 502}},
    }
    assert "hunter2" not in json.dumps(cleaned)
    assert detail["Password"] == "hunter2"  # the caller's mapping is not changed


def test_values_json_cannot_hold_become_text() -> None:
    class Mode(Enum):
        AUTO = "auto"

    class Valve:
        def __str__(self) -> str:
            return "valve 7"

    cleaned = clean_detail(
        {
            "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            "raw": b"\x01\xff",
            "mode": Mode.AUTO,
            "bad": float("nan"),
            "big": float("inf"),
            "tuple": (1, 2),
            "set": {3, 1, 2},
            7: "int key",
            "obj": Valve(),
        }
    )

    assert cleaned["at"] == "2026-01-02T03:04:05+00:00"
    assert cleaned["raw"] == "01ff"
    assert cleaned["mode"] == "auto"
    assert (cleaned["bad"], cleaned["big"]) == ("nan", "inf")
    assert cleaned["tuple"] == [1, 2]
    assert cleaned["set"] == [1, 2, 3]
    assert cleaned["7"] == "int key"
    assert cleaned["obj"] == "valve 7"
    canonical_json(cleaned)  # storable and MAC-able as it is


def test_text_is_made_storable_on_every_backend() -> None:
    entry = Entry.create(
        actor="user:a\x00b",
        source="10.0.0.1",
        category="authentication",
        action="login",
        target="bad \udcff byte",
        detail={"name\x00": "x\x00y"},
    )

    assert entry.actor == "user:a\ufffdb"
    assert entry.target == "bad \\udcff byte"
    assert entry.detail == {"name\ufffd": "x\ufffdy"}
    assert entry.category is Category.AUTHENTICATION
    assert entry.result is Result.SUCCESS


def test_over_long_fields_are_cut_and_marked() -> None:
    entry = Entry.create(
        actor="user:" + "a" * 1000,
        source="s" * 300,
        category=Category.AUTHENTICATION,
        action="login",
        target="t" * 5000,
    )

    assert len(entry.actor) == FIELD_LIMITS["actor"]
    assert entry.actor.endswith("…")
    assert len(entry.source) == FIELD_LIMITS["source"]
    assert len(entry.target) == FIELD_LIMITS["target"]


def test_an_oversized_detail_is_replaced_by_its_size_and_digest() -> None:
    cleaned = clean_detail({"blob": "x" * (MAX_DETAIL_BYTES + 1)})

    assert cleaned["truncated"] is True
    assert cleaned["bytes"] > MAX_DETAIL_BYTES
    assert len(cleaned["sha256"]) == 64


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("actor", "", "non-empty actor"),
        ("action", "", "non-empty action"),
        ("category", "gossip", "gossip"),
        ("result", "maybe", "maybe"),
    ],
)
def test_invalid_events_are_refused(field: str, value: str, message: str) -> None:
    fields = {"actor": "system", "source": "system", "category": "system", "action": "start"}
    fields[field] = value
    with pytest.raises(ValueError, match=message):
        Entry.create(**fields)  # type: ignore[arg-type]


def test_canonical_json_does_not_depend_on_key_order() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": "é"}]}) == canonical_json(
        {"a": [1, {"c": "é", "d": 2}], "b": 1}
    )
    assert canonical_json({"a": "é"}) == b'{"a":"\\u00e9"}'


def test_the_mac_covers_every_field_the_seq_and_the_previous_mac() -> None:
    entry = Entry.create(
        actor="user:alice", source="10.0.0.1", category="authentication", action="login"
    )
    record = chain(KEY, entry, seq=1, ts_us=1_000, prev_mac=ZERO_MAC)
    fields = record.chained()

    assert mac_matches(KEY, fields, ZERO_MAC, record.mac)
    for name, other in [
        ("seq", 2),
        ("ts_us", 1_001),
        ("actor", "user:mallory"),
        ("result", "failure"),
        ("detail", {"x": 1}),
        ("tenant", "acme"),
    ]:
        assert not mac_matches(KEY, {**fields, name: other}, ZERO_MAC, record.mac), name
    assert not mac_matches(KEY, fields, "11" * 32, record.mac)
    assert not mac_matches(chain_key(bytes(range(1, 33))), fields, ZERO_MAC, record.mac)
    assert not mac_matches(KEY, fields, "not hex", record.mac)  # malformed input is a mismatch
    assert record_mac(KEY, fields, ZERO_MAC) == record.mac


def test_the_chain_key_needs_an_install_secret() -> None:
    with pytest.raises(ValueError, match="32"):
        chain_key(b"short")
