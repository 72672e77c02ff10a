"""The `notifications:` section: valid pipelines load, and each mistake is refused with the
field named and the fix said."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from kiln.alarms.notify.settings import (
    EscalateBlock,
    NotificationSettings,
    SwitchBlock,
    channels_for,
)

ALICE = {"name": "alice", "email": "alice@example.com", "webhook": "https://hooks.example/a"}
SMTP = {"host": "mail.example", "sender": "kiln@example.com"}


def load(**section: Any) -> NotificationSettings:
    return NotificationSettings.model_validate(section)


def refused(**section: Any) -> str:
    with pytest.raises(ValidationError) as err:
        load(**section)
    return str(err.value)


def test_a_full_section_loads() -> None:
    s = load(
        smtp=SMTP,
        webhook={"secret": "k", "retries": 3, "backoff_s": 1, "backoff_cap_s": 30},
        users=[ALICE, {"name": "sup", "webhook": "http://sup.example/", "min_priority": "high"}],
        pipelines=[
            {
                "name": "line1",
                "priorities": ["high", "critical"],
                "subtree": "acme/p1/line1",
                "on": "both",
                "blocks": [
                    {"kind": "notify", "users": ["alice"]},
                    {"kind": "switch", "expression": "priority == 'critical'",
                     "then": [{"kind": "escalate", "after_s": 60, "users": ["sup"]}]},
                    {"kind": "remind", "every_s": 600, "count": 2},
                    {"kind": "consolidate", "window_s": 60, "min_interval_s": 300,
                     "users": ["sup"]},
                ],
            }
        ],
    )  # fmt: skip
    switch = s.pipelines[0].blocks[1]
    assert isinstance(switch, SwitchBlock)
    assert isinstance(switch.then[0], EscalateBlock)
    assert channels_for(s.user("alice"), ()) == ("email", "webhook")
    assert channels_for(s.user("alice"), ("webhook",)) == ("webhook",)
    assert s.url_in(Path("data")).endswith("notifications.db")


def test_unknown_keys_are_refused() -> None:
    assert "colour" in refused(colour="red")
    message = refused(
        users=[ALICE], smtp=SMTP,
        pipelines=[{"name": "p", "blocks": [{"kind": "notify", "users": ["alice"], "x": 1}]}],
    )  # fmt: skip
    assert "x" in message
    assert "Extra inputs are not permitted" in message


def test_an_unknown_user_is_named_with_those_known() -> None:
    message = refused(
        users=[ALICE], smtp=SMTP,
        pipelines=[{"name": "p", "blocks": [{"kind": "notify", "users": ["bob"]}]}],
    )  # fmt: skip
    assert "pipelines[p].blocks[0] (notify): unknown user 'bob' (users: alice)" in message


def test_email_without_smtp_is_refused_with_the_fix() -> None:
    message = refused(
        users=[ALICE],
        pipelines=[{"name": "p", "blocks": [{"kind": "notify", "users": ["alice"]}]}],
    )
    assert "notifications.smtp is not set" in message
    # Limited to the webhook, the same user needs no mail server.
    load(
        users=[ALICE],
        pipelines=[{"name": "p", "blocks": [
            {"kind": "notify", "users": ["alice"], "channels": ["webhook"]}]}],
    )  # fmt: skip


def test_a_switch_expression_is_checked_at_load() -> None:
    message = refused(
        users=[ALICE], smtp=SMTP,
        pipelines=[{"name": "p", "blocks": [
            {"kind": "switch", "expression": "__import__('os')", "then": []}]}],
    )  # fmt: skip
    assert "uses Call" in message


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ({"name": "u"}, "has neither an email nor a webhook"),
        ({"name": "u", "webhook": "ftp://x"}, "is not an http:// or https:// URL"),
        ({"name": "u", "webhook": "http://x", "channels": ["email"]}, "wants email but has no"),
        ({"name": "u", "email": "u@x", "min_priority": "urgent"}, "min_priority"),
    ],
)
def test_user_mistakes(user: dict[str, Any], expected: str) -> None:
    assert expected in refused(users=[user])


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ({"kind": "delay", "seconds": 0}, "seconds"),
        ({"kind": "escalate", "after_s": 10}, "an escalate block needs users"),
        ({"kind": "remind", "every_s": 10, "count": 0}, "count"),
        ({"kind": "consolidate", "window_s": 10}, "a consolidate block needs users"),
        ({"kind": "page", "users": ["alice"]}, "does not match any of the expected tags"),
    ],
)
def test_block_mistakes(block: dict[str, Any], expected: str) -> None:
    message = refused(users=[ALICE], smtp=SMTP, pipelines=[{"name": "p", "blocks": [block]}])
    assert expected in message


def test_retry_and_tls_settings_are_checked() -> None:
    assert "the cap must be at least the first wait" in refused(
        webhook={"backoff_s": 10, "backoff_cap_s": 5}
    )
    assert "either tls" in refused(smtp=SMTP | {"tls": True, "starttls": True})
    assert "subtree" in refused(
        users=[ALICE], smtp=SMTP,
        pipelines=[{"name": "p", "subtree": "/bad//path", "blocks": [
            {"kind": "notify", "users": ["alice"]}]}],
    )  # fmt: skip
