"""`kiln admin` and `kiln audit`: the operator's commands, against a real data directory and,
where it matters, a real server subprocess that must follow their changes."""

from __future__ import annotations

import re
import sqlite3
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from kiln.app.cli import main
from kiln.testing.auth import admin_headers
from kiln.testing.server import free_port, kiln_command, running_server

pytestmark = pytest.mark.slow


def admin(data: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`kiln admin --data-dir DATA ARGS` in a subprocess (real argv, real stdin)."""
    return subprocess.run(
        kiln_command("admin", "--data-dir", str(data), *args),
        input=stdin or "",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def credential(out: str) -> str:
    match = re.search(r"\(shown once[^)]*\): (\S+)", out)
    assert match, out
    return match.group(1)


def test_admin_needs_an_existing_data_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["admin", "--data-dir", str(tmp_path / "nope"), "users", "list"]) == 2
    assert "start the platform once, or give --data-dir" in capsys.readouterr().err


def test_users_roles_and_errors_that_say_what_to_do(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    made = admin(data, "users", "add", "alice", "--role", "operator", "--scope", "acme/plant1",
                 stdin="a long enough passphrase\n")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "first administrator 'admin'" in made.stdout  # the first command bootstraps
    listed = admin(data, "users", "list").stdout
    assert re.search(r"alice\s+operator@acme/plant1\s+enabled", listed), listed
    bad = admin(data, "users", "add", "bob", "--role", "nope", "--generate")
    assert bad.returncode == 2
    assert "unknown role 'nope'" in bad.stderr and "operator" in bad.stderr
    taken = admin(data, "users", "add", "Alice", "--generate")
    assert taken.returncode == 2 and "already" in taken.stderr
    key = admin(data, "keys", "add", "grafana", "--user", "alice", "--permission", "audit:read")
    assert key.returncode == 2 and "permissions its owner lacks: audit:read" in key.stderr
    # Every change is in the audit log, by the operator at the console.
    rows = (
        sqlite3.connect(data / "audit.db")
        .execute("SELECT actor, source, action, target FROM audit_log ORDER BY seq")
        .fetchall()
    )
    assert [(r[1], r[2], r[3]) for r in rows] == [("cli", "user.create", "alice")]
    assert rows[0][0].startswith("cli:")


def test_a_device_revoked_from_the_console_is_refused_by_the_running_server(
    tmp_path: Path,
) -> None:
    config = tmp_path / "plant.yaml"
    config.write_text("name: admin test\ndata_dir: data\n")
    data = tmp_path / "data"
    port = free_port()
    log = tmp_path / "server.log"
    with running_server(kiln_command("run", "--config", str(config), "--port", str(port)),
                        port=port, log=log):  # fmt: skip
        made = admin(data, "devices", "add", "press7", "--prefix", "acme/plant1/press7")
        assert made.returncode == 0, made.stderr
        device = {"Authorization": f"Bearer {credential(made.stdout)}"}
        base = f"http://127.0.0.1:{port}/api/v1"
        values = [
            {"path": "acme/plant1/press7/force", "value": 1.5, "ts": 1_767_225_600_000},
            {"path": "acme/plant1/press70/force", "value": 9.9, "ts": 1_767_225_600_000},
        ]
        # At once: an unknown credential makes the server look for a change made elsewhere
        # (the README's steps send the new credential the moment the command prints it).
        r = httpx.post(f"{base}/ingest", json={"values": values}, headers=device)
        assert r.status_code == 207, r.text
        assert r.json()["accepted"] == 1
        assert "may publish only under acme/plant1/press7" in r.json()["rejected"][0]["error"]

        assert admin(data, "devices", "revoke", "press7").returncode == 0
        deadline = time.monotonic() + 10
        while (r := httpx.post(f"{base}/ingest", json={"values": values[:1]}, headers=device)
               ).status_code == 207 or r.status_code == 200:  # fmt: skip
            assert time.monotonic() < deadline, "the running server still accepts it"
            time.sleep(0.1)
        assert r.status_code == 401
        listed = admin(data, "devices", "list").stdout
        assert re.search(r"press7\s+acme/plant1/press7\s+revoked", listed), listed


def test_audit_verify_names_a_tampered_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a1", "a2", "a3"):
        assert admin(data, "users", "add", name, "--generate").returncode == 0
    assert main(["audit", "verify", "--data-dir", str(data)]) == 0
    assert "audit log OK: 3 records verified" in capsys.readouterr().out
    db = sqlite3.connect(data / "audit.db")
    with db:
        db.execute("UPDATE audit_log SET target = 'mallory' WHERE seq = 2")
    db.close()
    assert main(["audit", "verify", "--data-dir", str(data)]) == 1
    out = capsys.readouterr().out
    assert "TAMPERED" in out and "record 2" in out


def test_tls_self_signed_certificate_serves_https(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    assert main(["admin", "tls", "self-signed", "--cert", str(cert), "--key", str(key)]) == 0
    assert key.stat().st_mode & 0o777 == 0o600
    config = tmp_path / "plant.yaml"
    config.write_text(
        f"name: tls test\ndata_dir: data\nhttp:\n  tls_cert: {cert}\n  tls_key: {key}\n"
    )
    port = free_port()
    command = kiln_command("run", "--config", str(config), "--port", str(port))
    with running_server(command, port=port, log=tmp_path / "server.log", ca_file=cert):
        with httpx.Client(
            base_url=f"https://127.0.0.1:{port}",
            verify=ssl.create_default_context(cafile=str(cert)),
        ) as client:
            r = client.get("/api/v1/health")
            assert r.status_code == 200
            assert r.headers["strict-transport-security"].startswith("max-age=")
            headers = admin_headers(client, tmp_path / "data")
            assert client.get("/api/v1/auth/me", headers=headers).json()["username"] == "admin"
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5)  # no plain HTTP
