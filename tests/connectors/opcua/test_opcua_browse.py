"""Browsing a real server's address space into proposed tag mappings."""

from __future__ import annotations

from typing import Any

import pytest
from opcua_plant import insecure

from kiln.connectors.opcua.browse import Proposal, propose, sanitize_segment
from kiln.connectors.opcua.config import OpcUaConnection
from kiln.core.values import validate_path


@pytest.mark.parametrize(
    ("name", "segment"),
    [
        ("Temp", "Temp"),
        ("Speed (rpm)", "Speed_rpm"),
        ("Temperatur °C", "Temperatur_C"),
        ("Drücke/Bar", "Drucke_Bar"),
        (".hidden", "hidden"),
        ("-x", "x"),
        ("a+b#c", "a_b_c"),
        ("温度", "_"),
        ("x" * 100, "x" * 64),
    ],
)
def test_browse_names_become_path_segments(name: str, segment: str) -> None:
    assert sanitize_segment(name) == segment
    validate_path(f"acme/{segment}")


async def test_proposes_the_variables_kiln_can_carry(servers: Any) -> None:
    plant = await servers()
    connection = OpcUaConnection(
        endpoint=plant.endpoint, security_policy="None", allow_insecure=True
    )
    prefix = "acme/plant1/line1"
    found = await propose(connection, root=f"ns={plant.ns};s=Line1", prefix=prefix)
    assert sorted((p.path.removeprefix(prefix + "/"), p.data_type) for p in found) == [
        ("Any", "BaseDataType"),
        ("Count", "UInt32"),
        ("Label", "LocalizedText"),
        ("Locked", "Double"),
        ("Motor/Speed_rpm", "Double"),
        ("Motor/Temperatur_C", "Double"),
        ("Recipe", "String"),
        ("Running", "Boolean"),
        ("Setpoint", "Int16"),
        ("Started", "DateTime"),
        ("Temp", "Double"),
    ]  # not: Blob (ByteString), Motor/Phases (an array), Temp's EngineeringUnits (a property)
    speed = next(p for p in found if p.path.endswith("Speed_rpm"))
    assert speed == Proposal(plant.node_id("Motor.Speed"), f"{prefix}/Motor/Speed_rpm", "Double")
    # The proposals are a valid configuration as they are.
    config = insecure(plant, [p.as_mapping() for p in found])
    assert len(config.nodes) == len(found)


async def test_browse_is_bounded(servers: Any) -> None:
    plant = await servers()
    connection = OpcUaConnection(
        endpoint=plant.endpoint, security_policy="None", allow_insecure=True
    )
    shallow = await propose(connection, root=f"ns={plant.ns};s=Line1", prefix="a/b", max_depth=1)
    assert not any("/Motor/" in p.path for p in shallow)
    assert len(await propose(connection, prefix="a", limit=3)) == 3
