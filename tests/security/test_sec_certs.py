from __future__ import annotations

import ipaddress
import os
import ssl
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kiln.security.certs import generate_self_signed

HOSTS = ["localhost", "kiln.example", "127.0.0.1", "::1"]


def _generate(tmp_path: Path, now: datetime, days: int = 365) -> tuple[Path, Path, str]:
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    fp = generate_self_signed(cert_path, key_path, hosts=HOSTS, now=now, days=days)
    return cert_path, key_path, fp


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, server_hostname: str) -> None:
    """A full TLS handshake between two contexts in memory, without sockets."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_hostname=server_hostname)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        done = 0
        for side in (c, s):
            try:
                side.do_handshake()
                done += 1
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if done == 2:
            return
    raise AssertionError("handshake did not complete")


def test_certificate_contents(tmp_path: Path) -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    cert_path, key_path, fp = _generate(tmp_path, now, days=30)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "kiln.example"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert cert.issuer == cert.subject
    assert cert.not_valid_before_utc == now - timedelta(minutes=5)
    assert cert.not_valid_after_utc == now + timedelta(days=30)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert fp == cert.fingerprint(hashes.SHA256()).hex(":").upper()
    assert len(fp) == 32 * 3 - 1

    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    assert key.public_key() == cert.public_key()


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_key_file_is_owner_only_and_certificate_public(tmp_path: Path, umask: int) -> None:
    # The modes are Kiln's choice whatever the umask: a strict one must not hide the
    # certificate from a proxy running as another user, a lax one must not expose the key.
    old = os.umask(umask)
    try:
        cert_path, key_path, _ = _generate(tmp_path, datetime.now(UTC))
    finally:
        os.umask(old)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert_path.stat().st_mode) == 0o644


def test_regenerating_replaces_both_files(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    *_, first = _generate(tmp_path, now)
    cert_path, key_path, second = _generate(tmp_path, now)
    assert first != second
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_path, key_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tls.crt", "tls.key"]


@pytest.mark.parametrize("server_hostname", ["localhost", "kiln.example", "127.0.0.1", "::1"])
def test_tls_handshake_verifies_against_the_pinned_certificate(
    tmp_path: Path, server_hostname: str
) -> None:
    cert_path, key_path, _ = _generate(tmp_path, datetime.now(UTC))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    # What Python 3.13 turns on by default; the certificate must pass it too.
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    _handshake(server, client, server_hostname)


def test_tls_handshake_refuses_a_host_not_in_the_certificate(tmp_path: Path) -> None:
    cert_path, key_path, _ = _generate(tmp_path, datetime.now(UTC))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _handshake(server, client, "other.example")


@pytest.mark.parametrize("hosts", [[], ["bad host"], ["-x.example"], ["a" * 64 + ".example"]])
def test_bad_hosts_are_refused(tmp_path: Path, hosts: list[str]) -> None:
    with pytest.raises(ValueError, match=r"host|DNS name"):
        generate_self_signed(tmp_path / "c", tmp_path / "k", hosts=hosts, now=datetime.now(UTC))
    assert list(tmp_path.iterdir()) == []


def test_naive_now_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone"):
        generate_self_signed(
            tmp_path / "c", tmp_path / "k", hosts=["localhost"], now=datetime(2026, 1, 1)
        )
