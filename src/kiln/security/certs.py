"""Self-signed TLS certificates, so a test plant or a first install can serve HTTPS at once.

A self-signed certificate is trusted by pinning it (a client loads it as its CA, or an operator
compares the fingerprint `kiln admin tls self-signed` prints); production should use one issued
by the site's CA.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kiln.security.secrets import atomic_write, write_private_file

# A DNS name in A-label form (RFC 1123 labels), optionally a leading wildcard label.
_DNS_NAME_RE = re.compile(
    r"(?:\*\.)?(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)
# Valid from a little before `now`, so a client whose clock lags slightly accepts it at once.
_BACKDATE = timedelta(minutes=5)


def generate_self_signed(
    cert_path: Path,
    key_path: Path,
    *,
    hosts: list[str],
    now: datetime,
    days: int = 365,
) -> str:
    """Write a new EC P-256 key (mode 0600) and a self-signed certificate for `hosts`.

    `hosts` are DNS names and IP addresses; each becomes a subjectAltName entry, which is what
    clients check (RFC 6125; the common name is only for display). Both files are replaced
    atomically. Returns the certificate's SHA-256 fingerprint as colon-separated hex, the form
    `openssl x509 -fingerprint -sha256` prints.
    """
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    if days < 1:
        raise ValueError(f"validity must be at least one day, got {days}")
    names = _subject_alt_names(hosts)

    key = ec.generate_private_key(ec.SECP256R1())
    public_key = key.public_key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, hosts[0]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Kiln self-signed"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        # Python 3.13 verifies strictly (VERIFY_X509_STRICT), which wants the key identifiers.
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )

    key_pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    # Key first: a crash between the two leaves an old certificate that no longer matches,
    # which TLS start-up reports, never a new certificate beside an old key.
    write_private_file(key_path, key_pem.decode("ascii"))
    atomic_write(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return fingerprint(cert)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint of a certificate, colon-separated uppercase hex."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _subject_alt_names(hosts: list[str]) -> list[x509.GeneralName]:
    if not hosts:
        raise ValueError("at least one host name or IP address is needed")
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
            continue
        except ValueError:
            pass
        if len(host) > 253 or not _DNS_NAME_RE.fullmatch(host):
            raise ValueError(
                f"{host!r} is neither an IP address nor a DNS name "
                "(use letters, digits, '-' and '.'; internationalised names in xn-- form)"
            )
        names.append(x509.DNSName(host.lower()))
    return names
