"""Selecting events by kind, the same on every bus.

Kinds are dotted, most general first ("alarm.transition"); a subscriber names kind prefixes,
matched segment-wise like the namespace: "alarm" selects "alarm.transition", not "alarms.x".
"""

from __future__ import annotations

from collections.abc import Sequence


def kind_filter(kinds: Sequence[str]) -> tuple[str, ...]:
    """The prefixes a subscriber asked for, without trailing dots (empty: every kind)."""
    return tuple(k.rstrip(".") for k in kinds if k.rstrip("."))


def kind_matches(kind: str, kinds: tuple[str, ...]) -> bool:
    """Whether `kind` is one of `kinds` (from `kind_filter`) or below one of them."""
    return not kinds or any(kind == k or kind.startswith(k + ".") for k in kinds)
