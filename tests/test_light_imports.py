"""Importing a pure module loads no database driver, columnar store or protocol library.

Each module is imported in a fresh interpreter, and what it brought into `sys.modules` is
compared with the libraries it must not need: a package `__init__` that imports its service
(and with it DuckDB, psycopg or an OPC UA stack) fails here, even though every other test,
which has all of them loaded anyway, passes.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Database drivers, columnar storage and protocol clients: what I/O adapters import.
HEAVY = ("duckdb", "psycopg", "pyarrow", "asyncua", "pymodbus", "aiomqtt", "nats", "sqlalchemy")

PURE = (
    # The historian's maths: NumPy only.
    "kiln.historian",
    "kiln.historian.maths",
    "kiln.historian.maths.aggregates",
    "kiln.historian.maths.analysis",
    "kiln.historian.maths.calendar",
    "kiln.historian.maths.columns",
    "kiln.historian.maths.compression",
    "kiln.historian.maths.rollup",
    "kiln.historian.maths.thinning",
    "kiln.historian.maths.timeline",
    # The kernel.
    "kiln.core.admission",
    "kiln.core.bus",
    "kiln.core.bus.queueing",
    "kiln.core.clock",
    "kiln.core.compression",
    "kiln.core.config",
    "kiln.core.errors",
    "kiln.core.files",
    "kiln.core.health",
    "kiln.core.platform",
    "kiln.core.quality",
    "kiln.core.timespec",
    "kiln.core.values",
    "kiln.core.x509",
    # Connectors: each package (what the entry point loads), its codec and its configuration.
    "kiln.connectors.modbus",
    "kiln.connectors.modbus.codec",
    "kiln.connectors.modbus.plan",
    "kiln.connectors.modbus.config",
    "kiln.connectors.opcua",
    "kiln.connectors.opcua.codec",
    "kiln.connectors.opcua.config",
    "kiln.connectors.mqtt",
    "kiln.connectors.mqtt.codec",
    "kiln.connectors.mqtt.config",
    "kiln.connectors.sparkplug",
    "kiln.connectors.sparkplug.codec",
    "kiln.connectors.sparkplug.session",
    "kiln.connectors.sparkplug.config",
    "kiln.connectors.http.codec",
    "kiln.connectors.http.line_protocol",
    # The declared surfaces of the domain packages (pyproject's import-linter contracts): what
    # one domain imports of another, so light by rule.
    "kiln.model",
    "kiln.model.catalog",
    "kiln.security",
    "kiln.connectors",
    "kiln.cluster",
    "kiln.cluster.codec",
    "kiln.cluster.settings",
    # Production: the pure cores the engine, the API and the virtual factory share.
    "kiln.production",
    "kiln.production.shifts",
    "kiln.production.states",
    "kiln.production.taxonomy",
    "kiln.production.calendar",
    "kiln.production.intervals",
    "kiln.production.counts",
    "kiln.production.oee",
    "kiln.production.compute",
    "kiln.production.chunks",
    "kiln.production.plan",
    "kiln.production.derive",
    "kiln.production.orders",
    "kiln.production.spc",
    "kiln.production.spc_rules",
    "kiln.production.spc_tags",
    # The value chain's surface.
    "kiln.valuechain",
    # Alarms: definitions and the state machine.
    "kiln.alarms",
    "kiln.alarms.definitions",
    "kiln.alarms.states",
    "kiln.alarms.detect",
    # Database URLs: checked by settings before any engine exists.
    "kiln.db",
    "kiln.db.urls",
)

# The relational plumbing needs SQLAlchemy, never a driver: PostgreSQL's is an extra.
RELATIONAL = ("kiln.db.engines", "kiln.db.types", "kiln.db.migrations")

_PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def loaded_by(module: str) -> set[str]:
    """The top-level packages in `sys.modules` after importing `module` in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, module],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("module", PURE)
def test_a_pure_module_loads_no_driver_or_protocol_library(module: str) -> None:
    heavy = sorted(loaded_by(module) & set(HEAVY))
    assert not heavy, f"importing {module} loads {', '.join(heavy)}: import it where it is used"


@pytest.mark.parametrize("module", RELATIONAL)
def test_the_relational_plumbing_loads_no_database_driver(module: str) -> None:
    loaded = loaded_by(module)
    assert "sqlalchemy" in loaded
    assert not loaded & {"psycopg", "psycopg2", "duckdb", "pyarrow"}


def test_the_probe_sees_a_driver_when_one_is_loaded() -> None:
    """The storage modules do load them: the check above is not vacuous."""
    assert {"duckdb", "pyarrow"} <= loaded_by("kiln.historian.store")
    assert "pymodbus" in loaded_by("kiln.connectors.modbus.connector")
    assert "asyncua" in loaded_by("kiln.connectors.opcua.variants")
