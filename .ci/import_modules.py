"""Import every public module of Kiln, as a base-only install (`make demo`) must be able to.

A module listed in pyproject.toml's [tool.kiln.extra-modules] may instead fail for want of a
package of its extra, and for nothing else. Exits 1 naming each module that failed and why.
Run it with the interpreter of the environment to check: `.venv/bin/python .ci/import_modules.py`.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
import tomllib
from pathlib import Path

# Distributions whose top-level module is not their name (it cannot be read from metadata of
# a package that is not installed, which is the case this script checks).
_MODULE_OF = {"nats_py": "nats"}


def _import_name(requirement: str) -> str:
    """The top-level module a requirement installs, e.g. 'psycopg[binary]>=3.1' -> 'psycopg',
    'nats-py>=2.7' -> 'nats'."""
    name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("-", "_")
    return _MODULE_OF.get(name, name)


def main() -> int:
    meta = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    extra_of: dict[str, str] = meta["tool"]["kiln"]["extra-modules"]
    extras: dict[str, list[str]] = meta["project"]["optional-dependencies"]

    import kiln

    failures: list[str] = []
    imported = excused = 0

    def failed(name: str) -> None:
        nonlocal excused
        err = sys.exc_info()[1]
        missing = err.name if isinstance(err, ModuleNotFoundError) else None
        extra = extra_of.get(name)
        if extra and missing and missing.split(".")[0] in map(_import_name, extras[extra]):
            excused += 1
            print(f"import-modules: {name} needs kiln[{extra}] ({missing} is not installed)")
            return
        failures.append(f"{name}: {type(err).__name__}: {err}")

    names = []
    # walk_packages imports each package to find what is below it; onerror sees those that fail.
    for info in pkgutil.walk_packages(kiln.__path__, "kiln.", onerror=failed):
        parts = info.name.split(".")
        # Alembic's env.py scripts run only inside a migration that Alembic has set up.
        if not any(p.startswith("_") for p in parts) and not (
            parts[-1] == "env" and parts[-2].endswith("migrations")
        ):
            names.append(info.name)
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:
            failed(name)
        else:
            imported += 1
    for line in failures:
        print(f"import-modules: FAILED {line}", file=sys.stderr)
    print(
        f"import-modules: {imported} modules imported, {excused} need an extra, "
        f"{len(failures)} failed ({sys.executable})"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
