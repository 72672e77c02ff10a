"""Names on the broker: streams, subjects and consumers of one Kiln bus (pure).

Everything starts with the bus's prefix, so two plants (or two tests) share a NATS server
without seeing each other:

* ``<prefix>.values.<shard>``: value batches; the shard is a stable hash of the path (CRC-32,
  the same in every process and every Python) modulo the shard count;
* ``<prefix>.events.<kind tokens>.<shard>``: events; the shard hashes the event's key;
* ``<prefix>.acks.<node>``: durability acknowledgements back to the publishing node;
* ``<prefix>.cmd.<target>``: commands.

Stream names may not contain dots, so the values stream of prefix ``kiln`` is ``kiln_values``.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from kiln.core.bus.protocol import BusError

# A subject token (and a stream or consumer name): no separators, wildcards or whitespace.
_TOKEN = re.compile(r"[A-Za-z0-9_\-]+")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


def shard_of(key: str, shards: int) -> int:
    """The shard of a path or event key: the same answer in every process."""
    return zlib.crc32(key.encode()) % shards


def check_token(text: str, what: str) -> str:
    if not _TOKEN.fullmatch(text):
        raise BusError(
            f"{what} {text!r} cannot name a NATS subject: use letters, digits, '_' and '-'"
        )
    return text


def consumer_name(kind: str, name: str) -> str:
    """A broker-safe consumer name for subscription `name` (unsafe characters replaced; a hash
    of the original keeps two names that differ only in those characters apart)."""
    safe = _NAME_UNSAFE.sub("_", name)
    if safe != name:
        safe = f"{safe}_{zlib.crc32(name.encode()):08x}"
    return f"{kind}-{safe}"


MSG_ID = "Nats-Msg-Id"  # the header JetStream de-duplicates on, within the duplicate window
STORE_CONSUMER = "store"  # consumer names of storing value subscriptions: "store-<name>"


@dataclass(frozen=True, slots=True)
class Subjects:
    """The names of one bus (one prefix) on the broker."""

    prefix: str
    shards: int

    def __post_init__(self) -> None:
        check_token(self.prefix, "bus prefix")
        if self.shards < 1:
            raise BusError(f"shards must be at least 1, not {self.shards}")

    @property
    def values_stream(self) -> str:
        return f"{self.prefix}_values"

    @property
    def events_stream(self) -> str:
        return f"{self.prefix}_events"

    @property
    def all_values(self) -> str:
        return f"{self.prefix}.values.*"

    @property
    def all_events(self) -> str:
        return f"{self.prefix}.events.>"

    def values(self, shard: int) -> str:
        return f"{self.prefix}.values.{shard}"

    def event(self, kind: str, key: str) -> str:
        tokens = kind.split(".")
        for token in tokens:
            if not _TOKEN.fullmatch(token):
                raise BusError(
                    f"event kind {kind!r}: each dot-separated part must be letters, digits, "
                    "'_' or '-' (it becomes subject tokens on the broker)"
                )
        return f"{self.prefix}.events.{kind}.{shard_of(key, self.shards)}"

    def acks(self, node: str) -> str:
        return f"{self.prefix}.acks.{check_token(node, 'bus node name')}"

    def command(self, target: str) -> str:
        return f"{self.prefix}.cmd.{check_token(target, 'command target')}"
