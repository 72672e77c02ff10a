"""Modbus TCP: the register codec (`codec`), the read planner (`plan`), the plant YAML
(`config`) and the polling client (`connector`)."""

from kiln.connectors.base import ConnectorConfig, ConnectorKind, ConnectorType
from kiln.connectors.modbus.config import ModbusConfig
from kiln.connectors.modbus.connector import ModbusConnector


def _create(config: ConnectorConfig) -> ModbusConnector:
    if not isinstance(config, ModbusConfig):
        raise TypeError(f"expected ModbusConfig, got {type(config).__name__}")
    return ModbusConnector(config)


CONNECTOR = ConnectorType(
    name="modbus",
    kind=ConnectorKind.POLLED,
    config_model=ModbusConfig,
    create=_create,
    description="Modbus TCP client: poll groups, register maps, write-back",
    requirements=("pymodbus",),
)

__all__ = ["CONNECTOR", "ModbusConfig", "ModbusConnector"]
