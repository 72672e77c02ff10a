"""Notification pipelines in the running app: an alarm raised by an ingested value reaches a
real HTTP receiver (signed) and a real SMTP server, and the deliveries are listed by the API."""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from test_alarm_api import HI1, HIHI1, Plant, _settings, wait_for

from kiln.alarms.definitions import Priority
from kiln.alarms.notify.settings import NotificationSettings
from kiln.alarms.settings import AlarmSettings

SECRET = "test-secret-for-the-webhook"


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _Mailbox:
    def __init__(self) -> None:
        self.mails: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def hook() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Hook", (_Hook,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alarms", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def mailbox() -> Iterator[tuple[int, _Mailbox]]:
    box = _Mailbox()
    with socket.socket() as probe:  # the Controller checks its port by connecting: not 0
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, box
    controller.stop()


def test_an_alarm_reaches_a_webhook_and_a_mailbox_and_is_recorded(
    tmp_path: Path,
    hook: tuple[str, list[tuple[dict[str, str], bytes]]],
    mailbox: tuple[int, _Mailbox],
) -> None:
    url, received = hook
    port, box = mailbox
    notes = NotificationSettings.model_validate(
        {
            "smtp": {"host": "127.0.0.1", "port": port, "starttls": False, "sender": "kiln@acme.test"},
            "webhook": {"secret": SECRET},
            "users": [
                {"name": "ops", "webhook": url, "channels": ["webhook"]},
                {"name": "boss", "email": "boss@acme.test", "channels": ["email"],
                 "min_priority": "critical"},
            ],
            "pipelines": [
                {"name": "water", "subtree": "acme/site1/utilities", "on": "activation",
                 "blocks": [{"kind": "notify", "users": ["ops", "boss"]}]},
            ],
        }
    )  # fmt: skip
    settings = _settings(tmp_path / "data").model_copy(
        update={"notifications": notes, "alarms": AlarmSettings(note_required=[Priority.CRITICAL])}
    )
    from api_helpers import make_app_client

    with make_app_client(settings) as client:
        plant = Plant(client, tmp_path / "data")
        plant.ingest(f"{HI1.split(':')[0].rsplit('/', 1)[0]}/flow", 90.0)  # Hi only: high
        wait_for(lambda: len(received) >= 1)
        headers, body = received[0]
        stamp, signature = (
            part.split("=", 1)[1] for part in headers["x-kiln-signature"].split(",")
        )
        expected = hmac.new(
            SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256
        ).hexdigest()
        assert hmac.compare_digest(signature, expected)
        assert HI1 in body.decode()
        assert box.mails == []  # boss takes only critical alarms

        plant.ingest(f"{HIHI1.split(':')[0].rsplit('/', 1)[0]}/flow", 99.0, offset_s=1)
        wait_for(lambda: len(box.mails) >= 1)
        recipients, content = box.mails[0]
        assert recipients == ["boss@acme.test"]
        assert HIHI1 in str(message_from_bytes(content)["Subject"]) or HIHI1 in content.decode()

        listed = wait_for(
            lambda: [
                d
                for d in client.get("/api/v1/alarms/notifications", headers=plant.admin).json()[
                    "deliveries"
                ]
                if d["status"] == "sent"
            ]
        )
        channels = sorted(d["channel"] for d in listed)
        assert channels[:1] == ["email"] and "webhook" in channels
