"""Self-signed X.509 certificates, built one way for every user: the HTTPS certificate of a
first install (`kiln.security.certs`) and the OPC UA application instance certificate
(`kiln.connectors.opcua.certificates`). Each user chooses the key and what the certificate may
be used for; what they share (validity window, key identifiers, signature) is here.

Imports only `cryptography`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

# Valid from a little before `now`, so a peer whose clock lags slightly accepts it at once.
BACKDATE = timedelta(minutes=5)
ORGANIZATION = "Kiln self-signed"


def self_signed(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    *,
    common_name: str,
    names: Sequence[x509.GeneralName],
    usage: x509.KeyUsage,
    extended_usage: Sequence[x509.ObjectIdentifier],
    now: datetime,
    days: int,
) -> x509.Certificate:
    """A certificate for `key`, signed by itself with SHA-256, valid for `days` from just
    before `now`, naming `names` as subjectAltNames (what peers check, RFC 6125; the common
    name is for display), an end entity (not a CA) with these key usages."""
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    if days < 1:
        raise ValueError(f"validity must be at least one day, got {days}")
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
        ]
    )
    public_key = key.public_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(extended_usage)), critical=False)
        .add_extension(ski, critical=False)
        # Python 3.13 verifies strictly (VERIFY_X509_STRICT), which wants the key identifiers.
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def key_usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_encipherment: bool = False,
    data_encipherment: bool = False,
    key_cert_sign: bool = False,
) -> x509.KeyUsage:
    """A KeyUsage extension with the named bits set and every other one clear."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=key_encipherment,
        data_encipherment=data_encipherment,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint of a certificate, colon-separated uppercase hex (the form
    `openssl x509 -fingerprint -sha256` prints)."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()
