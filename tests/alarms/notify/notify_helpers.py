"""Building blocks of the notification tests: journal entries as the alarm engine publishes
them, and two real receivers on ephemeral loopback ports (HTTP and SMTP)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from kiln.alarms.definitions import Priority
from kiln.alarms.notify.channels import SIGNATURE_HEADER, verify
from kiln.alarms.records import JournalEntry
from kiln.alarms.states import State

SECRET = "test-secret"
T0 = 1_767_225_600_000_000  # FakeClock's start
S = 1_000_000

MILL = "acme/p1/line1/mill"
MILL_TEMP = f"{MILL}/temp_alarm:hi"
FILLER_JAM = "acme/p1/line1/filler/jam"
LINE10 = "acme/p1/line10/press/force_alarm:hi"  # "line1" as a string prefix, not a subtree

_NEW_STATE = {
    "becomes_abnormal": State.UNACKNOWLEDGED,
    "returns_to_normal": State.NORMAL,
    "acknowledge": State.NORMAL,
}


def entry(
    alarm_id: str,
    event: str,
    *,
    priority: Priority = Priority.HIGH,
    occurrence: int = 1,
    announced: bool = True,
    value: float | str | None = 97.5,
    at_us: int = T0,
    seq: int = 1,
) -> JournalEntry:
    return JournalEntry(
        source_us=at_us,
        recorded_us=at_us,
        alarm_id=alarm_id,
        asset=alarm_id.rsplit("/", 1)[0],
        priority=priority,
        occurrence=occurrence,
        event=event,
        old_state=State.NORMAL,
        new_state=_NEW_STATE.get(event, State.NORMAL),
        announced=announced,
        value=value,
        message=f"{alarm_id} is {value}",
        seq=seq,
    )


def event_data(e: JournalEntry) -> dict[str, Any]:
    """The data of the engine's `alarm.transition` event for `e` (the alarm part abridged)."""
    name = e.alarm_id.rsplit("/", 1)[1]
    return {
        "entry": e.to_json(),
        "alarm": {
            "id": e.alarm_id,
            "asset": e.asset,
            "name": name.split(":")[0],
            "condition": name.split(":")[1] if ":" in name else "discrete",
            "priority": e.priority.value,
            "message": e.message,
        },
    }


# -- a real HTTP receiver ------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    @property
    def signed(self) -> bool:
        return verify(SECRET, self.headers.get(SIGNATURE_HEADER.lower(), ""), self.body)


@dataclass
class HttpReceiver:
    """An HTTP/1.1 server on 127.0.0.1 answering each POST with `status()` (200 unless set).
    Every request is kept, whatever was answered."""

    status: Callable[[Received], int] = lambda _r: 200
    hang: bool = False  # never answer (a receiver that is down but accepts connections)
    requests: list[Received] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hook"

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await reader.readline()
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            received = Received(request_line.decode().split(" ")[1], headers, body)
            self.requests.append(received)
            if self.hang:
                await asyncio.sleep(3600)
            code = self.status(received)
            writer.write(
                f"HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


# -- a real SMTP server --------------------------------------------------------------------------


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    content: bytes


class _Collect:
    def __init__(self, mails: list[Mail]) -> None:
        self.mails = mails

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        data = content if isinstance(content, bytes) else str(content).encode()
        self.mails.append(Mail(str(envelope.mail_from), list(envelope.rcpt_tos), data))
        return "250 OK"


@dataclass
class SmtpReceiver:
    """aiosmtpd's SMTP protocol served on 127.0.0.1 on an ephemeral port, in the test's loop."""

    mails: list[Mail] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> None:
        handler = _Collect(self.mails)
        self.server = await asyncio.get_running_loop().create_server(
            lambda: SMTP(handler, hostname="localhost"), "127.0.0.1", 0
        )

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def until(predicate: Callable[[], bool], *, timeout_s: float = 10.0) -> None:
    """Wait (real time: sockets are real) until `predicate()` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"not true within {timeout_s} s: {predicate}")
        await asyncio.sleep(0.01)
