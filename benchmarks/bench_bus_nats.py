"""Values through NATS JetStream between two processes: points/s on the bus, against bare nats-py.

A publisher process sends batches of 1,000 points (1,000 different tags, as a connector polling
a machine would) and this process consumes them, measured from the publisher's start signal to
the last point taken and acknowledged. Alternately, on the machine's NATS server (or
KILN_BENCH_NATS_URL):

* Kiln: `NatsBus.publish` (binary columnar encoding, the batch cut by shard, each part stored
  in the values stream) -> a storing subscription on another process's `NatsBus` (parts put
  back together, decoded, acknowledged as the historian would after its commit); with the
  default shard count (`bus.shards`), and with one (no cutting);
* baseline: bare nats-py, the same encoded batches, one message each: `js.publish` into a
  stream of the same configuration -> a pull consumer fetching 256 at a time, acknowledging
  each message, decoding nothing.

    python -m benchmarks.bench_bus_nats [--quick]
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import nats
from nats.js import api

from kiln.cluster.codec import encode_batch
from kiln.cluster.nats_bus import NatsBus
from kiln.cluster.settings import BusSettings
from kiln.core.bus import Overflow
from kiln.core.clock import SystemClock
from kiln.core.values import ValueBatch
from kiln.testing.nats import problem, unique_prefix

URL = os.environ.get("KILN_BENCH_NATS_URL", "nats://127.0.0.1:4222")
POINTS = 1_000  # per batch
T0 = 1_767_225_600_000_000


def _batches(count: int) -> list[ValueBatch]:
    paths = [f"acme/plant1/line{i % 10}/machine{i % 50}/tag{i}" for i in range(POINTS)]
    return [
        ValueBatch(
            paths=paths,
            values=[k + i / 1000 for i in range(POINTS)],
            source_us=[T0 + k * 1000] * POINTS,
            qualities=[0] * POINTS,
            receive_us=T0 + k * 1000,
        )
        for k in range(count)
    ]


# -- the publisher process -------------------------------------------------------------------


async def _publisher(mode: str, prefix: str, count: int, shards: int) -> None:
    batches = _batches(count)
    if mode == "kiln":
        bus = NatsBus(URL, SystemClock(), node="bench-pub", prefix=prefix, shards=shards)
        await bus.start()
        print("ready", flush=True)
        sys.stdin.readline()
        for batch in batches:
            await bus.publish(batch)
        await bus.stop()
        return
    payloads = [encode_batch(b) for b in batches]
    nc = await nats.connect(URL)
    js = nc.jetstream()
    print("ready", flush=True)
    sys.stdin.readline()
    for payload in payloads:
        await js.publish(f"{prefix}.bare", payload)
    await nc.close()


# -- this process: the consumer ----------------------------------------------------------------


def _spawn(mode: str, prefix: str, count: int, shards: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_bus_nats", "--publish", mode, prefix,
         str(count), str(shards)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"the {mode} publisher did not start")
    return proc


def _go(proc: subprocess.Popen[str]) -> float:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    return time.perf_counter()


async def _kiln(count: int, shards: int) -> float:
    prefix = unique_prefix()
    bus = NatsBus(URL, SystemClock(), node="bench-sub", prefix=prefix, shards=shards)
    await bus.start()
    try:
        sub = bus.subscribe("historian", max_points=200_000, overflow=Overflow.BLOCK, stores=True)
        await sub.created
        proc = await asyncio.to_thread(_spawn, "kiln", prefix, count, shards)
        started = _go(proc)
        wanted, got = count * POINTS, 0
        async with asyncio.timeout(300):
            while got < wanted:
                for batch in [await sub.get(), *sub.drain(50_000)]:
                    got += len(batch)
                    await sub.ack(batch)
        elapsed = time.perf_counter() - started
        await asyncio.to_thread(proc.wait, 30)
        await bus.destroy()
    finally:
        await bus.stop()
    return wanted / elapsed


async def _bare(count: int) -> float:
    prefix = unique_prefix()
    stream = f"{prefix}_bare"
    nc = await nats.connect(URL)
    js = nc.jetstream()
    jsm = nc.jsm()
    await jsm.add_stream(
        api.StreamConfig(
            name=stream, subjects=[f"{prefix}.bare"], retention=api.RetentionPolicy.INTEREST,
            storage=api.StorageType.FILE, max_bytes=1 << 30, discard=api.DiscardPolicy.NEW,
        )
    )  # fmt: skip
    try:
        psub = await js.pull_subscribe(
            f"{prefix}.bare", durable="bare", stream=stream,
            config=api.ConsumerConfig(ack_policy=api.AckPolicy.EXPLICIT, max_ack_pending=65_536),
        )  # fmt: skip
        proc = await asyncio.to_thread(_spawn, "bare", prefix, count, 1)
        started = _go(proc)
        got = 0
        async with asyncio.timeout(300):
            while got < count:
                try:
                    msgs = await psub.fetch(256, timeout=1.0)
                except TimeoutError:
                    continue
                for msg in msgs:
                    await msg.ack()
                got += len(msgs)
        elapsed = time.perf_counter() - started
        await asyncio.to_thread(proc.wait, 30)
    finally:
        await jsm.delete_stream(stream)
        await nc.close()
    return count * POINTS / elapsed


async def _run(quick: bool) -> list[dict[str, Any]]:
    reason = problem(URL)
    if reason is not None:
        raise RuntimeError(reason)
    count = 100 if quick else 1_000
    shard_counts = sorted({BusSettings().shards, 1}, reverse=True)
    runs: dict[str, list[float]] = {"bare": []} | {f"kiln{s}": [] for s in shard_counts}
    for _ in range(1 if quick else 3):
        runs["bare"].append(await _bare(count))
        for shards in shard_counts:
            runs[f"kiln{shards}"].append(await _kiln(count, shards))
    bare = statistics.median(runs["bare"])
    rows = []
    for shards in shard_counts:
        key = f"kiln{shards}"
        kiln = statistics.median(runs[key])
        rows.append(
            {
                "metric": f"bus_nats_points_per_s_{shards}_shard{'s' if shards > 1 else ''}",
                "value": round(kiln),
                "unit": "points/s",
                "baseline": "bare nats-py js.publish -> pull consumer (ack each) of the same "
                "encoded batches, one message per batch, between the same two processes",
                "baseline_value": round(bare),
                "ratio": round(kiln / bare, 3),
                "path": "NatsBus.publish (encode, cut by shard) -> JetStream -> storing "
                "subscription in another process (join, decode, ack)",
                "points_per_batch": POINTS,
                "batches": count,
                "shards": shards,
                "runs": [round(x) for x in runs[key]],
                "baseline_runs": [round(x) for x in runs["bare"]],
            }
        )
    return rows


def run(quick: bool = False) -> Iterator[dict[str, Any]]:
    yield from asyncio.run(_run(quick))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--publish":
        mode, prefix, count, shards = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        asyncio.run(_publisher(mode, prefix, count, shards))
    else:
        for row in run(quick="--quick" in sys.argv):
            print(json.dumps(row))
