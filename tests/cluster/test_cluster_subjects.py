"""Names on the broker: stable shards, safe tokens."""

from __future__ import annotations

import zlib

import pytest

from kiln.cluster.subjects import Subjects, consumer_name, shard_of
from kiln.core.bus import BusError


def test_the_shard_of_a_path_is_its_crc32_in_every_process() -> None:
    path = "acme/plant1/line1/filler/weight"
    assert shard_of(path, 16) == zlib.crc32(path.encode()) % 16
    assert shard_of(path, 16) == 11  # fixed: a change would split a plant's processes


def test_subjects_and_streams_carry_the_prefix() -> None:
    names = Subjects("plant2", 8)
    assert names.values_stream == "plant2_values"
    assert names.events_stream == "plant2_events"
    assert names.values(3) == "plant2.values.3"
    assert names.event("alarm.transition", "a-1") == (
        f"plant2.events.alarm.transition.{shard_of('a-1', 8)}"
    )
    assert names.acks("edge-1") == "plant2.acks.edge-1"
    assert names.command("connectors") == "plant2.cmd.connectors"


@pytest.mark.parametrize("kind", ["alarm..x", "alarm.*", "alarm transition", "a.>", "."])
def test_event_kinds_that_are_not_subject_tokens_are_refused(kind: str) -> None:
    with pytest.raises(BusError, match="event kind"):
        Subjects("kiln", 4).event(kind, "k")


@pytest.mark.parametrize("target", ["", "a.b", "a b", "*"])
def test_command_targets_must_be_one_token(target: str) -> None:
    with pytest.raises(BusError, match="command target"):
        Subjects("kiln", 4).command(target)


def test_consumer_names_are_safe_and_keep_distinct_names_apart() -> None:
    assert consumer_name("store", "historian") == "store-historian"
    a, b = consumer_name("events", "alarm journal"), consumer_name("events", "alarm.journal")
    assert a != b
    assert all(c.isalnum() or c in "_-" for c in a + b)
