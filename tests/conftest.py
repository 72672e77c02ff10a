"""Settings for the whole test suite."""

from __future__ import annotations

import os

from kiln.connectors.registry import TESTING_ENV


def pytest_configure() -> None:
    # The test-only connector types (`fake`), which no installation registers; subprocess
    # servers started by tests inherit the opt-in.
    os.environ[TESTING_ENV] = "1"
