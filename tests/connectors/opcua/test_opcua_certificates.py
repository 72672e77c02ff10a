"""Kiln's OPC UA application certificate and the trust list for servers (files, no sockets)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from kiln.connectors.opcua.certificates import (
    CertificateError,
    TrustList,
    UntrustedServer,
    generate_application_certificate,
    load_certificate,
    load_or_create,
)
from kiln.core.x509 import fingerprint
from kiln.security.certs import generate_self_signed

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
URI = "urn:plant1:kiln:opcua-client"


def test_a_missing_pair_is_generated_once_and_then_reused(tmp_path: Path) -> None:
    cert, key = tmp_path / "pki" / "kiln.der", tmp_path / "pki" / "kiln.pem"
    first = load_or_create(cert, key, application_uri=URI, now=NOW)
    assert first.application_uri == URI
    assert first.private_key.key_size == 2048
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = load_or_create(cert, key, application_uri=None, now=NOW + timedelta(days=1))
    assert again.fingerprint == first.fingerprint  # the URI comes from the certificate now
    assert again.application_uri == URI


def test_half_a_pair_is_refused_not_overwritten(tmp_path: Path) -> None:
    cert, key = tmp_path / "kiln.der", tmp_path / "kiln.pem"
    generate_application_certificate(cert, key, application_uri=URI, now=NOW)
    key.unlink()
    with pytest.raises(CertificateError, match=r"kiln\.pem does not exist but .*kiln\.der does"):
        load_or_create(cert, key, application_uri=None, now=NOW)


def test_unusable_certificates_are_refused_with_the_reason(tmp_path: Path) -> None:
    cert, key = tmp_path / "kiln.der", tmp_path / "kiln.pem"
    generate_application_certificate(cert, key, application_uri=URI, now=NOW)
    with pytest.raises(CertificateError, match=r"not in .* servers check that they match"):
        load_or_create(cert, key, application_uri="urn:other", now=NOW)
    with pytest.raises(CertificateError, match="not now: renew it"):
        load_or_create(cert, key, application_uri=None, now=NOW + timedelta(days=6 * 365))
    other_key = tmp_path / "other.pem"
    generate_application_certificate(tmp_path / "o.der", other_key, application_uri=URI, now=NOW)
    with pytest.raises(CertificateError, match="is not the private key of"):
        load_or_create(cert, other_key, application_uri=None, now=NOW)
    ec_cert, ec_key = tmp_path / "ec.pem", tmp_path / "ec.key"
    generate_self_signed(ec_cert, ec_key, hosts=["plc1"], now=NOW)  # an EC key: TLS, not UA
    with pytest.raises(CertificateError, match="not an RSA key"):
        load_or_create(ec_cert, ec_key, application_uri=None, now=NOW)
    (tmp_path / "junk.der").write_bytes(b"junk")
    with pytest.raises(CertificateError, match=r"is not an X\.509 certificate"):
        load_certificate(tmp_path / "junk.der")


def _ca_and_leaves(tmp_path: Path) -> tuple[x509.Certificate, x509.Certificate]:
    """A site CA (written to ca.pem), a server certificate it issued, and one that only claims
    to be issued by it (signed by another key)."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Plant CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plc1")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(2)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
    )
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return leaf.sign(ca_key, hashes.SHA256()), leaf.sign(leaf_key, hashes.SHA256())


def test_trusted_pinned_or_issued_by_a_trusted_ca(tmp_path: Path) -> None:
    pinned = tmp_path / "trusted" / "plc2.der"
    generate_application_certificate(
        pinned, tmp_path / "plc2.pem", application_uri="urn:plc2", now=NOW, server=True
    )
    issued, forged = _ca_and_leaves(tmp_path / "trusted")
    trust = TrustList.load([tmp_path / "trusted"])  # a directory of .der and .pem files
    trust.check(load_certificate(pinned), endpoint="opc.tcp://plc2:4840", now=NOW)
    trust.check(issued, endpoint="opc.tcp://plc1:4840", now=NOW)
    with pytest.raises(UntrustedServer, match=r"valid from .* not now: the server needs a new one"):
        trust.check(issued, endpoint="opc.tcp://plc1:4840", now=NOW + timedelta(days=60))
    # Naming the trusted CA as issuer is not enough: the CA's signature is checked.
    with pytest.raises(UntrustedServer, match="is not trusted"):
        trust.check(forged, endpoint="opc.tcp://plc1:4840", now=NOW)


def test_an_untrusted_server_is_named_by_its_fingerprint_and_saved(tmp_path: Path) -> None:
    cert = tmp_path / "server.der"
    generate_application_certificate(
        cert, tmp_path / "server.pem", application_uri="urn:plc9", now=NOW, server=True
    )
    server = load_certificate(cert)
    with pytest.raises(UntrustedServer) as err:
        TrustList.load([]).check(
            server, endpoint="opc.tcp://plc9:4840", now=NOW, rejected_dir=tmp_path / "rejected"
        )
    (saved,) = (tmp_path / "rejected").iterdir()
    assert saved.read_bytes() == cert.read_bytes()
    assert str(err.value) == (
        f"the server at opc.tcp://plc9:4840 presents certificate 'urn:plc9' with SHA-256 "
        f"fingerprint {fingerprint(server)}, which is not trusted. If its administrator "
        f"confirms that fingerprint, add the certificate (saved as {saved}) to "
        "trusted_server_certificates"
    )
    with pytest.raises(CertificateError, match="neither a file nor a directory"):
        TrustList.load([tmp_path / "nowhere"])
