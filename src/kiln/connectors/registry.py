"""Finding connector types: the entry-point group `kiln.connectors`.

Kiln's own connectors are registered in its `pyproject.toml` exactly as a third party
registers one in theirs:

    [project.entry-points."kiln.connectors"]
    modbus = "kiln.connectors.modbus:CONNECTOR"

An entry point that fails to load is reported (with the reason) and skipped: one broken plugin
does not stop the others or the platform.

Test-only types (the `fake` connector of `kiln.testing.connector`) are registered by no
installation: Kiln's test suite opts in with the environment variable KILN_TESTING_CONNECTORS=1
(set by tests/conftest.py, inherited by the servers tests start). Never set it in production.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import BaseModel, ValidationInfo
from pydantic_core import PydanticCustomError

from kiln.connectors.base import ConnectorConfig, ConnectorType

_LOGGER = logging.getLogger(__name__)

GROUP = "kiln.connectors"
TESTING_ENV = "KILN_TESTING_CONNECTORS"
_TESTING = (EntryPoint("fake", "kiln.testing.connector:CONNECTOR", GROUP),)


@cache
def connector_types() -> dict[str, ConnectorType[Any]]:
    """Every connector type installed, by name (loaded once per process)."""
    found: dict[str, ConnectorType[Any]] = {}
    testing = _TESTING if os.environ.get(TESTING_ENV) == "1" else ()
    for ep in (*entry_points(group=GROUP), *testing):
        try:
            kind = ep.load()
        except Exception as err:  # a broken plugin must not stop the platform
            _LOGGER.error("Connector plugin %s (%s) failed to load: %s", ep.name, ep.value, err)
            continue
        if not isinstance(kind, ConnectorType):
            _LOGGER.error("Connector plugin %s (%s) is not a ConnectorType", ep.name, ep.value)
            continue
        if kind.name != ep.name:
            _LOGGER.error(
                "Connector plugin %s names itself %r; skipped (the names must agree)",
                ep.name,
                kind.name,
            )
            continue
        found[kind.name] = kind
    return found


def connector_model(value: Any) -> type[BaseModel] | None:
    """The configuration model of the type an entry names (None if it names none installed):
    what a typo in the entry is checked against."""
    kind_name = value.get("type") if isinstance(value, dict) else None
    kind = connector_types().get(kind_name) if isinstance(kind_name, str) else None
    return kind.config_model if kind is not None else None


def validate_connector_config(value: Any, info: ValidationInfo) -> ConnectorConfig:
    """A configuration entry validated by its own type's model (pydantic keeps the nested
    error locations, so a mistake is reported as connectors[2].port at its line). The
    validation context goes along: relative paths in it are anchored like all others."""
    if isinstance(value, ConnectorConfig):
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError("model_type", "a connector is a mapping with name and type")
    known = connector_types()
    kind_name = value.get("type")
    kind = known.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        raise PydanticCustomError(
            "connector_type",
            "unknown connector type {type}; installed: {known}",
            {"type": repr(kind_name), "known": ", ".join(sorted(known)) or "none"},
        )
    config: ConnectorConfig = kind.config_model.model_validate(value, context=info.context)
    return config
