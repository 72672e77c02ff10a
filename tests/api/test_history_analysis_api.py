"""PI-style history reads over HTTP: summaries, interpolated values and the value at a time, on
the small irregular series of the golden tests (tests/historian/test_historian_semantics.py),
stored through the real ingest path into DuckDB."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

FLOW = "acme/site1/utilities/water/cell1/p1/flow"
STATE = "acme/site1/utilities/water/cell1/p1/state"
RUNNING = "acme/site1/utilities/water/cell1/p1/running"
MODE = "acme/site1/utilities/water/cell1/p1/mode"


def at(seconds: float) -> str:
    whole = int(seconds)
    return f"2026-01-01T00:{whole // 60:02d}:{whole % 60:02d}Z"


@pytest.fixture
def plant(client: TestClient, device: dict[str, str]) -> TestClient:
    values: list[dict[str, Any]] = [
        # 0-10 s ramps 10 -> 20, 10-40 s stays 20, 40-50 s ramps 20 -> 0, then 0.
        *({"path": FLOW, "value": v, "ts": at(t)} for t, v in [(0, 10.0), (10, 20.0), (40, 20.0), (50, 0.0)]),
        # State 1 from 0 s, 2 from 15 s, 1 from 20 s, 3 from 50 s.
        *({"path": STATE, "value": v, "ts": at(t)} for t, v in [(0, 1), (15, 2), (20, 1), (50, 3)]),
        *({"path": RUNNING, "value": v, "ts": at(t)} for t, v in [(0, False), (45, True)]),
        *({"path": MODE, "value": v, "ts": at(t)} for t, v in [(0, "idle"), (10, "run"), (40, "idle")]),
        # Closes every timeline at 60 s (later points only end the last segment).
        *({"path": p, "value": v, "ts": at(60)} for p, v in [(FLOW, 0.0), (STATE, 3), (RUNNING, True), (MODE, "idle")]),
    ]  # fmt: skip
    r = client.post("/api/v1/ingest", json={"values": values}, headers=device)
    assert r.status_code == 200, r.text
    return client


def summary(client: TestClient, **params: Any) -> Any:
    return client.get("/api/v1/history/summary", params=params)


def test_time_weighted_and_event_aggregates_of_an_analog_tag(plant: TestClient) -> None:
    r = summary(
        plant, tag=FLOW, start=at(0), end=at(60), interval="30s",
        agg="twa,avg,min,max,count,percent_good,total",
    )  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["buckets"] == [at(0), at(30)]
    (flow,) = body["tags"]
    assert (flow["kind"], flow["step"]) == ("float", False)
    values = flow["values"]
    assert values["twa"] == pytest.approx([550 / 30, 300 / 30])
    assert values["total"] == pytest.approx([550.0, 300.0])
    assert values["avg"] == [15.0, 10.0]
    assert (values["min"], values["max"], values["count"]) == ([10.0, 0.0], [20.0, 20.0], [2, 2])
    assert values["percent_good"] == pytest.approx([100.0, 100.0])


def test_a_range_between_points_uses_its_neighbours(plant: TestClient) -> None:
    r = summary(plant, tag=FLOW, start=at(5), end=at(45), interval="1h", agg="twa")
    # 5-10 s ramps 15 -> 20 (87.5), 10-40 s is 600, 40-45 s ramps 20 -> 10 (75).
    assert r.json()["tags"][0]["values"]["twa"] == pytest.approx([(87.5 + 600 + 75) / 40])


def test_discrete_tags_share_the_buckets(plant: TestClient) -> None:
    r = summary(
        plant, tag=[STATE, RUNNING, MODE], start=at(0), end=at(60), interval="30s",
        agg="durations,transitions,last",
    )  # fmt: skip
    assert r.status_code == 200, r.text
    state, running, mode = r.json()["tags"]
    assert (state["kind"], state["step"]) == ("int", True)
    assert state["values"]["durations"] == [{"1": 25.0, "2": 5.0}, {"1": 20.0, "3": 10.0}]
    assert state["values"]["transitions"] == [2, 1]
    assert state["values"]["last"] == [1, 3]
    assert running["values"]["durations"] == [{"false": 30.0}, {"false": 15.0, "true": 15.0}]
    assert running["values"]["last"] == [False, True]
    assert mode["values"]["durations"] == [{"idle": 10.0, "run": 20.0}, {"run": 10.0, "idle": 20.0}]


def test_interpolated_values_and_the_value_at_a_time(plant: TestClient) -> None:
    r = plant.get(
        "/api/v1/history/interpolated",
        params={"tag": [FLOW, STATE], "start": at(0), "end": at(45), "interval": "15s"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["times"] == [at(0), at(15), at(30), at(45)]
    flow, state = body["tags"]
    assert flow["values"] == [10.0, 20.0, 20.0, 10.0]  # linear
    assert state["values"] == [1, 2, 1, 1]  # stepped

    def value(mode: str, t: float) -> Any:
        got = plant.get("/api/v1/history/value", params={"tag": FLOW, "time": at(t), "mode": mode})
        assert got.status_code == 200, got.text
        return got.json()["value"]

    assert value("interpolated", 45) == 10.0
    assert value("previous", 45) == 20.0
    before = plant.get(
        "/api/v1/history/value", params={"tag": FLOW, "time": "2025-12-31T23:59:00Z"}
    ).json()
    assert before["value"] is None  # before the first point nothing is known


@pytest.mark.parametrize(
    ("params", "status", "detail"),
    [
        ({"agg": "twa,median"}, 400, "'median'"),
        ({"tag": MODE, "agg": "twa"}, 400, "need a numeric tag"),
        ({"interval": "1s", "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
         400, "use an interval of at least 15min"),  # the tests allow 100 buckets
        ({"tz": "Mars/Olympus"}, 400, "not a time zone"),
        ({"interval": "1 fortnight"}, 400, "not an interval"),
        ({"tag": "acme/site1/nothing/here"}, 404, "no tag"),
    ],
)  # fmt: skip
def test_bad_requests_say_what_to_do(
    plant: TestClient, params: dict[str, str], status: int, detail: str
) -> None:
    query = {"tag": FLOW, "start": at(0), "end": at(60), "interval": "30s", **params}
    r = summary(plant, **query)
    assert r.status_code == status, r.text
    assert detail in r.json()["detail"]


def test_summaries_interpolations_and_raw_values_export_as_csv_and_parquet(
    plant: TestClient,
) -> None:
    import io

    import polars as pl
    import pyarrow.parquet as pq

    from kiln.historian.frames import to_pandas, to_polars

    params = {"tag": [FLOW, STATE], "start": at(0), "end": at(60), "interval": "30s"}
    r = summary(plant, **params, agg="twa,last", format="csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert 'filename="summary.csv"' in r.headers["content-disposition"]
    lines = r.text.strip().splitlines()
    assert lines[0] == '"tag","ts","twa","last"'
    assert lines[1].startswith(f'"{FLOW}",2026-01-01 00:00:00')
    assert len(lines) == 1 + 2 * 2  # a row per tag and bucket

    r = summary(plant, **params, agg="twa,durations", format="parquet")
    table = pq.read_table(io.BytesIO(r.content))
    assert table.column_names == ["tag", "ts", "twa", "durations"]
    frame = to_polars(table)
    flow = frame.filter(pl.col("tag") == FLOW)
    assert flow["twa"].to_list() == pytest.approx([550 / 30, 300 / 30])
    assert to_pandas(table)["tag"].tolist() == [FLOW, FLOW, STATE, STATE]

    r = plant.get("/api/v1/history/interpolated", params={**params, "format": "parquet"})
    samples = pl.read_parquet(io.BytesIO(r.content))
    assert samples.filter(pl.col("tag") == FLOW)["value"].to_list() == [
        10.0,
        20.0,
        0.0,
    ]  # 0, 30, 60 s

    r = plant.get(
        "/api/v1/history/raw", params={"tag": FLOW, "start": at(0), "end": at(60), "format": "csv"}
    )
    rows = r.text.strip().splitlines()
    assert rows[0] == '"ts","value","quality","quality_code","received"'
    assert [row.split(",")[1] for row in rows[1:]] == ["10", "20", "20", "0"]


def test_compression_configured_per_subtree_is_applied_and_measured(tmp_path: Path) -> None:
    from api_helpers import make_app_client, make_settings

    from kiln.historian.maths.compression import CompressionRule
    from kiln.historian.settings import HistorianSettings
    from kiln.testing.auth import admin_headers, device_headers

    rule = CompressionRule(prefix="acme/site1/utilities", method="swinging_door", deviation=0.5)
    settings = make_settings(tmp_path / "data", historian=HistorianSettings(compression=[rule]))
    with make_app_client(settings) as client:
        client.headers.update(admin_headers(client, tmp_path / "data"))
        device = device_headers(client, dict(client.headers), "gw", "acme")
        ramp = [{"path": FLOW, "value": float(t), "ts": at(t)} for t in range(20)]
        assert (
            client.post("/api/v1/ingest", json={"values": ramp}, headers=device).status_code == 200
        )
        raw = client.get("/api/v1/history/raw", params={"tag": FLOW, "start": at(0), "end": at(60)})
        assert [p["value"] for p in raw.json()["values"]] == [0.0, 19.0]  # a straight line
        # The summary still sees the ramp: it interpolates between the points that were kept.
        got = summary(client, tag=FLOW, start=at(0), end=at(19), interval="1h", agg="twa")
        assert got.json()["tags"][0]["values"]["twa"] == pytest.approx([9.5])
        text = client.get("/metrics").text
        assert f'kiln_historian_compression_ratio{{tag="{FLOW}"}} 10.0' in text
        assert "kiln_historian_compressed_points_total 18.0" in text


def test_the_notebook_client_gives_dataframes(plant: TestClient) -> None:
    import polars as pl

    from kiln.historian.notebook import History, HistoryError

    h = History(client=plant)
    frame = h.summary([FLOW, STATE], start=at(0), end=at(60), interval="30s", agg="twa,last")
    assert isinstance(frame, pl.DataFrame)
    assert frame.filter(pl.col("tag") == FLOW)["twa"].to_list() == pytest.approx([550 / 30, 10.0])
    samples = History(client=plant, frames="pandas").interpolated(
        [FLOW], start=at(0), end=at(30), interval="15s"
    )
    assert samples["value"].tolist() == [10.0, 20.0, 20.0]
    assert h.raw(FLOW, start=at(0), end=at(60))["value"].to_list() == [10.0, 20.0, 20.0, 0.0]
    with pytest.raises(HistoryError, match=r"400.*'median'"):
        h.summary([FLOW], start=at(0), end=at(60), agg="median")
