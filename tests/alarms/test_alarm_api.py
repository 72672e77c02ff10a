"""Alarms through the HTTP API, end to end in one process: values ingested over HTTP, the
engine on the in-process bus, its journal in SQLite, operator actions scoped and audited."""

from __future__ import annotations

import csv
import io
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))
from api_helpers import make_app_client, make_settings

from kiln.alarms.definitions import LimitAlarm, LimitDef, Priority
from kiln.alarms.settings import AlarmSettings
from kiln.model.definitions import AssetDef, AssetTypeDef, Level, TagDef
from kiln.model.settings import ModelSettings
from kiln.testing.auth import admin_headers, device_headers, user_headers

P1 = "acme/site1/utilities/water/cell1/p1"
P2 = "acme/site1/other/water/cell2/p2"
FLOW1, FLOW2 = f"{P1}/flow", f"{P2}/flow"
HI1, HIHI1, HI2 = f"{P1}/flow_limits:hi", f"{P1}/flow_limits:hihi", f"{P2}/flow_limits:hi"

PUMP = AssetTypeDef(
    name="pump",
    tags=(TagDef(name="flow", unit="m3/h", low=0, high=100), TagDef(name="setpoint")),
    alarms=(
        LimitAlarm(
            name="flow_limits",
            tag="flow",
            hi=LimitDef(value=80.0, deadband=2.0),
            hihi=LimitDef(value=95.0, priority=Priority.CRITICAL),
            priority=Priority.HIGH,
            message="{asset} flow {value} over {limit}",
        ),
    ),
)


def _settings(data: Path) -> Any:
    model = ModelSettings(
        types=[PUMP],
        assets=[
            AssetDef(path="acme", level=Level.ENTERPRISE),
            AssetDef(path=P1, level=Level.ASSET, type="pump"),
            AssetDef(path=P2, level=Level.ASSET, type="pump"),
        ],
    )
    return make_settings(
        data, model=model, alarms=AlarmSettings(note_required=[Priority.CRITICAL], tick_s=0.2)
    )


def _now(offset_s: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=offset_s)).isoformat().replace("+00:00", "Z")


def wait_for(check: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


class Plant:
    def __init__(self, client: TestClient, data: Path) -> None:
        self.client = client
        self.data = data
        self.admin = admin_headers(client, data)
        self.device = device_headers(client, self.admin, "gw", "acme")

    def ingest(self, path: str, value: float, offset_s: float = 0.0) -> None:
        r = self.client.post(
            "/api/v1/ingest",
            json={"values": [{"path": path, "value": value, "ts": _now(offset_s)}]},
            headers=self.device,
        )
        assert r.status_code == 200, r.text

    def alarms(self, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
        r = self.client.get("/api/v1/alarms", params=params, headers=headers or self.admin)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def alarm(self, alarm_id: str) -> dict[str, Any] | None:
        found = [a for a in self.alarms(state="all")["alarms"] if a["id"] == alarm_id]
        return found[0] if found else None

    def wait_state(self, alarm_id: str, state: str) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            a = self.alarm(alarm_id)
            return a if a is not None and a["state"] == state else None

        result: dict[str, Any] = wait_for(check)
        return result


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[Plant]:
    with make_app_client(_settings(tmp_path / "data")) as client:
        yield Plant(client, tmp_path / "data")


def test_a_value_past_a_limit_raises_an_alarm_acknowledged_and_cleared(plant: Plant) -> None:
    assert plant.alarm(HI1) is not None and plant.alarm(HI1)["state"] == "normal"  # type: ignore[index]
    plant.ingest(FLOW1, 90.0)
    alarm = plant.wait_state(HI1, "unacknowledged")
    assert alarm["priority"] == "high" and alarm["value"] == 90.0 and alarm["limit"] == 80.0
    assert alarm["message"] == f"{P1} flow 90 over 80"
    assert alarm["tag"] == FLOW1
    listed = plant.alarms()
    assert [a["id"] for a in listed["alarms"]] == [HI1]
    assert listed["counts"]["unacknowledged"] == 1 and listed["counts"]["by_priority"]["high"] == 1

    r = plant.client.post(
        "/api/v1/alarms/ack", json={"ids": [HI1, HIHI1, "acme/none/x"], "note": "seen"},
        headers=plant.admin,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    results = {x["id"]: x for x in r.json()["results"]}
    assert results[HI1]["ok"] is True
    assert results[HIHI1]["ok"] is False and "normal" in results[HIHI1]["error"]
    assert results["acme/none/x"]["ok"] is False
    alarm = plant.wait_state(HI1, "acknowledged")
    assert alarm["acked_by"].endswith("admin") and alarm["note"] == "seen"

    plant.ingest(FLOW1, 79.0, offset_s=1)  # inside the deadband: still active
    time.sleep(0.3)
    assert plant.alarm(HI1)["state"] == "acknowledged"  # type: ignore[index]
    plant.ingest(FLOW1, 50.0, offset_s=2)
    plant.wait_state(HI1, "normal")
    assert plant.alarms()["alarms"] == []

    journal = plant.client.get(
        "/api/v1/alarms/journal", params={"alarm": HI1}, headers=plant.admin
    ).json()["entries"]
    assert [e["event"] for e in journal] == ["returns_to_normal", "acknowledge", "becomes_abnormal"]
    assert journal[1]["comment"] == "seen" and journal[1]["user"].endswith("admin")
    assert [e["new_state"] for e in journal] == ["normal", "acknowledged", "unacknowledged"]
    assert journal[2]["occurrence"] == 1 and journal[2]["announced"] is True

    text = plant.client.get(
        "/api/v1/alarms/journal", params={"alarm": HI1, "format": "csv"}, headers=plant.admin
    ).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["event"] for r in rows] == ["returns_to_normal", "acknowledge", "becomes_abnormal"]

    audit = plant.client.get("/api/v1/audit", params={"category": "alarm"}, headers=plant.admin)
    if audit.status_code == 200:  # the administrator may not read the audit trail
        assert any(r["target"] == HI1 for r in audit.json()["records"])


def test_a_critical_alarm_needs_a_note_and_shelving_is_bounded(plant: Plant) -> None:
    plant.ingest(FLOW1, 99.0)
    plant.wait_state(HIHI1, "unacknowledged")
    r = plant.client.post("/api/v1/alarms/ack", json={"ids": [HIHI1]}, headers=plant.admin)
    assert r.json()["results"][0]["ok"] is False
    assert "needs a note" in r.json()["results"][0]["error"]

    url = f"/api/v1/alarms/{HIHI1}/shelve"
    too_long = plant.client.post(url, json={"duration_s": 9 * 3600}, headers=plant.admin)
    assert too_long.status_code == 400 and "at most" in too_long.json()["detail"]
    ok = plant.client.post(url, json={"duration_s": 3600, "note": "fixing"}, headers=plant.admin)
    assert ok.status_code == 200, ok.text
    shelved = ok.json()["alarm"]
    assert shelved["state"] == "shelved" and shelved["shelving"] == "timed"
    assert 3590 < shelved["shelve_remaining_s"] <= 3600
    again = plant.client.post(url, json={"duration_s": 60}, headers=plant.admin).json()["alarm"]
    assert 50 < again["shelve_remaining_s"] <= 60  # shelving again replaces the remaining time
    assert [a["id"] for a in plant.alarms(state="shelved")["alarms"]] == [HIHI1]

    un = plant.client.post(f"/api/v1/alarms/{HIHI1}/unshelve", json={}, headers=plant.admin)
    assert un.json()["alarm"]["state"] == "unacknowledged"
    oos = f"/api/v1/alarms/{HIHI1}/out-of-service"
    assert plant.client.post(oos, json={"on": True}, headers=plant.admin).status_code == 400
    r = plant.client.post(oos, json={"on": True, "reason": "sensor swap"}, headers=plant.admin)
    assert r.json()["alarm"]["state"] == "out_of_service"
    assert r.json()["alarm"]["out_of_service_reason"] == "sensor swap"
    r = plant.client.post(
        f"/api/v1/alarms/{HIHI1}/comment", json={"comment": "called maintenance"},
        headers=plant.admin,
    )  # fmt: skip
    assert r.status_code == 200
    events = [
        e["event"]
        for e in plant.client.get(
            "/api/v1/alarms/journal", params={"alarm": HIHI1}, headers=plant.admin
        ).json()["entries"]
    ]
    assert events[:5] == [
        "comment", "out_of_service_on", "unshelve", "timed_shelve", "timed_shelve",
    ]  # fmt: skip


def test_operators_act_only_within_their_subtree_and_viewers_not_at_all(plant: Plant) -> None:
    plant.ingest(FLOW1, 90.0)
    plant.ingest(FLOW2, 90.0)
    plant.wait_state(HI1, "unacknowledged")
    plant.wait_state(HI2, "unacknowledged")
    scoped = user_headers(
        plant.client, plant.admin, "op1", "operator-pass-1", ["operator"], scope=P1
    )
    viewer = user_headers(plant.client, plant.admin, "view1", "viewer-pass-12", ["viewer"])
    seen = [a["id"] for a in plant.alarms(headers=scoped)["alarms"]]
    assert seen == [HI1]
    r = plant.client.post("/api/v1/alarms/ack", json={"ids": [HI1, HI2]}, headers=scoped)
    results = {x["id"]: x["ok"] for x in r.json()["results"]}
    assert results == {HI1: True, HI2: False}
    assert plant.alarm(HI2)["state"] == "unacknowledged"  # type: ignore[index]
    assert plant.client.post(
        f"/api/v1/alarms/{HI2}/shelve", json={"duration_s": 60}, headers=scoped
    ).status_code == 404  # fmt: skip
    assert plant.client.post(
        "/api/v1/alarms/ack", json={"ids": [HI2]}, headers=viewer
    ).status_code == 403  # fmt: skip
    assert len(plant.alarms(headers=viewer)["alarms"]) == 2


def test_definitions_through_the_api_take_effect_and_bad_ones_name_the_field(
    plant: Plant,
) -> None:
    url = f"/api/v1/alarms/definitions/{P2}"
    bad = plant.client.put(
        url, json={"kind": "limit", "name": "low_flow", "tag": "flow", "lo": {"value": "x y"}},
        headers=plant.admin,
    )  # fmt: skip
    assert bad.status_code == 400 and "lo" in bad.json()["detail"]
    unknown_tag = plant.client.put(
        url, json={"kind": "limit", "name": "low_flow", "tag": "nope", "lo": {"value": 5}},
        headers=plant.admin,
    )  # fmt: skip
    assert unknown_tag.status_code == 400 and "nope" in unknown_tag.json()["detail"]
    good = plant.client.put(
        url, json={"kind": "limit", "name": "low_flow", "tag": "flow", "lo": {"value": 5}},
        headers=plant.admin,
    )  # fmt: skip
    assert good.status_code == 200, good.text
    plant.ingest(FLOW2, 1.0)
    plant.wait_state(f"{P2}/low_flow:lo", "unacknowledged")
    listed = plant.client.get("/api/v1/alarms/definitions", headers=plant.admin).json()
    assert [d["definition"]["name"] for d in listed["definitions"]] == ["low_flow"]
    r = plant.client.delete(url, params={"name": "low_flow"}, headers=plant.admin)
    assert r.status_code == 200
    assert plant.alarm(f"{P2}/low_flow:lo") is None


def test_state_survives_a_restart_and_is_evaluated_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with make_app_client(_settings(data)) as client:
        plant = Plant(client, data)
        plant.ingest(FLOW1, 90.0)
        plant.ingest(FLOW2, 90.0)
        plant.wait_state(HI1, "unacknowledged")
        plant.wait_state(HI2, "unacknowledged")
        r = client.post("/api/v1/alarms/ack", json={"ids": [HI1]}, headers=plant.admin)
        assert r.json()["results"][0]["ok"] is True
        plant.ingest(FLOW2, 10.0, offset_s=1)  # clears p2 while... (still unacknowledged)
        plant.wait_state(HI2, "rtn_unacknowledged")
    with make_app_client(_settings(data)) as client:
        admin = admin_headers(client, data)
        plant2 = Plant.__new__(Plant)
        plant2.client, plant2.data, plant2.admin = client, data, admin
        assert plant2.alarm(HI1)["state"] == "acknowledged"  # type: ignore[index]
        assert plant2.alarm(HI2)["state"] == "rtn_unacknowledged"  # type: ignore[index]
        assert plant2.alarm(HI1)["occurrence"] == 1  # type: ignore[index]


def test_alarm_changes_reach_the_live_websocket(plant: Plant) -> None:
    with plant.client.websocket_connect(
        "/api/v1/live?prefix=acme/site1", headers=plant.admin
    ) as ws:
        assert ws.receive_json()["snapshot"] is True
        plant.ingest(FLOW1, 96.0)
        seen: dict[str, str] = {}
        while len(seen) < 2:
            msg = ws.receive_json()
            for a in msg.get("alarms", []):
                seen[a["id"]] = a["state"]
        assert seen == {HI1: "unacknowledged", HIHI1: "unacknowledged"}


def test_kpis_count_the_activations(plant: Plant) -> None:
    for i in range(3):
        plant.ingest(FLOW1, 90.0, offset_s=2 * i)
        plant.ingest(FLOW1, 10.0, offset_s=2 * i + 1)
    wait_for(
        lambda: (
            len(
                plant.client.get(
                    "/api/v1/alarms/journal",
                    params={"alarm": HI1, "event": "becomes_abnormal"},
                    headers=plant.admin,
                ).json()["entries"]
            )
            == 3
        )
    )
    r = plant.client.get(
        "/api/v1/alarms/kpis", params={"start": "-1h", "end": "+1m"}, headers=plant.admin
    )
    assert r.status_code == 200, r.text
    kpis = r.json()  # the figures themselves are checked in test_alarm_kpis.py
    assert kpis["counts"]["activations"] == 3
    assert kpis["priorities"]["counts"]["high"] == 3
    assert [a["alarm_id"] for a in kpis["bad_actors"]["top_10"]] == [HI1]
    assert [a["alarm_id"] for a in kpis["chattering"]["alarms"]] == [HI1]  # 3 within 60 s
