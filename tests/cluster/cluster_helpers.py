"""Helpers of the cluster tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing the adapter itself needs the nats extra
    from kiln.cluster.nats_bus import NatsBus

# `await buses(node, **options)`: a started NatsBus under the test's prefix.
BusMaker = Callable[..., Awaitable["NatsBus"]]
