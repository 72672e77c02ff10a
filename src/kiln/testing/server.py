"""Running a server as a real subprocess, for end-to-end tests and benchmarks."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def kiln_command(*args: str) -> list[str]:
    """`kiln ARGS...` run by this interpreter, whether or not the script is on PATH."""
    return [sys.executable, "-m", "kiln.app.cli", *args]


@contextmanager
def running_server(
    command: Sequence[str],
    *,
    port: int,
    ready_path: str = "/api/v1/health",
    log: Path | None = None,
    cwd: Path | None = None,
    timeout: float = 60.0,
    ca_file: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `command`, wait until http://127.0.0.1:PORT/READY_PATH answers, stop it on exit.

    Output goes to `log` (appended), which is quoted in the error when the server does not
    come up, so a failing test shows why.
    """
    out = log.open("ab") if log is not None else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    finally:
        if log is not None and not isinstance(out, int):
            out.close()
    try:
        scheme = "http" if ca_file is None else "https"
        context = None if ca_file is None else ssl.create_default_context(cafile=str(ca_file))
        _wait_ready(f"{scheme}://127.0.0.1:{port}{ready_path}", proc, timeout, log, context)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(
    url: str,
    proc: subprocess.Popen[bytes],
    timeout: float,
    log: Path | None,
    context: ssl.SSLContext | None,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError:
            pass  # it answers, but not yet healthy
        except (urllib.error.URLError, OSError):
            pass  # not listening yet
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log is not None else ""
            state = f"exited with {proc.returncode}" if proc.poll() is not None else "timed out"
            raise RuntimeError(f"server {state} before {url} answered 200:\n{tail}")
        time.sleep(0.1)
