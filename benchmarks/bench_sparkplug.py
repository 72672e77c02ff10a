"""Sparkplug B ingest: metrics/s from NDATA messages of 100 metrics, through Mosquitto, decoded
by the host connector and committed by the historian.

A Mosquitto of the benchmark's own (loopback, ephemeral port) carries the same pre-encoded
messages to two receivers, measured alternately in this process: Kiln (the Sparkplug host
connector's session, the bus, the historian writer, until every point is committed to DuckDB)
and the baseline, a bare aiomqtt subscriber that only counts what arrives. The publisher is the
same for both. Target (issue 4): 100,000 metrics/s or more in one process (ThingsBoard quotes
about 18,000 data points/s as its ceiling on 2 vCPUs with PostgreSQL).

    python -m benchmarks.bench_sparkplug [--quick]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt

from kiln.connectors.mqtt.broker import BrokerSettings
from kiln.connectors.service import Connectors
from kiln.connectors.sparkplug.codec import BDSEQ_METRIC, DataType, Metric, Payload, encode_payload
from kiln.connectors.sparkplug.config import SparkplugConfig
from kiln.core.clock import SystemClock
from kiln.core.platform import Platform, Stage
from kiln.historian.service import Historian
from kiln.testing.mosquitto import Mosquitto

METRICS = 100  # per NDATA
T0 = 1_767_225_600_000


def _messages(group: str, count: int) -> list[tuple[str, bytes]]:
    birth = Payload(
        T0,
        (
            Metric(name=BDSEQ_METRIC, datatype=DataType.INT64, value=0),
            *(
                Metric(name=f"m{i}", alias=i + 1, datatype=DataType.DOUBLE, value=0.0)
                for i in range(METRICS)
            ),
        ),
        seq=0,
    )
    out = [(f"spBv1.0/{group}/NBIRTH/edge1", encode_payload(birth))]
    for k in range(1, count + 1):
        ts = T0 + k * 10
        data = Payload(
            ts,
            tuple(
                Metric(alias=i + 1, timestamp_ms=ts, datatype=DataType.DOUBLE, value=k + i / 100)
                for i in range(METRICS)
            ),
            seq=k % 256,
        )
        out.append((f"spBv1.0/{group}/NDATA/edge1", encode_payload(data)))
    return out


async def _publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    async with aiomqtt.Client("127.0.0.1", port, max_queued_outgoing_messages=0) as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=0)


async def _bare(port: int, messages: list[tuple[str, bytes]]) -> float:
    async with aiomqtt.Client("127.0.0.1", port) as sub:
        await sub.subscribe("spBv1.0/bare/#", qos=0)
        await asyncio.sleep(0.2)
        wanted = len(messages)
        got = 0
        started = time.perf_counter()
        publisher = asyncio.create_task(_publish(port, messages))
        async with asyncio.timeout(120):
            async for _ in sub.messages:
                got += 1
                if got == wanted:
                    break
        elapsed = time.perf_counter() - started
        await publisher
    return (wanted - 1) * METRICS / elapsed


async def _kiln(port: int, messages: list[tuple[str, bytes]], data: Path, group: str) -> float:
    platform = Platform(clock=SystemClock(), data_dir=data)
    historian = Historian(data / f"{group}.duckdb")
    platform.add(historian, Stage.STORAGE)
    config = SparkplugConfig(
        name="bench", broker=BrokerSettings(url=f"mqtt://127.0.0.1:{port}"), groups=[group],
        host_id=f"bench-{group}", path="bench/{node}/{metric}",
    )  # fmt: skip
    platform.add(Connectors([config]), Stage.SOURCES)
    async with platform:
        await asyncio.sleep(0.5)  # subscribed
        wanted = (len(messages) - 1) * METRICS + METRICS  # the birth's values are stored too
        before = historian.stats.points
        started = time.perf_counter()
        await _publish(port, messages)
        async with asyncio.timeout(120):
            while historian.stats.points - before < wanted:  # noqa: ASYNC110 - poll a counter
                await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
    return (len(messages) - 1) * METRICS / elapsed


async def _run(quick: bool) -> dict[str, Any]:
    count = 300 if quick else 3_000
    with tempfile.TemporaryDirectory(prefix="kiln-bench-") as tmp:
        broker = Mosquitto(Path(tmp))
        broker.start()
        try:
            kiln_runs, bare_runs = [], []
            for run in range(1 if quick else 3):
                bare_runs.append(await _bare(broker.port, _messages("bare", count)))
                group = f"kiln{run}"
                kiln_runs.append(
                    await _kiln(broker.port, _messages(group, count), Path(tmp), group)
                )
        finally:
            broker.kill()
    kiln, bare = statistics.median(kiln_runs), statistics.median(bare_runs)
    return {
        "metric": "sparkplug_ingest_metrics_per_s",
        "value": round(kiln),
        "unit": "metrics/s",
        "baseline": "bare MQTT subscriber receiving the same NDATA messages through Mosquitto",
        "baseline_value": round(bare),
        "ratio": round(kiln / bare, 3),
        "target": ">= 100,000 metrics/s",
        "path": "Mosquitto -> host session -> bus -> historian commit (DuckDB)",
        "metrics_per_message": METRICS,
        "messages": count,
        "runs": [round(x) for x in kiln_runs],
        "baseline_runs": [round(x) for x in bare_runs],
    }


def run(quick: bool = False) -> Iterator[dict[str, Any]]:
    yield asyncio.run(_run(quick))


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(json.dumps(row))
