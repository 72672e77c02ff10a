"""The notification service on a real InProcessBus and a fake clock, sending to real
receivers on ephemeral loopback ports: an HTTP server that checks the HMAC-SHA256 signature
(RFC 2104 HMAC over SHA-256, FIPS 180-4) and an SMTP server (aiosmtpd, RFC 5321).
"""

from __future__ import annotations

import asyncio
import email
import os
import random
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import Message
from pathlib import Path
from typing import Any

import notify_child
import pytest
from notify_helpers import (
    FILLER_JAM,
    MILL_TEMP,
    HttpReceiver,
    Received,
    SmtpReceiver,
    entry,
    event_data,
    until,
)

from kiln.alarms.notify.service import NotificationService
from kiln.alarms.notify.settings import NotificationSettings
from kiln.alarms.notify.store import Delivery, NotificationStore
from kiln.alarms.records import TRANSITION_KIND
from kiln.core.bus import Command, CommandError, CommandFailure, Event, InProcessBus
from kiln.core.platform import Platform, Stage
from kiln.testing import FakeClock

SECRET = "test-secret"
HERE = Path(__file__).resolve().parent


@pytest.fixture
async def hook() -> AsyncIterator[HttpReceiver]:
    r = HttpReceiver()
    await r.start()
    yield r
    await r.close()


@pytest.fixture
async def hook2() -> AsyncIterator[HttpReceiver]:
    r = HttpReceiver()
    await r.start()
    yield r
    await r.close()


def conf(
    pipelines: list[dict[str, Any]], users: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    webhook = {"secret": SECRET, "retries": 2, "backoff_s": 1, "backoff_cap_s": 2, "timeout_s": 5}
    return {"users": users, "pipelines": pipelines, "webhook": webhook, **extra}


@asynccontextmanager
async def running(
    tmp_path: Path, settings: dict[str, Any], clock: FakeClock
) -> AsyncIterator[tuple[InProcessBus, NotificationService]]:
    parsed = NotificationSettings.model_validate(settings)
    service = NotificationService(
        parsed,
        NotificationStore(parsed.url_in(tmp_path)),
        rng=random.Random(7),
        stop_grace_s=0.2,
    )
    bus = InProcessBus(clock)
    platform = Platform(clock=clock, data_dir=tmp_path, bus=bus)
    platform.add(service, Stage.ENGINES)
    async with platform:
        yield bus, service
        assert platform.failed_tasks == {}


async def publish(bus: InProcessBus, alarm_id: str, event: str, seq: int, **kw: Any) -> None:
    e = entry(alarm_id, event, seq=seq, **kw)
    await bus.publish_event(
        Event(TRANSITION_KIND, alarm_id, event_data(e), e.source_us, id=f"{alarm_id}#{seq}")
    )


def deliveries(service: NotificationService, **filters: Any) -> list[Delivery]:
    return service.store.deliveries(**filters)


def one(service: NotificationService) -> Delivery:
    [d] = deliveries(service)
    return d


def status_is(service: NotificationService, status: str, attempts: int) -> Any:
    return lambda: [(d.status, d.attempts) for d in deliveries(service)] == [(status, attempts)]


# -- webhook ------------------------------------------------------------------------------------


async def test_webhook_delivery_is_signed_and_recorded(tmp_path: Path, hook: HttpReceiver) -> None:
    clock = FakeClock()
    settings = conf(
        [{"name": "p", "blocks": [{"kind": "notify", "users": ["alice"]}]}],
        [{"name": "alice", "webhook": hook.url}],
    )
    async with running(tmp_path, settings, clock) as (bus, service):
        await publish(bus, MILL_TEMP, "becomes_abnormal", 1)
        await until(status_is(service, "sent", 1))
        [received] = hook.requests
        assert received.signed
        assert received.json["alarms"][0]["alarm_id"] == MILL_TEMP
        assert received.json["alarms"][0]["event"] == "activation"
        assert received.headers["x-kiln-delivery"] == one(service).id
        # A body changed in transit no longer matches its signature.
        assert not Received(received.path, received.headers, received.body + b" ").signed
        reply = await bus.request(Command("notifications", "deliveries"), timeout_s=5)
        [row] = reply["deliveries"]
        assert (row["recipient"], row["channel"], row["status"]) == ("alice", "webhook", "sent")
        assert row["sent_us"] == clock.now_us()


async def test_a_receiver_that_fails_then_recovers_gets_it_after_retries(
    tmp_path: Path, hook: HttpReceiver
) -> None:
    hook.status = lambda _r: 500 if len(hook.requests) <= 2 else 200
    clock = FakeClock()
    settings = conf(
        [{"name": "p", "blocks": [{"kind": "notify", "users": ["alice"]}]}],
        [{"name": "alice", "webhook": hook.url}],
    )
    async with running(tmp_path, settings, clock) as (bus, service):
        await publish(bus, MILL_TEMP, "becomes_abnormal", 1)
        await until(status_is(service, "failed", 1))
        assert "HTTP 500" in one(service).last_error
        first_retry = one(service).next_attempt_us
        assert first_retry is not None
        # Backoff 1 s with 50-100 % jitter: due within (0.5 s, 1 s].
        assert 500_000 <= first_retry - clock.now_us() <= 1_000_000
        await clock.advance(1)
        await until(status_is(service, "failed", 2))
        await clock.advance(2)
        await until(status_is(service, "sent", 3))
        assert one(service).last_error == ""
        assert len(hook.requests) == 3
        assert all(r.signed for r in hook.requests)
        assert len({r.headers["x-kiln-delivery"] for r in hook.requests}) == 1


async def test_a_receiver_that_never_recovers_gives_a_dead_letter_retried_by_command(
    tmp_path: Path, hook: HttpReceiver
) -> None:
    hook.status = lambda _r: 503
    clock = FakeClock()
    settings = conf(
        [{"name": "p", "blocks": [{"kind": "notify", "users": ["alice"]}]}],
        [{"name": "alice", "webhook": hook.url}],
    )
    async with running(tmp_path, settings, clock) as (bus, service):
        await publish(bus, MILL_TEMP, "becomes_abnormal", 1)
        for attempts in (1, 2):
            await until(status_is(service, "failed", attempts))
            await clock.advance(2)
        await until(status_is(service, "dead", 3))  # retries: 2 after the first attempt
        await clock.advance(3600)
        assert len(hook.requests) == 3
        dead = await bus.request(
            Command("notifications", "deliveries", {"status": "dead"}), timeout_s=5
        )
        [letter] = dead["deliveries"]
        assert "HTTP 503" in letter["last_error"]
        hook.status = lambda _r: 200  # the receiver is back
        await bus.request(Command("notifications", "retry", {"id": letter["id"]}), timeout_s=5)
        await until(status_is(service, "sent", 4))
        assert len(hook.requests) == 4
        with pytest.raises(CommandError) as not_dead:
            await bus.request(Command("notifications", "retry", {"id": letter["id"]}), timeout_s=5)
        assert not_dead.value.kind is CommandFailure.INVALID
        with pytest.raises(CommandError) as missing:
            await bus.request(Command("notifications", "retry", {"id": "nope"}), timeout_s=5)
        assert missing.value.kind is CommandFailure.NOT_FOUND


async def test_a_hanging_receiver_does_not_hold_up_another(
    tmp_path: Path, hook: HttpReceiver, hook2: HttpReceiver
) -> None:
    hook.hang = True
    clock = FakeClock()
    settings = conf(
        [{"name": "p", "blocks": [{"kind": "notify", "users": ["stuck", "alice"]}]}],
        [{"name": "stuck", "webhook": hook.url}, {"name": "alice", "webhook": hook2.url}],
    )
    async with running(tmp_path, settings, clock) as (bus, service):
        await publish(bus, MILL_TEMP, "becomes_abnormal", 1)
        # Alice's is sent well inside the 5 s the stuck receiver may take to time out.
        await until(
            lambda: (
                {d.send.user: d.status for d in deliveries(service)}
                == {"alice": "sent", "stuck": "sending"}
            ),
            timeout_s=2,
        )
        assert len(hook.requests) == len(hook2.requests) == 1


# -- email --------------------------------------------------------------------------------------


async def test_email_reaches_a_real_smtp_server(tmp_path: Path) -> None:
    smtp = SmtpReceiver()
    await smtp.start()
    clock = FakeClock()
    settings = conf(
        [{"name": "p", "on": "both", "blocks": [{"kind": "notify", "users": ["ops"]}]}],
        [{"name": "ops", "email": "ops@example.com"}],
        smtp={"host": "127.0.0.1", "port": smtp.port, "starttls": False,
              "sender": "kiln@example.com", "retries": 0},
    )  # fmt: skip
    try:
        async with running(tmp_path, settings, clock) as (bus, service):
            await publish(bus, MILL_TEMP, "becomes_abnormal", 1)
            await until(lambda: len(smtp.mails) == 1)
            await publish(bus, MILL_TEMP, "returns_to_normal", 2)
            await until(lambda: len(smtp.mails) == 2)
            await until(lambda: {d.status for d in deliveries(service)} == {"sent"})
    finally:
        await smtp.close()
    raised, cleared = smtp.mails
    assert raised.recipients == ["ops@example.com"]
    assert raised.sender == "kiln@example.com"
    message: Message = email.message_from_bytes(raised.content)
    assert message["Subject"] == f"[HIGH] {MILL_TEMP} ACTIVE"
    assert message["To"] == "ops@example.com"
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert MILL_TEMP in body.decode()
    assert email.message_from_bytes(cleared.content)["Subject"] == f"[HIGH] {MILL_TEMP} CLEARED"


# -- durability ---------------------------------------------------------------------------------

ESCALATE = [
    {
        "name": "p",
        "blocks": [
            {"kind": "notify", "users": ["alice"]},
            {"kind": "escalate", "after_s": 300, "users": ["sup"]},
        ],
    }
]


async def test_a_restart_resumes_a_pending_escalation_and_sends_nothing_twice(
    tmp_path: Path, hook: HttpReceiver, hook2: HttpReceiver
) -> None:
    clock = FakeClock()
    settings = conf(ESCALATE, [{"name": "alice", "webhook": hook.url},
                               {"name": "sup", "webhook": hook2.url}])  # fmt: skip
    async with running(tmp_path, settings, clock) as (bus, service):
        await publish(bus, MILL_TEMP, "becomes_abnormal", 1)
        await until(status_is(service, "sent", 1))
        await clock.advance(100)
    assert hook2.requests == []
    async with running(tmp_path, settings, clock) as (bus, service):
        assert len(service.runner.state.timers) == 1
        await clock.advance(199)
        assert hook2.requests == []
        await clock.advance(1)
        await until(lambda: len(hook2.requests) == 1)
        assert hook2.requests[0].json["type"] == "escalate"
        await until(lambda: {d.status for d in deliveries(service)} == {"sent"})
        assert len(hook.requests) == 1  # alice's was sent before the restart, and only then
        assert service.runner.state.timers == {}


async def test_an_acknowledgement_after_a_restart_still_stops_the_escalation(
    tmp_path: Path, hook: HttpReceiver, hook2: HttpReceiver
) -> None:
    clock = FakeClock()
    settings = conf(ESCALATE, [{"name": "alice", "webhook": hook.url},
                               {"name": "sup", "webhook": hook2.url}])  # fmt: skip
    async with running(tmp_path, settings, clock) as (bus, _service):
        await publish(bus, MILL_TEMP, "becomes_abnormal", 1)
        await until(lambda: len(hook.requests) == 1)
    async with running(tmp_path, settings, clock) as (bus, service):
        await publish(bus, MILL_TEMP, "acknowledge", 2)
        await until(lambda: service.runner.state.timers == {})
        await clock.advance(600)
    assert hook2.requests == []


async def test_an_event_is_acknowledged_only_after_its_commit(
    tmp_path: Path, hook: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    settings = conf(
        [{"name": "p", "blocks": [{"kind": "notify", "users": ["alice"]}]}],
        [{"name": "alice", "webhook": hook.url}],
    )
    async with running(tmp_path, settings, clock) as (bus, service):
        real_commit = service.store.commit
        failures = []

        def failing_once(*args: Any) -> None:
            if not failures:
                failures.append(1)
                raise OSError("disk full")
            real_commit(*args)

        monkeypatch.setattr(service.store, "commit", failing_once)
        await publish(bus, MILL_TEMP, "becomes_abnormal", 1)
        await until(lambda: service.stats.errors == 1)
        assert deliveries(service) == []
        await clock.advance(31)  # the bus's ack wait: it delivers the event again
        await until(status_is(service, "sent", 1))
        assert len(hook.requests) == 1


async def test_the_same_event_twice_is_sent_once(tmp_path: Path, hook: HttpReceiver) -> None:
    clock = FakeClock()
    settings = conf(
        [{"name": "p", "blocks": [{"kind": "notify", "users": ["alice"]}]}],
        [{"name": "alice", "webhook": hook.url}],
    )
    async with running(tmp_path, settings, clock) as (_bus, service):
        e = entry(MILL_TEMP, "becomes_abnormal")
        event = Event(TRANSITION_KIND, MILL_TEMP, event_data(e), e.source_us, seq=1)
        await service.handle(event)
        await service.handle(event)
        await until(status_is(service, "sent", 1))
        assert len(hook.requests) == 1


async def test_the_deliveries_command_filters(tmp_path: Path, hook: HttpReceiver) -> None:
    clock = FakeClock()
    settings = conf(
        [{"name": "p", "blocks": [{"kind": "notify", "users": ["alice"]}]}],
        [{"name": "alice", "webhook": hook.url}],
    )
    async with running(tmp_path, settings, clock) as (bus, service):
        await publish(bus, MILL_TEMP, "becomes_abnormal", 1)
        await until(lambda: len(deliveries(service)) == 1)
        await clock.advance(10)
        later = clock.now_us()
        await publish(bus, FILLER_JAM, "becomes_abnormal", 2)
        await until(lambda: {d.status for d in deliveries(service)} == {"sent"}
                    and len(deliveries(service)) == 2)  # fmt: skip

        async def ask(**args: Any) -> list[str]:
            reply = await bus.request(Command("notifications", "deliveries", args), timeout_s=5)
            return [d["alarm_id"] for d in reply["deliveries"]]

        assert await ask() == [FILLER_JAM, MILL_TEMP]  # newest first
        assert await ask(alarm_id=MILL_TEMP) == [MILL_TEMP]
        assert await ask(since_us=later) == [FILLER_JAM]
        assert await ask(limit=1) == [FILLER_JAM]
        assert await ask(status="dead") == []
        with pytest.raises(CommandError) as bad:
            await ask(status="lost")
        assert bad.value.kind is CommandFailure.INVALID
        assert "sent" in str(bad.value)


async def test_after_kill_9_escalation_and_reminders_resume_and_nothing_is_resent(
    tmp_path: Path, hook: HttpReceiver, hook2: HttpReceiver
) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "notify_child.py"), str(tmp_path), hook.url, hook2.url,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])},
    )  # fmt: skip
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), timeout=60)
        assert line.strip() == b"ready"
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    assert len(hook.requests) == 1
    activated_us = hook.requests[0].json["alarms"][0]["source_us"]
    # The clock of the process that takes over, just after the kill.
    clock = FakeClock(start_us=time.time_ns() // 1000)
    elapsed_s = (clock.now_us() - activated_us) / 1e6
    assert elapsed_s < 30
    settings = notify_child.settings(hook.url, hook2.url).model_dump(mode="json", by_alias=True)
    async with running(tmp_path, settings, clock) as (_bus, service):
        assert {t.kind for t in service.runner.state.timers.values()} == {"escalate", "remind"}
        # The timers count from when the child handled the event, a little after it happened.
        await clock.advance(31 - elapsed_s)
        await until(lambda: len(hook.requests) == 2)  # reminder 1, at 30 s
        assert hook.requests[1].json["type"] == "remind"
        await clock.advance(30)
        await until(lambda: len(hook2.requests) == 1 and len(hook.requests) == 3)  # at 60 s
        assert hook2.requests[0].json["type"] == "escalate"
        await until(lambda: {d.status for d in deliveries(service)} == {"sent"})
        # alice's first notification went out once, before the kill.
        kinds = sorted(d.send.kind for d in deliveries(service) if d.send.user == "alice")
        assert kinds == ["notify", "remind", "remind"]
