"""The channels: a webhook (an HTTP POST of JSON, signed) and email over SMTP.

Each send is one attempt; retrying is the service's business (it schedules the next attempt
instead of sleeping, so a receiver that is down never holds up another's deliveries). An
attempt that fails raises `SendFailed`, saying whether trying again could help.

The webhook signature lets a receiver check the body came from this plant and is fresh:
`X-Kiln-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the secret>`
(the scheme Stripe and others use: the timestamp inside the MAC stops replays of old bodies).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from email.message import EmailMessage

import aiosmtplib
import httpx

from kiln.alarms.notify.messages import payload, subject, text
from kiln.alarms.notify.model import Send
from kiln.alarms.notify.settings import SmtpSettings, WebhookSettings

SIGNATURE_HEADER = "X-Kiln-Signature"
DELIVERY_HEADER = "X-Kiln-Delivery"  # the same on every attempt: receivers may deduplicate
# Statuses worth another attempt: the receiver's trouble, not the request's.
_RETRY_4XX = frozenset({408, 425, 429})


class SendFailed(Exception):
    """One attempt failed. `retryable` False: another attempt would fail the same way."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Kiln-Signature value for `body` sent at `timestamp` (Unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes) -> bool:
    """Whether `header` is a valid signature of `body` (for receivers and tests)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), f"t={timestamp},v1={parts.get('v1')}")


async def send_webhook(
    client: httpx.AsyncClient, send: Send, settings: WebhookSettings, now_s: int
) -> None:
    body = json.dumps(payload(send), separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", DELIVERY_HEADER: send.id}
    if settings.secret:
        headers[SIGNATURE_HEADER] = sign(settings.secret, now_s, body)
    try:
        response = await client.post(
            send.address, content=body, headers=headers, timeout=settings.timeout_s
        )
    except httpx.HTTPError as err:
        raise SendFailed(f"POST {send.address}: {type(err).__name__}: {err}") from err
    if response.is_success:
        return
    code = response.status_code
    retryable = code >= 500 or code in _RETRY_4XX
    raise SendFailed(
        f"POST {send.address}: HTTP {code} {response.reason_phrase}"
        + ("" if retryable else " (not retried: fix the receiver or the URL, then retry it)"),
        retryable=retryable,
    )


def email_message(send: Send, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = send.address
    msg["Subject"] = subject(send)
    msg["X-Kiln-Delivery"] = send.id
    msg.set_content(text(send))
    return msg


async def send_email(send: Send, settings: SmtpSettings) -> None:
    try:
        await aiosmtplib.send(
            email_message(send, settings.sender),
            hostname=settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password,
            use_tls=settings.tls,
            start_tls=settings.starttls,
            timeout=settings.timeout_s,
        )
    except aiosmtplib.SMTPRecipientsRefused as err:
        raise SendFailed(f"SMTP {settings.host}: {err}", retryable=False) from err
    except (aiosmtplib.SMTPException, OSError) as err:
        raise SendFailed(f"SMTP {settings.host}:{settings.port}: {err}") from err
