"""Modbus TCP: the register codec (`codec`), the read planner (`plan`), the plant YAML
(`config`) and the polling client (`connector`).

Only `connector` imports pymodbus, and only when a connector is created, so the codec, the
planner and the configuration load without it."""

from kiln.connectors.base import Connector, ConnectorKind, ConnectorType
from kiln.connectors.modbus.config import ModbusConfig


def _create(config: ModbusConfig) -> Connector:
    from kiln.connectors.modbus.connector import ModbusConnector

    return ModbusConnector(config)


CONNECTOR = ConnectorType(
    name="modbus",
    kind=ConnectorKind.POLLED,
    config_model=ModbusConfig,
    create=_create,
    description="Modbus TCP client: poll groups, register maps, write-back",
    requirements=("pymodbus",),
)

__all__ = ["CONNECTOR"]
