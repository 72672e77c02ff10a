"""The value chain's webhooks on a real InProcessBus and a fake clock, posting to a real HTTP
receiver on an ephemeral loopback port that checks the HMAC-SHA256 signature (RFC 2104 HMAC
over SHA-256): signed bodies, retries with the same delivery id, dead letters, the kinds
filter, acknowledgement only after the commit, a restart that resumes what was pending, the
real engine's outbox, and the running app. The delivery store runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pydantic import ValidationError
from sqlalchemy import inspect

from kiln.core.bus import Event, InProcessBus
from kiln.core.platform import Platform, Stage
from kiln.core.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, verify
from kiln.testing import FakeClock, postgres
from kiln.valuechain import webhook_migrations
from kiln.valuechain.engine import ValuechainEngine
from kiln.valuechain.settings import ValuechainSettings
from kiln.valuechain.store import ValuechainStore
from kiln.valuechain.webhook_schema import VERSION_TABLE, metadata
from kiln.valuechain.webhook_store import INTERRUPTED, Delivery, NewDelivery, WebhookStore
from kiln.valuechain.webhooks import SUBSCRIPTION, ValuechainWebhooks, delivery_id

SECRET = "vc-test-secret"
S = 1_000_000

# -- a real HTTP receiver ------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    @property
    def delivery(self) -> str:
        return self.headers[DELIVERY_HEADER.lower()]

    def signed_with(self, secret: str) -> bool:
        return verify(secret, self.headers.get(SIGNATURE_HEADER.lower(), ""), self.body)


@dataclass
class Receiver:
    """HTTP/1.1 on 127.0.0.1, answering each POST with `status(request)` (200 unless set);
    every request is kept, whatever was answered."""

    status: Callable[[Received], int] = lambda _r: 200
    requests: list[Received] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/hook"

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readline()  # the request line
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            received = Received(headers, body)
            self.requests.append(received)
            code = self.status(received)
            writer.write(
                f"HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def hook() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.close()


@pytest.fixture
async def hook2() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.close()


async def until(predicate: Callable[[], bool], *, timeout_s: float = 10.0) -> None:
    """Wait (real time: the sockets are real) until `predicate()` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"not true within {timeout_s} s")
        await asyncio.sleep(0.01)


# -- running the service -------------------------------------------------------------------------


def hook_conf(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "url": url, "secret": SECRET, "retries": 2, "backoff_s": 1,
            "backoff_cap_s": 2, "timeout_s": 5, **extra}  # fmt: skip


def vc_settings(*hooks: dict[str, Any]) -> ValuechainSettings:
    return ValuechainSettings.model_validate({"webhooks": list(hooks)})


@asynccontextmanager
async def running(
    tmp_path: Path,
    settings: ValuechainSettings,
    clock: FakeClock,
    *,
    bus: InProcessBus | None = None,
    engine: bool = False,
) -> AsyncIterator[tuple[InProcessBus, ValuechainWebhooks, Platform]]:
    """The webhook service (and the real engine, if asked) on a platform of their own."""
    bus = bus if bus is not None else InProcessBus(clock)
    service = ValuechainWebhooks(
        settings,
        WebhookStore(settings.webhooks_url_in(tmp_path)),
        rng=random.Random(7),
        stop_grace_s=0.2,
    )
    platform = Platform(clock=clock, data_dir=tmp_path, bus=bus)
    platform.add(service, Stage.ENGINES)
    if engine:
        store = ValuechainStore(settings.url_in(tmp_path), clock=clock)
        platform.add(ValuechainEngine(store, settings), Stage.ENGINES)
    async with platform:
        yield bus, service, platform
        assert platform.failed_tasks == {}


async def publish(
    bus: InProcessBus, kind: str, subject: str, seq: int, clock: FakeClock, /, **body: Any
) -> None:
    """A `valuechain.<kind>` event as the engine's outbox publishes it."""
    await bus.publish_event(
        Event(
            f"valuechain.{kind}",
            subject,
            {"subject": subject, **body},
            clock.now_us(),
            id=f"vc-{seq}",
        )
    )


def deliveries(service: ValuechainWebhooks, **filters: Any) -> list[Delivery]:
    return service.store.deliveries(**filters)


def states(service: ValuechainWebhooks) -> list[tuple[str, int]]:
    return [(d.status, d.attempts) for d in deliveries(service)]


# -- settings ------------------------------------------------------------------------------------


def test_settings_require_a_secret_and_known_kinds(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="exactly one of secret and secret_file"):
        ValuechainSettings.model_validate({"webhooks": [{"name": "a", "url": "http://x/"}]})
    key = tmp_path / "key"
    key.write_text("from-a-file\n")
    both = {"name": "a", "url": "http://x/", "secret": "k", "secret_file": str(key)}
    with pytest.raises(ValidationError, match="exactly one"):
        ValuechainSettings.model_validate({"webhooks": [both]})
    with pytest.raises(ValidationError, match="not an http"):
        vc_settings(hook_conf("a", "ftp://x/"))
    with pytest.raises(ValidationError, match="kinds"):
        vc_settings(hook_conf("a", "http://x/", kinds=["invoice"]))
    with pytest.raises(ValidationError, match="two webhooks are named a"):
        vc_settings(hook_conf("a", "http://x/"), hook_conf("a", "http://y/"))
    with pytest.raises(ValidationError, match="backoff_cap_s"):
        vc_settings(hook_conf("a", "http://x/", backoff_s=10, backoff_cap_s=5))
    from_file = ValuechainSettings.model_validate(
        {"webhooks": [{"name": "a", "url": "http://x/", "secret_file": str(key)}]}
    )
    [hook] = from_file.webhooks
    assert hook.key() == "from-a-file"
    assert "from-a-file" not in repr(hook)
    assert SECRET not in repr(vc_settings(hook_conf("b", "http://x/")))
    assert (hook.retries, hook.backoff_s, hook.kinds) == (5, 2.0, ())
    assert [hook.wants(k) for k in ("order", "lot", "plan", "recall")] == [True] * 4
    only = vc_settings(hook_conf("a", "http://x/", kinds=["recall"])).webhooks[0]
    assert [only.wants(k) for k in ("order", "recall")] == [False, True]


# -- sending -------------------------------------------------------------------------------------


async def test_an_event_is_posted_signed_with_its_delivery_id(
    tmp_path: Path, hook: Receiver
) -> None:
    clock = FakeClock()
    async with running(tmp_path, vc_settings(hook_conf("erp", hook.url)), clock) as (bus, svc, _):
        await publish(bus, "order", "SO-1", 4, clock, kind="sales_order", state="confirmed")
        await until(lambda: states(svc) == [("sent", 1)])
        [received] = hook.requests
        [record] = deliveries(svc)
    assert received.signed_with(SECRET)
    assert not received.signed_with("another secret")
    # A body changed in transit no longer matches its signature.
    assert not Received(received.headers, received.body + b" ").signed_with(SECRET)
    assert received.headers["content-type"] == "application/json"
    assert received.json == {
        "id": record.id,
        "event": "order",
        "subject": "SO-1",
        "time": "2026-01-01T00:00:00Z",
        "data": {"kind": "sales_order", "state": "confirmed"},
    }
    assert received.delivery == record.id == delivery_id("erp", "vc-4")
    t = int(received.headers[SIGNATURE_HEADER.lower()].split(",")[0].removeprefix("t="))
    assert t == clock.now_us() // S  # signed with the platform's clock
    assert (record.event_id, record.kind, record.subject, record.sent_us) == (
        "vc-4", "order", "SO-1", clock.now_us(),
    )  # fmt: skip


async def test_a_receiver_failing_twice_gets_it_on_the_third_attempt_with_the_same_id(
    tmp_path: Path, hook: Receiver
) -> None:
    hook.status = lambda _r: 500 if len(hook.requests) <= 2 else 200
    clock = FakeClock()
    async with running(tmp_path, vc_settings(hook_conf("erp", hook.url)), clock) as (bus, svc, _):
        await publish(bus, "lot", "t-1", 1, clock, lots=[{"id": "L1"}])
        await until(lambda: states(svc) == [("failed", 1)])
        [d] = deliveries(svc)
        assert "HTTP 500" in d.last_error
        assert d.next_attempt_us is not None
        # Backoff 1 s with 50-100 % jitter: due within [0.5 s, 1 s].
        assert S // 2 <= d.next_attempt_us - clock.now_us() <= S
        await clock.advance(1)
        await until(lambda: states(svc) == [("failed", 2)])
        [d] = deliveries(svc)
        assert d.next_attempt_us is not None
        assert S <= d.next_attempt_us - clock.now_us() <= 2 * S  # doubled
        await clock.advance(2)
        await until(lambda: states(svc) == [("sent", 3)] and svc.stats.sent == 1)
        assert deliveries(svc)[0].last_error == ""
        assert svc.stats.failed == 2
    assert len(hook.requests) == 3
    assert {r.delivery for r in hook.requests} == {d.id}
    assert all(r.signed_with(SECRET) for r in hook.requests)
    assert len({r.body for r in hook.requests}) == 1  # the same body every time


async def test_410_gone_is_a_dead_letter_at_once(tmp_path: Path, hook: Receiver) -> None:
    hook.status = lambda _r: 410
    clock = FakeClock()
    async with running(tmp_path, vc_settings(hook_conf("erp", hook.url)), clock) as (bus, svc, _):
        await publish(bus, "recall", "recall-1", 1, clock, lots=["L1"])
        await until(lambda: states(svc) == [("dead", 1)] and svc.stats.dead == 1)
        await clock.advance(3600)
        await asyncio.sleep(0.05)
        assert states(svc) == [("dead", 1)]
        assert "HTTP 410" in deliveries(svc)[0].last_error
        assert svc.health().status.value == "degraded"
        assert svc.health().detail["dead_letters"] == 1
    assert len(hook.requests) == 1


async def test_out_of_retries_is_a_dead_letter(tmp_path: Path, hook: Receiver) -> None:
    hook.status = lambda _r: 503
    clock = FakeClock()
    async with running(tmp_path, vc_settings(hook_conf("erp", hook.url)), clock) as (bus, svc, _):
        await publish(bus, "order", "PO-1", 1, clock)
        for attempts in (1, 2):
            await until(lambda a=attempts: states(svc) == [("failed", a)])  # type: ignore[misc]
            await clock.advance(2)
        await until(lambda: states(svc) == [("dead", 3)])  # retries: 2 after the first
        await clock.advance(3600)
        await asyncio.sleep(0.05)
    assert len(hook.requests) == 3


async def test_the_kinds_filter_selects_per_webhook(
    tmp_path: Path, hook: Receiver, hook2: Receiver
) -> None:
    clock = FakeClock()
    settings = vc_settings(
        hook_conf("quality", hook.url, kinds=["recall", "lot"]), hook_conf("erp", hook2.url)
    )
    async with running(tmp_path, settings, clock) as (bus, svc, _):
        await publish(bus, "order", "SO-1", 1, clock)
        await publish(bus, "plan", "run", 2, clock, proposals=3)
        await publish(bus, "recall", "recall-9", 3, clock)
        await publish(bus, "lot", "t-1", 4, clock)
        # Not a value chain event: the subscription does not even see it.
        await bus.publish_event(Event("alarm.transition", "a/b", {"x": 1}, clock.now_us()))
        await until(lambda: len(deliveries(svc)) == 6 and {d.status for d in deliveries(svc)}
                    == {"sent"})  # fmt: skip
        assert svc.stats.events == 4
    assert sorted(r.json["event"] for r in hook.requests) == ["lot", "recall"]
    assert sorted(r.json["event"] for r in hook2.requests) == ["lot", "order", "plan", "recall"]
    assert all(r.signed_with(SECRET) for r in [*hook.requests, *hook2.requests])


async def test_a_webhook_that_is_down_does_not_hold_up_another(
    tmp_path: Path, hook: Receiver, hook2: Receiver
) -> None:
    hook.status = lambda _r: 503
    clock = FakeClock()
    settings = vc_settings(hook_conf("down", hook.url), hook_conf("up", hook2.url))
    async with running(tmp_path, settings, clock) as (bus, svc, _):
        for seq in range(1, 6):
            await publish(bus, "order", f"SO-{seq}", seq, clock)
        await until(lambda: len(hook2.requests) == 5)
        await until(lambda: {d.status for d in deliveries(svc, webhook="up")} == {"sent"})
    assert sorted(r.json["subject"] for r in hook2.requests) == [f"SO-{i}" for i in range(1, 6)]


# -- durability ----------------------------------------------------------------------------------


async def test_the_same_event_twice_is_one_delivery(tmp_path: Path, hook: Receiver) -> None:
    clock = FakeClock()
    async with running(tmp_path, vc_settings(hook_conf("erp", hook.url)), clock) as (_b, svc, _):
        event = Event("valuechain.order", "SO-1", {"subject": "SO-1"}, clock.now_us(), id="vc-1")
        assert await svc.handle(event) == 1
        assert await svc.handle(event) == 1
        await until(lambda: states(svc) == [("sent", 1)])
    assert len(hook.requests) == 1


async def test_an_event_is_acknowledged_only_after_its_deliveries_are_committed(
    tmp_path: Path, hook: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    async with running(tmp_path, vc_settings(hook_conf("erp", hook.url)), clock) as (bus, svc, _):
        real_add = svc.store.add
        failures: list[int] = []

        def failing_once(*args: Any) -> None:
            if not failures:
                failures.append(1)
                raise OSError("disk full")
            real_add(*args)

        monkeypatch.setattr(svc.store, "add", failing_once)
        await publish(bus, "order", "SO-1", 1, clock)
        # ... and the subscription waits out its ack wait on the fake clock.
        await until(lambda: svc.stats.errors == 1 and clock.sleepers == 1)
        assert deliveries(svc) == []
        assert "disk full" in svc.stats.last_error
        await clock.advance(31)  # the bus's ack wait: it delivers the event again
        await until(lambda: states(svc) == [("sent", 1)])
    assert len(hook.requests) == 1


async def test_a_restart_resumes_pending_deliveries(tmp_path: Path, hook: Receiver) -> None:
    hook.status = lambda _r: 503
    clock = FakeClock()
    settings = vc_settings(hook_conf("erp", hook.url))
    bus = InProcessBus(clock)
    async with running(tmp_path, settings, clock, bus=bus) as (_b, svc, _):
        await publish(bus, "order", "SO-1", 1, clock)
        await publish(bus, "lot", "t-1", 2, clock)
        await until(lambda: states(svc) == [("failed", 1), ("failed", 1)])
        # Both events are acknowledged: the bus will not deliver them again.
        sub = svc._sub
        assert sub is not None and sub.name == SUBSCRIPTION
        await until(lambda: (sub.stats.acked, sub.stats.pending) == (2, 0))
        ids = {d.id for d in deliveries(svc)}
    assert len(hook.requests) == 2
    hook.status = lambda _r: 200  # the receiver is back; so is the sender, on the same bus
    async with running(tmp_path, settings, clock, bus=bus) as (_b, svc, _):
        await clock.advance(2)
        await until(lambda: states(svc) == [("sent", 2), ("sent", 2)])
    assert len(hook.requests) == 4
    assert {r.delivery for r in hook.requests[2:]} == ids
    assert sorted(r.json["event"] for r in hook.requests[2:]) == ["lot", "order"]


async def test_a_delivery_caught_sending_is_attempted_again_after_a_restart(
    tmp_path: Path, hook: Receiver
) -> None:
    clock = FakeClock()
    settings = vc_settings(hook_conf("erp", hook.url))
    store = WebhookStore(settings.webhooks_url_in(tmp_path))
    store.open()
    did = delivery_id("erp", "vc-1")
    body = json.dumps({"id": did, "event": "order", "subject": "SO-1", "time": "t", "data": {}})
    store.add([NewDelivery(did, "erp", "vc-1", "order", "SO-1", body)], clock.now_us())
    store.mark(did, clock.now_us(), "sending", attempts=1)  # the process died mid-attempt
    store.close()
    async with running(tmp_path, settings, clock) as (_b, svc, _):
        assert svc.stats.interrupted == 1
        await until(lambda: states(svc) == [("sent", 2)])
    [received] = hook.requests
    assert received.delivery == did
    assert received.body == body.encode()


async def test_a_delivery_for_a_webhook_removed_from_the_plant_file_is_a_dead_letter(
    tmp_path: Path, hook: Receiver, hook2: Receiver
) -> None:
    hook.status = lambda _r: 503
    clock = FakeClock()
    async with running(tmp_path, vc_settings(hook_conf("old", hook.url)), clock) as (bus, svc, _):
        await publish(bus, "order", "SO-1", 1, clock)
        await until(lambda: states(svc) == [("failed", 1)])
    async with running(tmp_path, vc_settings(hook_conf("new", hook2.url)), clock) as (_b, svc, _):
        await clock.advance(2)
        await until(lambda: states(svc) == [("dead", 2)])
        assert "no longer in the plant file" in deliveries(svc)[0].last_error
    assert hook2.requests == []


# -- through the real engine's outbox ------------------------------------------------------------


async def test_the_engines_outbox_events_reach_the_webhook(tmp_path: Path, hook: Receiver) -> None:
    clock = FakeClock()
    settings = vc_settings(hook_conf("erp", hook.url))
    async with running(tmp_path, settings, clock, engine=True) as (_b, svc, platform):
        engine = platform.service(ValuechainEngine)

        def change() -> None:
            with engine.store.engine.begin() as conn:
                engine.store.emit(conn, "recall", "recall-7", {"lots": ["L1"], "held": ["L1"]})

        await engine.write(change)
        await until(lambda: states(svc) == [("sent", 1)])
        # The outbox published it once; publishing again re-sends nothing.
        await engine.publish_outbox()
        await asyncio.sleep(0.05)
        [record] = deliveries(svc)
    [received] = hook.requests
    assert received.signed_with(SECRET)
    assert received.json["event"] == "recall"
    assert received.json["subject"] == "recall-7"
    assert received.json["data"] == {"lots": ["L1"], "held": ["L1"]}
    assert record.event_id.startswith("vc-")
    assert received.delivery == record.id


# -- in the running app --------------------------------------------------------------------------


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


@pytest.fixture
def threaded_hook() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Hook", (_Hook,), {"received": received}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/erp", received
    server.shutdown()
    server.server_close()


def test_a_sales_order_created_through_the_api_reaches_the_webhook(
    tmp_path: Path, threaded_hook: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    import time

    sys.path.insert(0, str(Path(__file__).parents[1] / "api"))
    from api_helpers import make_app_client, make_settings

    from kiln.testing.auth import admin_headers

    url, received = threaded_hook
    data = tmp_path / "data"
    settings = make_settings(
        data, valuechain=ValuechainSettings(webhooks=[hook_conf("erp", url, kinds=["order"])])
    )
    with make_app_client(settings) as client:
        admin = admin_headers(client, data)
        for org in (
            {"code": "ACME", "name": "Acme", "kind": "enterprise", "tenant": "default"},
            {"code": "SHOP", "name": "Shop", "kind": "customer", "tenant": "shop"},
        ):
            r = client.put(f"/api/v1/organisations/{org['code']}", json=org, headers=admin)
            assert r.status_code == 200, r.text
        r = client.put(
            "/api/v1/materials/LAMP",
            json={"code": "LAMP", "name": "Lamp", "kind": "finished", "unit": "pcs"},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        so = {
            "id": "SO-1",
            "customer": "SHOP",
            "lines": [{"line_no": 1, "material": "LAMP", "quantity": "10", "due": "2026-03-16"}],
        }
        r = client.post("/api/v1/sales-orders", json=so, headers=admin)
        assert r.status_code in (200, 201), r.text
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.02)
    assert received, "no webhook arrived"
    headers, body = received[0]
    assert verify(SECRET, headers[SIGNATURE_HEADER.lower()], body)
    doc = json.loads(body)
    assert (doc["event"], doc["subject"]) == ("order", "SO-1")
    assert doc["id"] == headers[DELIVERY_HEADER.lower()]
    assert (data / "valuechain_webhooks.db").exists()


def test_without_webhooks_no_sender_runs(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parents[1] / "api"))
    from api_helpers import make_app_client, make_settings

    data = tmp_path / "data"
    with make_app_client(make_settings(data)) as client:
        platform = client.app.state.platform  # type: ignore[attr-defined]
        assert platform.has(ValuechainEngine)
        assert not platform.has(ValuechainWebhooks)
    assert not (data / "valuechain_webhooks.db").exists()


# -- the store on both backends ------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'valuechain_webhooks.db'}"
        return
    with postgres.schema_for_test() as url:
        yield url


@pytest.fixture
def store(db_url: str) -> Iterator[WebhookStore]:
    s = WebhookStore(db_url)
    s.open()
    try:
        yield s
    finally:
        s.close()


def test_migrations_create_exactly_the_schema(store: WebhookStore) -> None:
    with store.engine.connect() as conn:
        assert webhook_migrations.current_revision(conn) == webhook_migrations.head_revision()
        context = MigrationContext.configure(
            conn,
            opts={
                "version_table": VERSION_TABLE,
                "include_name": lambda name, type_, _p: type_ != "table" or name in metadata.tables,
                "compare_type": True,
            },
        )
        assert compare_metadata(context, metadata) == []


def test_shares_a_database_with_the_value_chain_store(db_url: str) -> None:
    chain = ValuechainStore(db_url)
    chain.open()
    hooks = WebhookStore(db_url)
    hooks.open()
    try:
        with hooks.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
        assert {"valuechain_version", VERSION_TABLE, "vc_webhook_deliveries"} <= tables
    finally:
        hooks.close()
        chain.close()


def test_store_round_trip_due_and_interrupted(store: WebhookStore) -> None:
    t0 = 1_767_225_600_000_000
    new = [
        NewDelivery(delivery_id("erp", f"vc-{i}"), "erp", f"vc-{i}", "order", f"SO-{i}", "{}")
        for i in (1, 2)
    ]
    store.add(new, t0)
    store.add(new, t0 + 5)  # handled again: nothing added, nothing changed
    assert [d.created_us for d in store.deliveries()] == [t0, t0]
    assert store.next_attempt_us() == t0
    assert [d.event_id for d in store.due(t0, 10)] == sorted(["vc-1", "vc-2"], key=lambda e:
        delivery_id("erp", e))  # fmt: skip
    store.mark(new[0].id, t0 + 1, "sending", attempts=1)
    store.mark(new[1].id, t0 + 1, "failed", attempts=1, next_attempt_us=t0 + 9 * S)
    assert store.due(t0 + S, 10) == []
    assert store.interrupted(t0 + 2) == 1
    got = store.get(new[0].id)
    assert got is not None
    assert (got.status, got.attempts, got.next_attempt_us, got.last_error) == (
        "failed", 1, t0 + 2, INTERRUPTED,
    )  # fmt: skip
    assert [d.id for d in store.due(t0 + S, 10)] == [new[0].id]
    assert store.count("failed") == 2
    assert [d.id for d in store.deliveries(status="failed", limit=1)] in ([new[0].id], [new[1].id])
    assert store.deliveries(webhook="other") == []
    assert store.get(new[0].id).to_json()["event_id"] == "vc-1"  # type: ignore[union-attr]
