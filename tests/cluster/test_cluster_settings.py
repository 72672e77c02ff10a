"""The `bus` settings section and the bus it makes."""

from __future__ import annotations

import sys

import pytest
from pydantic import ValidationError

from kiln.cluster.settings import BusSettings, make_bus
from kiln.core.bus import InProcessBus
from kiln.core.errors import ConfigError
from kiln.testing import FakeClock


def test_without_a_url_the_bus_is_in_process() -> None:
    bus = make_bus(BusSettings(), FakeClock())
    assert isinstance(bus, InProcessBus)


def test_with_a_url_the_bus_is_nats_and_connects_only_at_start() -> None:
    from kiln.cluster.nats_bus import NatsBus  # nats-py is a dev dependency

    settings = BusSettings(url="nats://127.0.0.1:1", node="edge-1", prefix="plant2", shards=4)
    bus = make_bus(settings, FakeClock())
    assert isinstance(bus, NatsBus)
    assert (bus.node, bus.names.prefix, bus.names.shards) == ("edge-1", "plant2", 4)
    assert bus.health().detail["connected"] is False


def test_a_missing_nats_client_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "kiln.cluster.nats_bus", None)  # import fails
    with pytest.raises(ConfigError, match=r"pip install 'kiln\[nats\]'"):
        make_bus(BusSettings(url="nats://127.0.0.1:4222"), FakeClock())


@pytest.mark.parametrize("prefix", ["", "a.b", "a b", "a*", "a>"])
def test_a_prefix_must_be_one_subject_token(prefix: str) -> None:
    with pytest.raises(ValidationError, match="prefix"):
        BusSettings(prefix=prefix)


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ValidationError, match="shard_count"):
        BusSettings.model_validate({"shard_count": 3})


def test_every_setting_is_described() -> None:
    for name, field in BusSettings.model_fields.items():
        assert field.description, f"bus.{name} has no description"
