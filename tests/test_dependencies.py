"""What a base-only install (`make demo` on a fresh clone) can import.

The dev venv has every extra installed, so a module that imports an optional package at module
level passes every other test and still crashes the demo. This reads the source instead: every
module-level import must come from the standard library, Kiln itself, or a distribution the
base dependencies bring (with their own dependencies). An extra's adapter module is declared in
pyproject.toml's [tool.kiln.extra-modules] and may import that extra's packages too.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from pydantic import ValidationError

from kiln.app.settings import Settings
from kiln.connectors import registry
from kiln.historian.duck import db_errors
from kiln.historian.pg_store import PostgresStore

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
META = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(requirements: list[str]) -> set[str]:
    """The distributions these requirements install, with everything they require in turn
    (including the extras they name, such as uvicorn[standard])."""
    found: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = _canonical(req.name)
        key = name + "".join(sorted(f"[{e}]" for e in req.extras))
        if key in found:
            continue
        found.add(key)
        found.add(name)
        try:
            deps = requires(name) or []
        except PackageNotFoundError:
            continue
        for dep in map(Requirement, deps):
            wanted = dep.marker is None or any(
                dep.marker.evaluate({"extra": e}) for e in ("", *req.extras)
            )
            if wanted:
                dep.marker = None
                todo.append(dep)
    return found


def _module_level_imports(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, top-level module) of each import that runs when the module is imported: not
    inside a function, an `if TYPE_CHECKING:` block or a `try` that handles ImportError."""
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module.split(".")[0]
        elif isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                todo += node.body + node.orelse
        elif isinstance(node, ast.Try):
            handled = {ast.unparse(h.type) for h in node.handlers if h.type is not None}
            if not handled & {"ImportError", "ModuleNotFoundError"}:
                todo += node.body
            todo += node.orelse + node.finalbody
        elif isinstance(node, ast.With):
            todo += node.body


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_module_imports_an_optional_package_at_module_level() -> None:
    project = META["project"]
    base = _closure(project["dependencies"])
    extra_modules: dict[str, str] = META["tool"]["kiln"]["extra-modules"]
    distributions = {m: {_canonical(d) for d in ds} for m, ds in packages_distributions().items()}
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        module = _module_name(path)
        allowed = base
        if module in extra_modules:
            allowed = base | _closure(project["optional-dependencies"][extra_modules[module]])
        where = f"{path.relative_to(ROOT)}:{{}}: {module}"
        for line, top in _module_level_imports(ast.parse(path.read_text(), str(path))):
            if top == "kiln" or top in sys.stdlib_module_names:
                continue
            dists = distributions.get(top)
            if dists is None:
                problems.append(f"{where.format(line)} imports {top}, which is not installed")
            elif not dists & allowed:
                problems.append(
                    f"{where.format(line)} imports {top} ({', '.join(sorted(dists))}), "
                    "not a base dependency: import it where it is used"
                )
    assert not problems, "\n".join(problems)


def test_the_import_check_sees_what_it_must() -> None:
    """The walker finds module-level imports, and only those."""
    tree = ast.parse(
        "import a.b\nfrom c import d\nif TYPE_CHECKING:\n    import e\n"
        "try:\n    import f\nexcept ImportError:\n    f = None\n"
        "if x:\n    import g\ndef h():\n    import i\n"
    )
    assert [top for _, top in _module_level_imports(tree)] == ["a", "c", "g"]
    assert "psycopg" not in _closure(META["project"]["dependencies"])
    assert "websockets" in _closure(["uvicorn[standard]"])  # the extras a requirement names


def test_every_public_module_imports() -> None:
    """The script the CI gate runs in the base-only venv, here in the dev venv."""
    done = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "import_modules.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"[1-9]\d+ modules imported, 0 need an extra, 0 failed", done.stdout)


@pytest.mark.parametrize(
    "section",
    [
        {"historian": {"url": "postgresql://kiln@db/plant"}},
        {"model": {"url": "postgresql+psycopg://kiln@db/plant"}},
        {"security": {"audit_url": "postgres://kiln:secret@db/plant"}},
    ],
)
def test_a_postgresql_url_without_its_driver_names_the_fix(
    section: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg -> ModuleNotFoundError
    with pytest.raises(ValidationError) as err:
        Settings.model_validate(section)
    [error] = err.value.errors()
    assert error["msg"].endswith(
        "is a PostgreSQL URL, but the PostgreSQL driver (psycopg) is not installed; "
        "install it with: pip install 'kiln[postgres]'"
    )
    assert "secret" not in error["msg"]
    with pytest.raises(ValueError, match=r"psycopg\) is not installed"):
        PostgresStore("postgresql://kiln@db/plant")


def test_the_installed_package_registers_no_test_only_connector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`fake` exists for Kiln's tests (which opt in, tests/conftest.py), not for a plant."""
    entry_points = META["project"]["entry-points"]["kiln.connectors"]
    assert not [name for name, target in entry_points.items() if "kiln.testing" in target]
    monkeypatch.delenv(registry.TESTING_ENV)
    registry.connector_types.cache_clear()
    try:
        assert set(registry.connector_types()) == {"modbus", "mqtt", "opcua", "sparkplug"}
        monkeypatch.setenv(registry.TESTING_ENV, "1")
        registry.connector_types.cache_clear()
        assert "fake" in registry.connector_types()
    finally:
        registry.connector_types.cache_clear()


def test_database_errors_include_psycopgs_once_it_is_loaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rollback and retry paths catch PostgreSQL's errors without importing its driver."""
    import duckdb
    import psycopg

    assert db_errors() == (duckdb.Error, psycopg.Error)
    monkeypatch.delitem(sys.modules, "psycopg")
    assert db_errors() == (duckdb.Error,)
