"""Secure channels against a real asyncua server that offers only SignAndEncrypt endpoints:
trusted servers, refused ones, and the three user identities."""

from __future__ import annotations

import logging
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from asyncua.crypto import security_policies
from asyncua.ua import MessageSecurityMode
from opcua_plant import FAST, USERS, Certs, PlantServer, until, values

from kiln.connectors.base import ConnectorState
from kiln.connectors.opcua.certificates import generate_application_certificate, load_certificate
from kiln.connectors.opcua.config import OpcUaConfig
from kiln.core.quality import Quality
from kiln.core.x509 import fingerprint


def secure(
    name: str, plant: PlantServer, pki: Path, trusted: list[Path], **fields: Any
) -> OpcUaConfig:
    return OpcUaConfig.model_validate(
        {
            "name": name,
            "endpoint": plant.endpoint,
            "certificate": pki / f"{name}.der",
            "private_key": pki / f"{name}.pem",
            "trusted_server_certificates": trusted,
            "publishing_interval_ms": 50,
            "sampling_interval_ms": 0,
            "reconnect": FAST,
            "nodes": [{"node_id": plant.node_id("Temp"), "path": f"acme/{name}/temp"}],
            **fields,
        }
    )


async def test_sign_and_encrypt_with_a_trusted_server_and_each_identity(
    servers: Any, platform_with: Any, certs: Certs, tmp_path: Path
) -> None:
    pki = tmp_path / "pki"
    # The certificate for the X.509 user identity exists beforehand, so the server knows it.
    generate_application_certificate(
        pki / "byx509.der",
        pki / "byx509.pem",
        application_uri="urn:kiln:x509",
        now=datetime.now(UTC),
    )
    plant = await servers(
        certificate=certs.server_cert,
        private_key=certs.server_key,
        users=True,
        user_certificates=[pki / "byx509.der"],
    )
    password = tmp_path / "password"
    password.write_text(USERS["kiln"] + "\n")
    trusted_dir = tmp_path / "trusted"
    trusted_dir.mkdir()
    (trusted_dir / "line1.der").write_bytes(certs.server_cert.read_bytes())
    configs = [
        # Basic256Sha256 + SignAndEncrypt by default; this trust list is a directory.
        secure("byuser", plant, pki, [trusted_dir], identity="username", username="kiln",
               password_file=password),
        secure("anonymous", plant, pki, [certs.server_cert],
               security_policy="Aes256_Sha256_RsaPss"),
        secure("byx509", plant, pki, [certs.server_cert], identity="certificate"),
    ]  # fmt: skip
    service, sub = await platform_with(configs)
    got = {v.path: (v.value, v.quality) for v in await values(sub, 3)}
    assert got == {f"acme/{c.name}/temp": (20.0, Quality.GOOD) for c in configs}

    # The server saw each identity (the password checked, the X.509 token's signature too).
    assert set(plant.server.iserver.user_manager.granted) == {
        "user kiln",
        "anonymous",
        "certificate",
    }
    byuser = service.runner("byuser").connector._session.client.security_policy
    assert (byuser.URI, byuser.Mode) == (
        security_policies.SecurityPolicyBasic256Sha256.URI,
        MessageSecurityMode.SignAndEncrypt,
    )
    rsapss = service.runner("anonymous").connector._session.client.security_policy
    assert rsapss.URI == security_policies.SecurityPolicyAes256Sha256RsaPss.URI

    # Kiln generated its own certificate and key where the configuration said; key 0600.
    assert load_certificate(pki / "byuser.der").subject.rfc4514_string()
    assert stat.S_IMODE((pki / "byuser.pem").stat().st_mode) == 0o600

    await plant.set("Temp", 21.0)
    assert {v.value for v in await values(sub, 3)} == {21.0}


async def test_untrusted_server_and_wrong_password_are_refused(
    servers: Any,
    platform_with: Any,
    certs: Certs,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    plant = await servers(certificate=certs.server_cert, private_key=certs.server_key, users=True)
    pki, rejected = tmp_path / "pki", tmp_path / "rejected"
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password")
    configs = [
        # Trusts another server's certificate, not this one's.
        secure("untrusted", plant, pki, [certs.other_cert], rejected_certificates_dir=rejected),
        secure("wrongpw", plant, pki, [certs.server_cert], identity="username", username="kiln",
               password_file=wrong),
    ]  # fmt: skip
    service, _ = await platform_with(configs, connected=False)
    untrusted, wrongpw = service.runner("untrusted"), service.runner("wrongpw")
    await until(
        lambda: all(r.outage is not None and r.outage.attempts >= 3 for r in service.runners)
    )

    digest = fingerprint(load_certificate(certs.server_cert))
    reason = untrusted.outage.reason
    assert reason.startswith(f"UntrustedServer: the server at {plant.endpoint} presents")
    assert f"SHA-256 fingerprint {digest}, which is not trusted" in reason
    assert "add the certificate" in reason and "to trusted_server_certificates" in reason
    (saved,) = rejected.iterdir()  # ready to be moved to the trust list once checked
    assert saved.read_bytes() == certs.server_cert.read_bytes() and str(saved) in reason

    assert wrongpw.outage.reason == (
        f"OpcUaError: {plant.endpoint} refused user 'kiln': BadUserAccessDenied (User does not "
        "have permission to perform the requested operation)"
    )
    # Retrying with backoff (between attempts ERROR, during one CONNECTING), never connected.
    assert untrusted.link.stats.reconnects == wrongpw.link.stats.reconnects == 0
    assert ConnectorState.CONNECTED not in (untrusted.state, wrongpw.state)
    # Logged once each, however often retried; asyncua's own fault reports stay at debug.
    client_side = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING
        and not r.name.startswith("asyncua.server")
        and not r.getMessage().startswith("Generated an OPC UA client certificate")
    ]
    assert sorted(client_side) == [
        f"Connector untrusted lost its source: {untrusted.outage.reason}; retrying with "
        "backoff (logged again on recovery)",
        f"Connector wrongpw lost its source: {wrongpw.outage.reason}; retrying with backoff "
        "(logged again on recovery)",
    ]
