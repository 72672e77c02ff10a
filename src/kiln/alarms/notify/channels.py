"""The channels: a webhook (an HTTP POST of JSON, signed) and email over SMTP.

Each send is one attempt; retrying is the service's business (it schedules the next attempt
instead of sleeping, so a receiver that is down never holds up another's deliveries). An
attempt that fails raises `SendFailed`, saying whether trying again could help.

The signature, the headers and what counts as worth another attempt are the platform's, in
`kiln.core.webhooks` (the value chain's webhooks send the same); they are re-exported here for
the code that has always imported them from this module.
"""

from __future__ import annotations

import json
from email.message import EmailMessage

import aiosmtplib
import httpx

from kiln.alarms.notify.messages import payload, subject, text
from kiln.alarms.notify.model import Send
from kiln.alarms.notify.settings import SmtpSettings, WebhookSettings
from kiln.core.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    SendFailed,
    post_signed,
    sign,
    verify,
)

__all__ = [
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "SendFailed",
    "email_message",
    "send_email",
    "send_webhook",
    "sign",
    "verify",
]


async def send_webhook(
    client: httpx.AsyncClient, send: Send, settings: WebhookSettings, now_s: int
) -> None:
    body = json.dumps(payload(send), separators=(",", ":")).encode()
    await post_signed(
        client,
        send.address,
        body,
        delivery_id=send.id,
        secret=settings.secret,
        timeout_s=settings.timeout_s,
        now_s=now_s,
    )


def email_message(send: Send, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = send.address
    msg["Subject"] = subject(send)
    msg[DELIVERY_HEADER] = send.id
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
