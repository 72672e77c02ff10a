"""Modbus TCP: the register codec (`codec`), the read planner (`plan`), the plant YAML
(`config`) and the polling client (`connector`)."""

from kiln.connectors.base import ConnectorKind, ConnectorType
from kiln.connectors.modbus.config import ModbusConfig
from kiln.connectors.modbus.connector import ModbusConnector

CONNECTOR = ConnectorType(
    name="modbus",
    kind=ConnectorKind.POLLED,
    config_model=ModbusConfig,
    create=ModbusConnector,
    description="Modbus TCP client: poll groups, register maps, write-back",
    requirements=("pymodbus",),
)

__all__ = ["CONNECTOR", "ModbusConfig", "ModbusConnector"]
