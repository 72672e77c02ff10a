"""Certificates of an OPC UA secure channel: Kiln's own, and the servers it trusts.

Kiln's application instance certificate (Part 6, 6.2.2) signs and encrypts the channel and
can double as the user's X.509 identity. When the configured certificate and key files do not
exist yet, a self-signed RSA-2048/SHA-256 pair is generated there (the key readable by its owner
only, valid for five years) and its fingerprint is logged: OPC UA servers trust clients by certificate, so the server's
administrator must add it to the server's trust list once. Half a pair (one file present, the
other missing) is refused rather than overwritten, since a key is never replaced silently.

A server is trusted only if its certificate is in the trust list or directly issued by a CA
certificate in it, and is within its validity period. Anything else is refused with its SHA-256
fingerprint, so an operator can compare it with the one the server's administrator sees before
trusting it; there is no trust on first use.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kiln.core.errors import KilnError
from kiln.core.files import atomic_write
from kiln.core.x509 import fingerprint, key_usage, self_signed

_LOGGER = logging.getLogger(__name__)

_CERT_SUFFIXES = (".der", ".pem", ".crt", ".cer")
_DAYS = 5 * 365  # generated certificates: re-trusting a client on every server yearly hurts


class CertificateError(KilnError):
    """A certificate or key cannot be used; the message says which file and why."""


class UntrustedServer(KilnError):
    """The server's certificate is not trusted; the message has its fingerprint and the fix."""


@dataclass(frozen=True, slots=True)
class AppCertificate:
    """Kiln's application instance certificate and key, loaded."""

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey
    application_uri: str

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.certificate)


def default_application_uri() -> str:
    return f"urn:{socket.gethostname()}:kiln:opcua-client"


def generate_application_certificate(
    cert_path: Path,
    key_path: Path,
    *,
    application_uri: str,
    now: datetime,
    hosts: Sequence[str] = (),
    server: bool = False,
    days: int = _DAYS,
) -> str:
    """Write a new RSA-2048 key (0600) and a self-signed OPC UA application instance
    certificate (Part 6, 6.2.2: URI and DNS subjectAltNames, the key usages the secure channel
    needs); return its SHA-256 fingerprint.

    A `.pem` certificate path gets PEM, any other DER (what OPC UA tools exchange); a `.der`
    key path gets DER, any other PEM. `server` makes a server certificate (tests, simulators).
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    names += [x509.DNSName(h) for h in dict.fromkeys([*hosts, socket.gethostname()])]
    cert = self_signed(
        key,
        common_name=application_uri[:64],
        names=names,
        # What the secure channel signs and encrypts with (Part 6, 6.2.2); key_cert_sign
        # because a self-signed certificate verifies its own signature.
        usage=key_usage(
            digital_signature=True,
            content_commitment=True,
            key_encipherment=True,
            data_encipherment=True,
            key_cert_sign=True,
        ),
        extended_usage=[
            ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        ],
        now=now,
        days=days,
    )
    key_der = key_path.suffix.lower() == ".der"
    key_bytes = key.private_bytes(
        serialization.Encoding.DER if key_der else serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_pem = cert_path.suffix.lower() == ".pem"
    cert_bytes = cert.public_bytes(
        serialization.Encoding.PEM if cert_pem else serialization.Encoding.DER
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    # Key first: a crash between the two leaves a key without certificate, which the next
    # start reports as half a pair instead of pairing a new certificate with an old key.
    atomic_write(key_path, key_bytes, mode=0o600)
    atomic_write(cert_path, cert_bytes, mode=0o644)
    return fingerprint(cert)


def load_or_create(
    cert_path: Path, key_path: Path, *, application_uri: str | None, now: datetime
) -> AppCertificate:
    """Kiln's certificate and key from these paths, generating both when neither exists."""
    have_cert, have_key = cert_path.is_file(), key_path.is_file()
    if not have_cert and not have_key:
        uri = application_uri or default_application_uri()
        digest = generate_application_certificate(cert_path, key_path, application_uri=uri, now=now)
        _LOGGER.warning(
            "Generated an OPC UA client certificate at %s (SHA-256 %s, application URI %s); "
            "each server must trust it before Kiln can connect securely",
            cert_path,
            digest,
            uri,
        )
    elif not have_cert or not have_key:
        present, missing = (cert_path, key_path) if have_cert else (key_path, cert_path)
        raise CertificateError(
            f"{missing} does not exist but {present} does: give both the certificate and its "
            "key, or remove the other file to have a new pair generated"
        )
    cert = load_certificate(cert_path)
    key = _load_private_key(key_path)
    if cert.public_key() != key.public_key():
        raise CertificateError(f"{key_path} is not the private key of {cert_path}")
    if key.key_size < 2048:
        raise CertificateError(
            f"{key_path} is a {key.key_size}-bit RSA key; the OPC UA policies need 2048 to 4096"
        )
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise CertificateError(
            f"{cert_path} is valid from {cert.not_valid_before_utc:%Y-%m-%d} to "
            f"{cert.not_valid_after_utc:%Y-%m-%d}, not now: renew it (or delete it and its key "
            "to have a new pair generated, which each server must trust again)"
        )
    uris = _uris(cert)
    if application_uri is not None and uris and application_uri not in uris:
        raise CertificateError(
            f"application_uri {application_uri!r} is not in {cert_path} ({', '.join(uris)}); "
            "servers check that they match (Part 4, 5.6.2): leave application_uri out"
        )
    found = application_uri or (uris[0] if uris else None)
    if found is None:
        raise CertificateError(
            f"{cert_path} has no application URI (a URI subjectAltName), which OPC UA requires"
        )
    return AppCertificate(cert, key, found)


def load_certificate(path: Path) -> x509.Certificate:
    """One certificate from a PEM or DER file (told apart by content, not name)."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CertificateError(f"cannot read certificate {path}: {err.strerror}") from None
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as err:
        raise CertificateError(f"{path} is not an X.509 certificate: {err}") from None


def _load_private_key(path: Path) -> rsa.RSAPrivateKey:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CertificateError(f"cannot read private key {path}: {err.strerror}") from None
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_der_private_key(data, password=None)
    except TypeError:
        raise CertificateError(
            f"{path} is encrypted; Kiln needs an unencrypted key file readable by it only"
        ) from None
    except ValueError as err:
        raise CertificateError(f"{path} is not a private key: {err}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError(
            f"{path} is not an RSA key; the OPC UA security policies use RSA certificates"
        )
    return key


def _uris(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(san.value.get_values_for_type(x509.UniformResourceIdentifier))


def subject_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


@dataclass(frozen=True, slots=True)
class TrustList:
    """The server certificates (and CAs) Kiln trusts."""

    certificates: tuple[x509.Certificate, ...]

    @classmethod
    def load(cls, locations: Sequence[Path]) -> TrustList:
        """Certificates from files and directories (their .der, .pem, .crt, .cer files)."""
        certs: list[x509.Certificate] = []
        for location in locations:
            if location.is_dir():
                files = sorted(p for p in location.iterdir() if p.suffix.lower() in _CERT_SUFFIXES)
                certs.extend(load_certificate(p) for p in files if p.is_file())
            elif location.is_file():
                certs.append(load_certificate(location))
            else:
                raise CertificateError(
                    f"trusted_server_certificates: {location} is neither a file nor a directory"
                )
        return cls(tuple(certs))

    def check(
        self,
        cert: x509.Certificate,
        *,
        endpoint: str,
        now: datetime,
        rejected_dir: Path | None = None,
    ) -> None:
        """Raise UntrustedServer unless `cert` is trusted and valid at `now`."""
        digest = fingerprint(cert)
        trusted = any(fingerprint(t) == digest for t in self.certificates) or any(
            _issued_by(cert, ca) for ca in self.certificates
        )
        if not trusted:
            saved = _save_rejected(cert, digest, rejected_dir)
            where = f" (saved as {saved})" if saved else ""
            raise UntrustedServer(
                f"the server at {endpoint} presents certificate {subject_name(cert)!r} with "
                f"SHA-256 fingerprint {digest}, which is not trusted. If its administrator "
                f"confirms that fingerprint, add the certificate{where} to "
                "trusted_server_certificates"
            )
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise UntrustedServer(
                f"the server at {endpoint} presents certificate {subject_name(cert)!r} "
                f"(SHA-256 {digest}) valid from {cert.not_valid_before_utc:%Y-%m-%d} to "
                f"{cert.not_valid_after_utc:%Y-%m-%d}, not now: the server needs a new one"
            )


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """True if `ca` is a CA certificate that signed `cert` (one level; no chain building)."""
    if cert.issuer != ca.subject or cert.subject == ca.subject:
        return False
    try:
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    if not constraints.ca:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _save_rejected(cert: x509.Certificate, digest: str, directory: Path | None) -> Path | None:
    if directory is None:
        return None
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", subject_name(cert))[:40].strip("._") or "server"
    path = directory / f"{name} [{digest.replace(':', '')[:16].lower()}].der"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            atomic_write(path, cert.public_bytes(serialization.Encoding.DER), mode=0o644)
    except OSError as err:
        _LOGGER.debug("Could not save the rejected certificate to %s: %s", path, err)
        return None
    return path
