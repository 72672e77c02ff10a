"""Self-signed TLS certificates, so a test plant or a first install can serve HTTPS at once.

A self-signed certificate is trusted by pinning it (a client loads it as its CA, or an operator
compares the fingerprint `kiln admin tls self-signed` prints); production should use one issued
by the site's CA.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from kiln.core.files import atomic_write, write_private_file
from kiln.core.x509 import fingerprint, key_usage, self_signed

# A DNS name in A-label form (RFC 1123 labels), optionally a leading wildcard label.
_DNS_NAME_RE = re.compile(
    r"(?:\*\.)?(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)


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
    names = _subject_alt_names(hosts)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed(
        key,
        common_name=hosts[0],
        names=names,
        usage=key_usage(digital_signature=True),  # ECDHE key exchange: signing only
        extended_usage=[ExtendedKeyUsageOID.SERVER_AUTH],
        now=now,
        days=days,
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
