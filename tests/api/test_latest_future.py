"""A point from the future never pins `/api/v1/values/latest` (issue 12, finding 3).

HTTP ingest refuses such points, but they still arrive from connectors (a device or server
whose clock runs years ahead) and from databases written before the window existed, so the
historian holds the rule itself: latest is the newest value not beyond now plus
`ingest.max_future_s`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from api_helpers import make_app_client, make_settings
from fastapi.testclient import TestClient

from kiln.app.settings import Settings
from kiln.core.values import TagValue, ValueBatch
from kiln.historian.settings import HistorianSettings
from kiln.historian.store import DuckDBStore
from kiln.testing import FakeClock
from kiln.testing.auth import admin_headers, device_headers

FLOW = "acme/site1/utilities/water/cell1/p1/flow"
Y2099 = 4_070_908_800_000_000  # 2099-01-01T00:00:00Z


def now_us() -> int:
    return time.time_ns() // 1000


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat().replace("+00:00", "Z")


def latest(client: TestClient) -> list[tuple[int, float]]:
    """(source µs, value) of FLOW's latest value, as the API answers it."""
    r = client.get("/api/v1/values/latest", params={"tag": FLOW})
    assert r.status_code == 200, r.text
    return [
        (round(datetime.fromisoformat(v["source_ts"]).timestamp() * 1e6), v["value"])
        for v in r.json()["values"]
    ]


def ingest_real_time(client: TestClient, device: dict[str, str]) -> int:
    """Three points in the last seconds (whole ms); returns the newest's time (µs)."""
    start = now_us() // 1000 * 1000 - 3_000_000
    items = [{"path": FLOW, "value": float(i), "ts": iso(start + i * 1_000_000)} for i in range(3)]
    r = client.post("/api/v1/ingest", json={"values": items}, headers=device)
    assert r.status_code == 200, r.text
    return start + 2_000_000


def publish_from_a_connector(client: TestClient, batch: ValueBatch) -> None:
    """What a connector with a clock years ahead does: publish on the bus, wait for the commit."""
    platform = client.app.state.platform  # type: ignore[attr-defined]

    async def publish() -> None:
        await platform.bus.publish_durable(batch, timeout_s=60)

    assert client.portal is not None
    client.portal.call(publish)


def signed_in(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with make_app_client(settings) as c:
        c.headers.update(admin_headers(c, settings.data_dir))
        yield c, device_headers(c, dict(c.headers), "gateway-acme", "acme")


@pytest.fixture(params=["duckdb", "postgresql"])
def running(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = make_settings(tmp_path / "data")
    if request.param == "duckdb":
        yield from signed_in(settings)
        return
    from kiln.testing import postgres

    with postgres.schema_for_test() as url:
        yield from signed_in(settings.model_copy(update={"historian": HistorianSettings(url=url)}))


def test_a_2099_point_from_a_connector_does_not_pin_latest(
    running: tuple[TestClient, dict[str, str]],
) -> None:
    client, device = running
    publish_from_a_connector(client, ValueBatch.of([TagValue(FLOW, 99.0, Y2099)], now_us()))
    assert latest(client) == []  # the only point is beyond the window
    newest = ingest_real_time(client, device)
    assert latest(client) == [(newest, 2.0)]
    newest = ingest_real_time(client, device)  # and it keeps following them
    assert latest(client) == [(newest, 2.0)]
    # The 2099 point is stored: history finds it.
    r = client.get("/api/v1/history/raw", params={"tag": FLOW, "start": "2098-12-31T00:00:00Z",
                                                  "end": "2099-01-02T00:00:00Z"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert [p["value"] for p in r.json()["values"]] == [99.0]


def test_a_2099_point_stored_before_the_upgrade_does_not_pin_latest(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    # Written by a historian with no window (its clock in 2100 lets the 2099 point in).
    old = DuckDBStore(
        settings.historian.path_in(settings.data_dir), clock=FakeClock(Y2099 + 366 * 86_400 * 10**6)
    )
    old.open()
    old.write([ValueBatch.of([TagValue(FLOW, 1.0, now_us() - 60_000_000),
                              TagValue(FLOW, 99.0, Y2099)], now_us())])  # fmt: skip
    old.close()

    for client, device in signed_in(settings):
        [(_, value)] = latest(client)
        assert value == 1.0
        newest = ingest_real_time(client, device)
        assert latest(client) == [(newest, 2.0)]
