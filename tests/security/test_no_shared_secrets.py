"""No shared secret or default password in the repository or in a fresh install, and secrets
never reach the log (the peer CVE-2023-26462 shipped a static signing key)."""

from __future__ import annotations

import logging
import re
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kiln.app.server import build_app
from kiln.app.settings import Settings
from kiln.security.passwords import PasswordHasherSettings
from kiln.security.secrets import SECRET_FILE_NAME
from kiln.testing.auth import admin_headers, device_headers, initial_admin_password

ROOT = Path(__file__).resolve().parents[2]

# What a committed secret looks like: a private key, a Kiln credential, a signed token, or a
# password given a literal value in configuration or code.
SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "Kiln credential": re.compile(r"kiln_(?:dev|key|rt)_[0-9a-f]{16}_[A-Za-z0-9_-]{20,}"),
    "JWT": re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
}
# A password given a literal value: in configuration files, and assigned a string in code.
CONFIG_SUFFIXES = {".yaml", ".yml", ".toml", ".ini", ".cfg", ".env", ".json"}
CONFIG_PASSWORD = re.compile(
    r"""^\s*\w*password\s*[:=]\s*["']?[^\s"'{<$]{6,}""", re.IGNORECASE | re.MULTILINE
)
CODE_PASSWORD = re.compile(r"""\w*password\w*\s*=\s*["'][^"'{]{6,}["']""", re.IGNORECASE)


def patterns_for(path: Path) -> dict[str, re.Pattern[str]]:
    extra = {}
    if path.suffix in CONFIG_SUFFIXES:
        extra["literal password setting"] = CONFIG_PASSWORD
    elif path.suffix == ".py":
        extra["literal password in code"] = CODE_PASSWORD
    return {**SECRET_PATTERNS, **extra}


# Test fixtures may hold throwaway passwords; they are not installs.
NOT_SHIPPED = ("tests/",)


def tracked_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [ROOT / name for name in out.split("\0") if name]


def test_the_repository_holds_no_secret() -> None:
    files = tracked_files()
    assert any(f.name == "pyproject.toml" for f in files), "not a checkout?"
    found = []
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(NOT_SHIPPED) or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for what, pattern in patterns_for(path).items():
            if match := pattern.search(text):
                found.append(f"{rel}: {what}: {match.group(0)[:40]!r}")
    assert found == []


def test_the_patterns_find_what_they_look_for() -> None:
    # The scan above passes only if it could fail: each pattern catches its example.
    examples = {
        "private key": "-----BEGIN EC PRIVATE KEY-----",
        "Kiln credential": "kiln_dev_0123456789abcdef_" + "x" * 43,
        "JWT": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlX2hlcmU",
    }
    for what, text in examples.items():
        assert SECRET_PATTERNS[what].search(text), what
    assert CONFIG_PASSWORD.search("admin_password: hunter22")
    assert not CONFIG_PASSWORD.search("password: ${KILN_PW}")
    assert CODE_PASSWORD.search('DEFAULT_PASSWORD = "changeme"')
    assert not CODE_PASSWORD.search("password: Annotated[str, Form()]")


def _first_start(data_dir: Path, caplog: pytest.LogCaptureFixture) -> tuple[str, bytes, str]:
    """Start a fresh install, sign in, make a device; (admin password, secret, device token)."""
    settings = Settings(data_dir=data_dir)
    app = build_app(settings, password_settings=PasswordHasherSettings.for_tests())
    with caplog.at_level(logging.DEBUG), TestClient(app) as client:
        admin = admin_headers(client, data_dir)
        device = device_headers(client, admin, "probe", "acme")
        token = device["Authorization"].removeprefix("Bearer ")
        client.post("/api/v1/auth/token", data={"grant_type": "password", "username": "admin",
                                                "password": "a wrong password"})  # fmt: skip
    return initial_admin_password(data_dir), (data_dir / SECRET_FILE_NAME).read_bytes(), token


def test_fresh_installs_share_nothing_and_log_no_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pw1, secret1, token1 = _first_start(tmp_path / "one", caplog)
    pw2, secret2, token2 = _first_start(tmp_path / "two", caplog)
    assert pw1 != pw2 and secret1 != secret2 and token1 != token2
    assert len(pw1) >= 16 and len(secret1) >= 32
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Created the first administrator" in logged  # the log was captured
    for secret in (pw1, pw2, token1, token2, "a wrong password"):
        assert secret not in logged
    for secret in (secret1, secret2):
        assert secret.hex() not in logged
