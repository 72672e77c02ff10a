"""Opening an asyncua client with Kiln's security rules; shared by the connector and browse.

The secure path (Part 4, 5.4 and 5.6; Part 6, 6.7): fetch the server's endpoints over a
discovery channel without security (GetEndpoints is the one service meant for that), pick the
endpoint with the configured policy and mode, refuse the server unless its certificate is
trusted, then open the signed (and encrypted) channel pinned to exactly that certificate and
create the session. asyncua refuses a session whose server certificate differs from the one
the channel was opened with, so the certificate checked is the one used.

Reconnecting is not done here: the client is made with asyncua's auto-reconnect off, and the
connector runner reconnects, backs off and logs (`kiln.connectors.runner`). asyncua's own
connection watchdog (a periodic read of ServerStatus.State) stays on to notice a server that
stopped answering without closing the connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto import security_policies, uacrypto
from asyncua.ua.status_codes import StatusCodes, get_name_and_doc
from asyncua.ua.uaerrors import UaStatusCodeError
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from kiln.connectors.opcua.certificates import (
    AppCertificate,
    TrustList,
    default_application_uri,
    load_or_create,
)
from kiln.connectors.opcua.config import (
    Identity,
    OpcUaConnection,
    SecurityMode,
    SecurityPolicy,
)
from kiln.core.clock import Clock, us_to_datetime
from kiln.core.errors import KilnError

_LOGGER = logging.getLogger(__name__)
# asyncua narrates every connect (channel, session, subscription) at info; the connector
# runner already says once that the connector is connected, and once when it is lost.
for _chatty in ("asyncua.client", "asyncua.uaprotocol"):
    logging.getLogger(_chatty).setLevel(logging.WARNING)

_POLICIES: dict[SecurityPolicy, type[security_policies.SecurityPolicy]] = {
    SecurityPolicy.BASIC256SHA256: security_policies.SecurityPolicyBasic256Sha256,
    SecurityPolicy.AES128_SHA256_RSAOAEP: security_policies.SecurityPolicyAes128Sha256RsaOaep,
    SecurityPolicy.AES256_SHA256_RSAPSS: security_policies.SecurityPolicyAes256Sha256RsaPss,
}
_MODES = {
    SecurityMode.SIGN: ua.MessageSecurityMode.Sign,
    SecurityMode.SIGN_AND_ENCRYPT: ua.MessageSecurityMode.SignAndEncrypt,
}
# The server refused the client's certificate or signature (Part 4, 7.39 and Part 6, 6.7.4).
_REFUSED_CERTIFICATE = {
    StatusCodes.BadSecurityChecksFailed,
    StatusCodes.BadCertificateUntrusted,
    StatusCodes.BadCertificateInvalid,
    StatusCodes.BadCertificateTimeInvalid,
    StatusCodes.BadCertificateUriInvalid,
    StatusCodes.BadCertificateUseNotAllowed,
    StatusCodes.BadCertificateRevoked,
    StatusCodes.BadCertificateIssuerRevoked,
}
_REFUSED_IDENTITY = {
    StatusCodes.BadUserAccessDenied,
    StatusCodes.BadIdentityTokenInvalid,
    StatusCodes.BadIdentityTokenRejected,
    StatusCodes.BadUserSignatureInvalid,
}


class OpcUaError(KilnError):
    """The server cannot be used as configured; the message says why and what to change."""


@dataclass(frozen=True, slots=True)
class Opened:
    client: Client
    app: AppCertificate | None  # Kiln's certificate, when the channel or identity uses one


def status_text(code: int) -> str:
    """`BadUserAccessDenied (User does not have permission ...)`, or the hex code."""
    name, doc = get_name_and_doc(code)
    return f"{name} ({doc.rstrip('.')})" if doc else (name or f"0x{code:08X}")


async def open_client(conn: OpcUaConnection, clock: Clock, *, label: str) -> Opened:
    """A connected, activated asyncua client (or an error that says what to change)."""
    client = Client(
        conn.endpoint, timeout=conn.request_timeout_s, watchdog_intervall=conn.watchdog_s
    )
    client.session_timeout = int(conn.session_timeout_s * 1000)
    client.name = client.description = f"Kiln {label}"
    client.product_uri = "urn:kiln"
    now = us_to_datetime(clock.now_us())
    app: AppCertificate | None = None
    if conn.secure or conn.identity is Identity.CERTIFICATE:
        assert conn.certificate is not None  # the config requires both
        assert conn.private_key is not None
        app = await asyncio.to_thread(
            load_or_create,
            conn.certificate,
            conn.private_key,
            application_uri=conn.application_uri,
            now=now,
        )
    client.application_uri = (
        app.application_uri if app else conn.application_uri or default_application_uri()
    )
    if conn.secure:
        assert app is not None
        await _secure(client, conn, app, clock)
    if conn.identity is Identity.USERNAME:
        assert conn.username is not None  # the config requires both
        assert conn.password_file is not None
        client.set_user(conn.username)
        client.set_password(_read_password(conn))
    elif conn.identity is Identity.CERTIFICATE:
        assert app is not None
        client.user_certificate = app.certificate
        client.user_private_key = app.private_key
    try:
        await client.connect(auto_reconnect=False)
    except UaStatusCodeError as err:  # asyncua has closed the socket already
        raise _refused(conn, app, err) from None
    except BaseException:  # cancelled mid-connect, say: asyncua closes only on Exception
        client.disconnect_socket()
        raise
    return Opened(client, app)


async def _secure(client: Client, conn: OpcUaConnection, app: AppCertificate, clock: Clock) -> None:
    policy = _POLICIES[conn.security_policy]
    mode = _MODES[conn.security_mode]
    endpoints = await client.connect_and_get_server_endpoints()
    chosen = next(
        (
            ep
            for ep in endpoints
            if ep.SecurityPolicyUri == policy.URI
            and ep.SecurityMode == mode
            and ep.EndpointUrl.startswith("opc.tcp")
        ),
        None,
    )
    if chosen is None:
        offered = sorted(
            {
                f"{ep.SecurityPolicyUri.rpartition('#')[2]}/{ep.SecurityMode.name.rstrip('_')}"
                for ep in endpoints
            }
        )
        raise OpcUaError(
            f"{conn.endpoint} offers no endpoint with {conn.security_policy} and "
            f"{conn.security_mode}; it offers {', '.join(offered) or 'none'}"
        )
    if not chosen.ServerCertificate:
        raise OpcUaError(f"{conn.endpoint} offers {conn.security_policy} without a certificate")
    server_der = _first_certificate(chosen.ServerCertificate)
    server_cert = x509.load_der_x509_certificate(server_der)
    trust = await asyncio.to_thread(TrustList.load, conn.trusted_server_certificates)
    trust.check(
        server_cert,
        endpoint=conn.endpoint,
        now=us_to_datetime(clock.now_us()),
        rejected_dir=conn.rejected_certificates_dir,
    )
    await client.set_security(
        policy,
        uacrypto.CertProperties(app.der, extension="der"),
        uacrypto.CertProperties(app.key_pem, extension="pem"),
        server_certificate=server_der,
        mode=mode,
    )


def _first_certificate(blob: bytes) -> bytes:
    """The leaf certificate of a DER chain (Part 6, 6.2.3 allows a chain in the endpoint)."""
    # uacrypto.x509_from_der (which peels the leaf off a chain) carries no annotations.
    leaf = cast(Callable[[bytes], x509.Certificate], uacrypto.x509_from_der)
    cert = leaf(blob)
    return cert.public_bytes(Encoding.DER)


def _read_password(conn: OpcUaConnection) -> str:
    assert conn.password_file is not None
    try:
        return conn.password_file.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as err:
        raise OpcUaError(f"password_file {conn.password_file}: {err.strerror}") from None


def _refused(
    conn: OpcUaConnection, app: AppCertificate | None, err: UaStatusCodeError
) -> Exception:
    code = int(err.code)
    text = status_text(code)
    if code in _REFUSED_IDENTITY:
        who = {
            Identity.USERNAME: f"user {conn.username!r}",
            Identity.CERTIFICATE: "Kiln's user certificate",
            Identity.ANONYMOUS: "anonymous access",
        }[conn.identity]
        return OpcUaError(f"{conn.endpoint} refused {who}: {text}")
    if code in _REFUSED_CERTIFICATE and app is not None:
        return OpcUaError(
            f"{conn.endpoint} refused Kiln's certificate {conn.certificate} (SHA-256 "
            f"{app.fingerprint}): {text}; the server's administrator must trust it"
        )
    return OpcUaError(f"{conn.endpoint} refused the session: {text}")


async def close_client(client: Client, timeout_s: float) -> None:
    """Close the session (the server deletes its subscription with it) and the connection;
    over a dead connection this just lets go. Never raises."""
    try:
        await asyncio.wait_for(client.disconnect(), timeout_s)
    except Exception:  # a dying connection may fail to close cleanly; it is gone either way
        _LOGGER.debug("OPC UA client close failed", exc_info=True)
    finally:
        client.disconnect_socket()


class _ExpectedAsDebug(logging.Filter):
    """asyncua logs a lost connection at warning and error from several places (the publish
    loop retrying, closing a session over a dead channel), and each service fault it then also
    raises (a refused session on every reconnect attempt). The connector runner already logs
    an outage once and its recovery once, and every raised fault reaches Kiln's own message,
    so those records are kept at debug."""

    _TEXTS = (
        "ServiceFault (",
        "Publish iteration crashed",
        "close_session was called but connection is closed",
        "close_session but connection wasn't established",
        "close_secure_channel was called but connection is closed",
        "disconnect_socket was called but transport is None",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno > logging.DEBUG
            and isinstance(record.msg, str)
            and record.msg.startswith(self._TEXTS)
            and _is_connection_loss(record)
        ):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            # The logger let it through at its original level; treat it as logged at debug.
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def _is_connection_loss(record: logging.LogRecord) -> bool:
    if record.exc_info is None or record.exc_info[1] is None:
        return True
    return isinstance(record.exc_info[1], ConnectionError | OSError | asyncio.TimeoutError)


_FILTER = _ExpectedAsDebug()
for _name in (
    "asyncua.client.ua_session.UaSession",
    "asyncua.client.ua_client.UaClient",
    "asyncua.client.ua_client.UASocketProtocol",
):
    logging.getLogger(_name).addFilter(_FILTER)
