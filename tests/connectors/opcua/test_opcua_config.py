"""The OPC UA connector's configuration: secure defaults, and mistakes named by their field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kiln.app.settings import Settings
from kiln.connectors.base import ConnectorKind
from kiln.connectors.opcua import CONNECTOR
from kiln.connectors.opcua.config import OpcUaConfig, SecurityMode, SecurityPolicy
from kiln.connectors.opcua.connector import OpcUaConnector
from kiln.core.config import parse_config
from kiln.core.errors import ConfigError

NODE = {"node_id": "ns=2;s=Line1.Temp", "path": "acme/plant1/line1/temp"}
SECURE = {"certificate": "/etc/kiln/opcua/kiln.der", "private_key": "/etc/kiln/opcua/kiln.pem"}


def config(**fields: Any) -> OpcUaConfig:
    return OpcUaConfig.model_validate(
        {"name": "line1", "endpoint": "opc.tcp://plc1:4840", "nodes": [NODE], **fields}
    )


def errors(**fields: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as err:
        config(**fields)
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in err.value.errors()]


def test_secure_by_default() -> None:
    c = config(**SECURE)
    assert c.security_policy is SecurityPolicy.BASIC256SHA256
    assert c.security_mode is SecurityMode.SIGN_AND_ENCRYPT
    assert c.secure and c.type == "opcua"


def test_policy_none_is_refused_unless_allowed_explicitly() -> None:
    ((field, msg),) = errors(security_policy="None")
    assert field == "security_policy"
    assert "clear text" in msg and "allow_insecure: true" in msg
    assert not config(security_policy="None", allow_insecure=True).secure


def test_a_secure_policy_needs_a_certificate_path() -> None:
    assert [f for f, _ in errors()] == ["certificate", "private_key"]
    (_, msg), _ = errors()
    assert "required for security_policy Basic256Sha256" in msg and "generates" in msg


@pytest.mark.parametrize("policy", ["Basic128Rsa15", "Basic256"])
def test_sha1_policies_are_not_offered(policy: str) -> None:
    ((field, msg),) = errors(security_policy=policy, **SECURE)
    assert field == "security_policy" and "deprecated" in msg


def test_username_identity_needs_a_user_and_a_password_file() -> None:
    assert [f for f, _ in errors(identity="username", **SECURE)] == ["username", "password_file"]
    c = config(identity="username", username="kiln", password_file="/run/secrets/pw", **SECURE)
    assert c.username == "kiln"
    ((field, msg),) = errors(username="kiln", **SECURE)
    assert field == "username" and "only used with identity: username" in msg


def test_certificate_identity_needs_the_certificate() -> None:
    ((_, msg),) = errors(security_policy="None", allow_insecure=True, identity="certificate")
    assert "certificate: required for identity: certificate" in msg


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("http://plc1:4840", "not an OPC UA endpoint"),
        ("opc.tcp://", "not an OPC UA endpoint"),
        ("opc.tcp://kiln:secret@plc1:4840", "no credentials in the endpoint"),
        ("opc.tcp://plc1:99999", "invalid port"),
    ],
)
def test_bad_endpoints(endpoint: str, message: str) -> None:
    ((field, msg),) = errors(endpoint=endpoint, **SECURE)
    assert field == "endpoint" and message in msg


def test_the_registered_port_is_written_out() -> None:
    assert config(endpoint="opc.tcp://plc1/UA/Server", **SECURE).endpoint == (
        "opc.tcp://plc1:4840/UA/Server"
    )


def test_nodes_are_checked() -> None:
    found = errors(
        nodes=[
            {"node_id": "Line1.Temp", "path": "acme/plant1/temp"},
            {"node_id": "ns=2;i=5", "path": "acme/plant 1/temp"},
            {
                "node_id": "ns=2;i=6",
                "path": "acme/x/y",
                "deadband": {"type": "percent", "value": 150},
            },
        ],
        **SECURE,
    )
    assert [f for f, _ in found] == ["nodes.0.node_id", "nodes.1.path", "nodes.2.deadband"]
    ((field, msg),) = errors(nodes=[NODE, NODE], **SECURE)
    assert field == "nodes" and "mapped twice" in msg
    ((field, _),) = errors(nodes=[], **SECURE)
    assert field == "nodes"


def test_errors_name_the_field_and_line_in_the_plant_file() -> None:
    text = """\
connectors:
  - name: line1
    type: opcua
    endpoint: opc.tcp://plc1:4840
    security_policy: None
    nodes:
      - {node_id: "ns=2;s=Line1.Temp", path: acme/plant1/line1/temp}
"""
    with pytest.raises(ConfigError) as err:
        parse_config(text, Settings, source="plant.yaml")
    assert "plant.yaml:5: connectors[0].security_policy: Value error, None sends" in str(err.value)


def test_connector_type() -> None:
    assert (CONNECTOR.name, CONNECTOR.kind, CONNECTOR.config_model) == (
        "opcua",
        ConnectorKind.PUSHED,
        OpcUaConfig,
    )
    connector = CONNECTOR.create(config(**SECURE))
    assert isinstance(connector, OpcUaConnector)
    assert list(connector.tags) == ["acme/plant1/line1/temp"]
