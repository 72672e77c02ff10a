"""The layer rule is enforced: `lint-imports` (run by `make lint`) fails on an import against it.

The contracts live in pyproject.toml. Each case copies the package's modules to a temporary
folder, adds one import that breaks the rule, and runs the same command `make lint` runs on the
copy: it must fail and name the contract. The unchanged copy must pass, so a failure means the
added import, not the copy.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy(tmp_path: Path) -> Path:
    """The Python files of src/kiln under tmp_path/kiln, and the contracts beside them."""
    shutil.copytree(
        ROOT / "src" / "kiln",
        tmp_path / "kiln",
        ignore=lambda _dir, names: [
            n for n in names if n in ("static", "__pycache__") or n.endswith((".pyc", ".js"))
        ],
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH puts the copy ahead of the editable install's finder, which comes last.
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _add_import(tree: Path, module: str, statement: str) -> None:
    path = tree.joinpath(*module.split(".")).with_suffix(".py")
    path.write_text(path.read_text() + f"\n{statement}  # added by the test\n")


def test_the_layer_rule_holds_on_the_code_as_it_is(tmp_path: Path) -> None:
    result = _lint(_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


@pytest.mark.parametrize(
    ("module", "statement", "contract"),
    [
        # The kernel reaching up to the composition root.
        ("kiln.core.clock", "import kiln.app.settings", "Layers"),
        # A domain reaching up to the API.
        ("kiln.historian.query", "import kiln.api.deps", "Layers"),
        # A domain reaching into another's internals instead of its package module.
        ("kiln.connectors.runner", "import kiln.historian.store", "Domains meet"),
        ("kiln.historian.series", "import kiln.security.store", "Domains meet"),
    ],
)
def test_an_import_against_the_rule_fails_lint(
    tmp_path: Path, module: str, statement: str, contract: str
) -> None:
    tree = _copy(tmp_path)
    _add_import(tree, module, statement)
    result = _lint(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = [line for line in result.stdout.splitlines() if "BROKEN" in line]
    assert any(line.startswith(contract) for line in broken), result.stdout
    assert module in result.stdout
