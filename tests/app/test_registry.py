"""The order subsystems are built in, and the conflicts between them that are refused."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from kiln.api.subsystem import SettingsSection, Subsystem
from kiln.app.registry import ordered
from kiln.app.settings import settings_model


class _A(BaseModel):
    x: int = 0


def _names(*subsystems: Subsystem) -> list[str]:
    return [s.name for s in ordered(subsystems)]


def test_without_constraints_the_order_is_by_name() -> None:
    assert _names(Subsystem("c"), Subsystem("a"), Subsystem("b")) == ["a", "b", "c"]


def test_after_and_before_are_kept() -> None:
    # "sim" names "connectors" (before), "alarms" names "model" (after): neither by name.
    found = _names(
        Subsystem("alarms", after=("model",)),
        Subsystem("connectors"),
        Subsystem("model"),
        Subsystem("sim", before=("connectors",)),
    )
    assert found == ["model", "alarms", "sim", "connectors"]


def test_a_subsystem_named_but_not_installed_is_ignored() -> None:
    assert _names(Subsystem("b", after=("missing",)), Subsystem("a")) == ["a", "b"]


def test_a_cycle_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="cycle: a after \\['b'\\], b after \\['a'\\]"):
        ordered([Subsystem("a", after=("b",)), Subsystem("b", after=("a",))])


def test_two_subsystems_with_one_section_key_are_refused() -> None:
    one = Subsystem("one", sections=(SettingsSection("shared", _A, _A),))
    two = Subsystem("two", sections=(SettingsSection("shared", _A, _A),))
    with pytest.raises(ValueError, match="'two' declares the settings section 'shared'"):
        settings_model([one, two])


def test_a_section_cannot_take_a_core_key() -> None:
    with pytest.raises(ValueError, match="'data_dir', which the core has"):
        settings_model([Subsystem("x", sections=(SettingsSection("data_dir", _A, _A),))])


def test_a_section_is_read_by_its_model() -> None:
    model = settings_model([Subsystem("x", sections=(SettingsSection("ax", _A, _A),))])
    settings = model.model_validate({"ax": {"x": 3}})
    assert settings.section(_A) == _A(x=3)

    class _Other(BaseModel):
        pass

    with pytest.raises(LookupError, match="no installed subsystem has a _Other settings section"):
        settings.section(_Other)
