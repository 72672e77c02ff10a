"""The shipped example configuration, with its commented-out parts switched on."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.app.cli import main
from kiln.app.settings import load_settings

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plant.yaml"


def uncommented_connectors(text: str) -> str:
    """The example with its `connectors:` block uncommented, as a user would."""
    lines = text.splitlines()
    start = lines.index("# connectors:")
    block = [line.removeprefix("# ") for line in lines[start:]]
    assert all(not line.startswith("#") for line in block), "a comment inside the block"
    return "\n".join(lines[:start] + block) + "\n"


def test_the_example_has_one_connector_of_each_type_and_they_are_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plant = tmp_path / "examples" / "plant.yaml"
    plant.parent.mkdir()
    plant.write_text(uncommented_connectors(EXAMPLE.read_text()))
    (plant.parent / "pki" / "trusted").mkdir(parents=True)  # the trust list the example names
    assert main(["config", "check", str(plant)]) == 0, capsys.readouterr().err
    assert "OK (2 asset types, 7 assets" in capsys.readouterr().out
    settings = load_settings(plant, check_paths=True)
    assert sorted(c.type for c in settings.connectors) == ["modbus", "mqtt", "opcua", "sparkplug"]
    # As shipped, the block is commented out: the example runs without those devices.
    assert load_settings(EXAMPLE).connectors == []
