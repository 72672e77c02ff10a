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
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

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


# What every `kiln` command pays before it does anything: the CLI module, the plant file's model
# (every installed subsystem's declaration and settings sections) and the parser (every
# subsystem's commands). None of it needs the server stack, a protocol library, a database
# driver or an engine: those are imported by the command that runs them (`kiln demo`, `run`,
# `sim`, `admin`).
CLI_HEAVY = (
    "duckdb",
    "pyarrow",
    "fastapi",
    "starlette",
    "uvicorn",
    "asyncua",
    "pymodbus",
    "aiomqtt",
    "nats",
    "sqlalchemy",
    "psycopg",
    "cryptography",
)

# Kiln's own heavy modules: the API app and its routers, the services and engines, the
# simulator's factory and protocol servers.
CLI_HEAVY_KILN = (
    "kiln.api.app",
    "kiln.api.routers",
    "kiln.alarms.engine",
    "kiln.connectors.service",
    "kiln.historian.service",
    "kiln.historian.store",
    "kiln.model.service",
    "kiln.production.engine",
    "kiln.security.service",
    "kiln.security.audit.service",
    "kiln.valuechain.engine",
    "kiln.sim.factory",
    "kiln.sim.servers",
    "kiln.sim.source",
)

_CLI_PROBE = """
import contextlib, io, json, sys
from kiln.app.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    code = main(sys.argv[1:])
print(json.dumps(sorted(sys.modules)))
"""


def loaded_by_kiln(*argv: str) -> set[str]:
    """Every module in `sys.modules` after `kiln ARGV` ran in a fresh process (its output
    swallowed)."""
    done = subprocess.run(
        [sys.executable, "-c", _CLI_PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def _heavy(loaded: set[str], *, allowed: tuple[str, ...] = ()) -> list[str]:
    tops = {name.split(".")[0] for name in loaded}
    kiln = {m for m in CLI_HEAVY_KILN if any(n == m or n.startswith(m + ".") for n in loaded)}
    return sorted((tops & set(CLI_HEAVY) | kiln) - set(allowed))


@pytest.mark.parametrize(
    "argv",
    [
        ("--help",),
        ("--version",),
        ("admin", "--help"),
        ("config", "check", str(ROOT / "examples" / "plant.yaml")),
    ],
    ids=["help", "version", "admin-help", "config-check"],
)
def test_a_kiln_command_loads_no_server_stack_protocol_driver_or_engine(
    argv: tuple[str, ...],
) -> None:
    loaded = loaded_by_kiln(*argv)
    assert "kiln.app.settings" in loaded  # the probe did build the model and the parser
    heavy = _heavy(loaded)
    assert not heavy, (
        f"`kiln {' '.join(argv)}` loads {', '.join(heavy)}: import it in the hook or the "
        "command that uses it (docs/subsystems.md)"
    )


def test_kiln_admin_loads_the_security_stores_but_not_the_server(tmp_path: Path) -> None:
    loaded = loaded_by_kiln("admin", "--data-dir", str(tmp_path), "users", "list")
    assert "kiln.security.service" in loaded  # it did run: the identity store was opened
    stores = ("sqlalchemy", "cryptography", "kiln.security.service", "kiln.security.audit.service")
    heavy = _heavy(loaded, allowed=stores)
    assert not heavy, f"`kiln admin users list` loads {', '.join(heavy)}"


def test_the_cli_check_names_a_heavy_module_when_one_is_loaded() -> None:
    loaded = {"kiln.api.routers.lots", "fastapi.routing", "kiln.api.settings", "kiln.sim.spec"}
    assert _heavy(loaded) == ["fastapi", "kiln.api.routers"]
    assert _heavy({"kiln.historian.service_x", "duckdbx"}) == []  # a prefix of a name is not it


def test_the_lazy_package_names_still_resolve() -> None:
    """`kiln.api` and `kiln.sim` import their heavy names on first use, and all of `__all__`."""
    import kiln.api
    import kiln.sim
    from kiln.api.app import create_app
    from kiln.sim.factory import SimFrame, VirtualFactory
    from kiln.sim.source import SimSource

    assert kiln.api.create_app is create_app
    assert (kiln.sim.VirtualFactory, kiln.sim.SimFrame) == (VirtualFactory, SimFrame)
    assert kiln.sim.SimSource is SimSource
    for package in (kiln.api, kiln.sim):
        assert all(getattr(package, name) is not None for name in package.__all__)
        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            getattr(package, "nope")  # noqa: B009 (the name is the point)


def test_a_mount_finds_its_router_in_each_form() -> None:
    from kiln.api.routers import live
    from kiln.api.subsystem import Mount

    for declared in ("kiln.api.routers.live", "kiln.api.routers.live:router", live.router):
        assert Mount(declared).resolve() is live.router
    assert Mount(lambda: live.router).resolve() is live.router
    with pytest.raises(TypeError, match="not a FastAPI APIRouter"):
        Mount("kiln.api.settings:HttpSettings").resolve()
    with pytest.raises(ModuleNotFoundError):
        Mount("kiln.api.routers.no_such_router").resolve()


def test_lazy_error_handlers_are_made_once_on_first_use() -> None:
    from kiln.api.subsystem import LazyErrorHandlers

    calls: list[int] = []

    async def handler(request: object, err: Exception) -> object:
        return None

    def load() -> dict[type[Exception], object]:
        calls.append(1)
        return {KeyError: handler}

    handlers = LazyErrorHandlers(load)
    assert calls == []
    assert dict(handlers.items()) == {KeyError: handler}
    assert (len(handlers), handlers[KeyError], calls) == (1, handler, [1])
