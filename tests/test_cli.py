"""The `kiln` command: help, config check, and the shipped example configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.app.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in ("demo", "run", "config"):
        assert command in out


def test_shipped_example_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(ROOT / "examples" / "plant.yaml")]) == 0
    assert "OK (2 asset types, 7 assets" in capsys.readouterr().out


def test_config_check_reports_problems_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("http:\n  port: eighty\n")
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: http.port" in err
    assert "Fix: give a whole number" in err


def test_run_with_missing_config_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--config", "/nonexistent/plant.yaml"]) == 2
    assert "no such configuration file" in capsys.readouterr().err


def test_run_refuses_a_historian_url_that_is_not_postgresql(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text(f"data_dir: {tmp_path / 'data'}\n")
    assert main(["run", "--config", str(plant), "--historian-url", "mysql://root@db/h"]) == 2
    assert "historian.url must be a PostgreSQL URL" in capsys.readouterr().err


def test_run_takes_the_historian_url_into_the_settings(tmp_path: Path) -> None:
    import argparse

    from kiln.app.cli import _override
    from kiln.app.settings import Settings

    args = argparse.Namespace(host=None, port=None, log_level=None,
                              historian_url="postgresql://kiln:secret@db/plant")  # fmt: skip
    settings = _override(Settings(data_dir=tmp_path), args)
    assert settings.historian.backend == "postgresql"
    assert settings.historian.url == "postgresql://kiln:secret@db/plant"
