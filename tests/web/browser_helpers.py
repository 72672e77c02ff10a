"""What the browser tests share: Debian's Chromium, the page's CSP listener, one demo server."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kiln.testing.server import free_port, kiln_command, running_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root without a sandbox, and without the background connections this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Runs before the page's own scripts; Playwright injects it outside the page's CSP. Chromium
# also logs violations to the console itself, but the event names the directive for sure.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) =>
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`));
"""


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium under Playwright; the test fails under CI=true without it, else skips."""
    if not Path(CHROMIUM).exists():
        reason = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def demo_server(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[tuple[str, Path]]:
    """`kiln demo` at five frames a second on a free port: (its URL, its data directory)."""
    port = free_port()
    data = tmp_path_factory.mktemp(name)
    command = kiln_command(
        "demo", "--port", str(port), "--rate", "5", "--data-dir", str(data / "d"),
        "--log-level", "warning",
    )  # fmt: skip
    with running_server(command, port=port, log=data / "server.log"):
        yield f"http://127.0.0.1:{port}", data / "d"
