"""Settings for the whole test suite."""

from __future__ import annotations

import os

from hypothesis import settings

from kiln.connectors.registry import TESTING_ENV

# In CI every property test draws the same examples on every run, so a submission's result
# does not depend on a lucky draw; on a developer's machine they keep exploring (and a run
# with KILN_FUZZ_SECONDS set explores longer: tests/fuzz).
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")


def pytest_configure() -> None:
    # The test-only connector types (`fake`), which no installation registers; subprocess
    # servers started by tests inherit the opt-in.
    os.environ[TESTING_ENV] = "1"
