"""An alarm's state survives `kill -9` of `kiln run` (issue 14: "an acknowledged alarm stays
acknowledged, an active one is still active after restart and re-evaluated against the current
value").

A real process on an ephemeral port with its data folder in tmp; values arrive over the HTTP
ingest API, operator actions over the alarm API. Four tanks, each with a Hi level alarm:

- t1 raised and acknowledged, t2 raised and left alone: after the crash, acknowledged and
  unacknowledged, both still active, neither raised a second time;
- t3 raised, then a normal value whose 200 is followed at once by the kill: the engine may or may
  not have seen it before dying, and either way, after the restart, it has cleared;
- t4 raised and acknowledged, then the server killed, and a normal value stored into the
  historian while the server is down (as a historian in another process keeps storing): the
  engine never saw that value, so only its evaluation of the historian's latest values at start
  can clear it. This is the deterministic case of "re-evaluated against the current value".
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from kiln.core.values import ValueBatch
from kiln.historian.store import DuckDBStore
from kiln.testing.auth import admin_headers, device_headers
from kiln.testing.server import free_port, kiln_command, running_server

pytestmark = pytest.mark.slow

AREA = "acme/site1/tanks"
TANKS = [f"{AREA}/t{i}" for i in range(1, 5)]
T1, T2, T3, T4 = (f"{t}/level_limits:hi" for t in TANKS)
LEVEL = "level"
HISTORY = "history.duckdb"  # the historian's database in the data folder (kiln.historian)


def plant_yaml(data_dir: Path) -> str:
    tanks = "".join(f"    - {{path: {t}, level: asset, type: tank}}\n" for t in TANKS)
    return f"""\
name: alarm crash test
data_dir: {data_dir}
log_level: warning
model:
  types:
    - name: tank
      tags:
        - {{name: {LEVEL}, unit: "%", low: 0, high: 100}}
      alarms:
        - kind: limit
          name: level_limits
          tag: {LEVEL}
          priority: high
          hi: {{value: 80, deadband: 2}}
  assets:
    - {{path: acme, level: enterprise}}
    - {{path: acme/site1, level: site}}
    - {{path: {AREA}, level: area}}
{tanks}"""


@contextmanager
def server(config: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    command = kiln_command("run", "--config", str(config), "--port", str(port))
    with running_server(command, port=port, log=log) as proc:
        yield proc


def kill_9(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)  # no shutdown, no checkpoint: only what was committed
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def now_ms() -> int:
    return round(time.time() * 1000)


class Api:
    def __init__(self, client: httpx.Client, admin: dict[str, str]) -> None:
        self.client = client
        self.admin = admin

    def ingest(self, device: dict[str, str], values: dict[str, float], ts_ms: int) -> None:
        body = {"values": [{"path": p, "value": v, "ts": ts_ms} for p, v in values.items()]}
        r = self.client.post("/api/v1/ingest", json=body, headers=device)
        assert r.status_code == 200, r.text

    def alarms(self) -> dict[str, dict[str, Any]]:
        r = self.client.get("/api/v1/alarms", params={"state": "all"}, headers=self.admin)
        assert r.status_code == 200, r.text
        return {a["id"]: a for a in r.json()["alarms"]}

    def wait_states(self, want: dict[str, str], timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.alarms()
            if all(got.get(i, {}).get("state") == s for i, s in want.items()):
                return got
            if time.monotonic() > deadline:
                shown = {i: got.get(i, {}).get("state") for i in want}
                raise AssertionError(f"alarms never reached {want}; they show {shown}")
            time.sleep(0.1)

    def journal(self, alarm: str) -> list[dict[str, Any]]:
        """The alarm's journal, oldest first."""
        r = self.client.get("/api/v1/alarms/journal", params={"alarm": alarm}, headers=self.admin)
        assert r.status_code == 200, r.text
        return list(reversed(r.json()["entries"]))


def store_while_down(data_dir: Path, path: str, value: float, ts_us: int) -> None:
    """Commit one value into the stopped server's historian database, as the historian of a
    process the alarm engine does not share would: the engine never receives it."""
    store = DuckDBStore(data_dir / HISTORY)
    store.open()  # replays the WAL the killed server left
    try:
        batch = ValueBatch(paths=[path], values=[value], source_us=[ts_us], qualities=[0],
                           receive_us=ts_us)  # fmt: skip
        assert not store.write([batch]).rejected
    finally:
        store.close()


def test_alarm_states_survive_kill_9_and_are_evaluated_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "plant.yaml"
    config.write_text(plant_yaml(data), encoding="utf-8")
    port, log = free_port(), tmp_path / "server.log"
    level = {t: f"{t}/{LEVEL}" for t in TANKS}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        with server(config, port, log) as proc:
            api = Api(client, admin_headers(client, data))
            device = device_headers(client, api.admin, "tank-plc", AREA)
            raised_ms = now_ms()
            api.ingest(device, {level[t]: 90.0 for t in TANKS}, raised_ms)
            api.wait_states(dict.fromkeys((T1, T2, T3, T4), "unacknowledged"))
            r = client.post("/api/v1/alarms/ack", json={"ids": [T1, T4], "note": "on it"},
                            headers=api.admin)  # fmt: skip
            assert [x["ok"] for x in r.json()["results"]] == [True, True], r.text
            t3_normal_ms = now_ms() + 1
            api.ingest(device, {level[TANKS[2]]: 10.0}, t3_normal_ms)
            kill_9(proc)  # right after the 200: the engine may not have seen t3's value

        t4_normal_us = (now_ms() + 1) * 1000
        store_while_down(data, level[TANKS[3]], 12.0, t4_normal_us)

        with server(config, port, log):
            # The session survived too; the engine evaluated the current values before the
            # server answered its health check, so no waiting here.
            alarms = Api(client, api.admin).alarms()
            t1, t2, t3, t4 = (alarms[i] for i in (T1, T2, T3, T4))
            assert (t1["state"], t1["active"], t1["acknowledged"]) == ("acknowledged", True, True)
            assert t1["acked_by"].endswith("admin") and t1["note"] == "on it"
            assert (t2["state"], t2["active"], t2["acknowledged"]) == (
                "unacknowledged",
                True,
                False,
            )
            assert t2["value"] == 90.0 and t2["active_since_us"] == raised_ms * 1000
            # Cleared by the value sent just before the kill, seen then or re-evaluated now.
            assert (t3["state"], t3["active"]) == ("rtn_unacknowledged", False)
            assert t3["value"] == 10.0
            # Cleared only by the evaluation at start: acknowledged, so back to normal.
            assert (t4["state"], t4["active"], t4["value"]) == ("normal", False, 12.0)

            journals = {i: Api(client, api.admin).journal(i) for i in (T1, T2, T3, T4)}
            for i, entries in journals.items():  # raised once: the restart raised nothing again
                raised = [e for e in entries if e["event"] == "becomes_abnormal"]
                assert [(e["occurrence"], e["source_us"]) for e in raised] == [
                    (1, raised_ms * 1000)
                ], i
            assert [e["event"] for e in journals[T1]] == ["becomes_abnormal", "acknowledge"]
            assert [e["event"] for e in journals[T2]] == ["becomes_abnormal"]
            t3_cleared = journals[T3][-1]
            assert (t3_cleared["event"], t3_cleared["source_us"]) == (
                "returns_to_normal", t3_normal_ms * 1000,
            )  # fmt: skip
            assert [e["event"] for e in journals[T4]] == [
                "becomes_abnormal", "acknowledge", "returns_to_normal",
            ]  # fmt: skip
            cleared = journals[T4][-1]
            assert (cleared["source_us"], cleared["value"], cleared["old_state"]) == (
                t4_normal_us, 12.0, "acknowledged",
            )  # fmt: skip
            assert (cleared["new_state"], cleared["announced"]) == ("normal", True)
