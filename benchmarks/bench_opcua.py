"""OPC UA: value changes per second received through a subscription and stored by the historian.

The peer is an asyncua server in a child process (`benchmarks.opcua_load_server`, loopback,
ephemeral port) changing 1,000 Double variables as fast as it can. Measured alternately in this
process, for the same time each:

- Kiln: the OPC UA connector (one subscription, every node monitored, report by exception, no
  deadband), the bus and the historian, counting points committed to DuckDB;
- the baseline: a bare asyncua client with the same subscription whose publish callback only
  counts the notifications in each PublishResponse (asyncua's own decoding, nothing else);
- for context, asyncua's usual way: `subscribe_data_change` with a handler called once per
  value, which is where users report lag beyond 3,000-6,000 changes/s.

One asyncua server produces about as many changes as one core lets it, so the received rate
is bounded by the server; the CPU time this process spends per change says how much more one
core of Kiln could take (`kiln_cpu_us_per_change`, from `time.process_time`, all threads).
Target (issue 4): 10,000 changes/s or more in one process.

    python -m benchmarks.bench_opcua [--quick]
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from asyncua import Client, ua

from benchmarks.opcua_load_server import node_id
from kiln.connectors.opcua.config import OpcUaConfig
from kiln.connectors.service import Connectors
from kiln.core.clock import SystemClock
from kiln.core.platform import Platform, Stage
from kiln.historian.service import Historian
from kiln.testing.server import free_port

NODES = 1_000
PUBLISHING_MS = 100


def _config(endpoint: str) -> OpcUaConfig:
    return OpcUaConfig.model_validate({
        "name": "bench", "endpoint": endpoint, "allow_insecure": True,
        "security_policy": "None", "publishing_interval_ms": PUBLISHING_MS,
        "sampling_interval_ms": 0, "deadband": {"type": "none"},
        "nodes": [{"node_id": node_id(i), "path": f"acme/bench/opcua/v{i}"} for i in range(NODES)],
    })  # fmt: skip


Measured = tuple[float, float]  # changes/s, CPU µs of this process per change


async def _window(count: Callable[[], int], seconds: float) -> Measured:
    """Rate and CPU cost per change over `seconds`, once the first changes have arrived."""
    async with asyncio.timeout(30):
        while count() == 0:  # noqa: ASYNC110 - waiting for a counter to move
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # past the first, larger PublishResponses
    before, cpu0, wall0 = count(), time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    changes = count() - before
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return changes / wall, cpu * 1e6 / max(changes, 1)


async def _kiln(endpoint: str, seconds: float, data: Path, run: int) -> Measured:
    platform = Platform(clock=SystemClock(), data_dir=data)
    historian = Historian(data / f"opcua{run}.duckdb")
    platform.add(historian, Stage.STORAGE)
    platform.add(Connectors([_config(endpoint)]), Stage.SOURCES)
    async with platform:
        start = historian.stats.points
        return await _window(lambda: historian.stats.points - start, seconds)


async def _client(endpoint: str, body: Callable[[Client], Awaitable[Measured]]) -> Measured:
    client = Client(endpoint)
    await client.connect()
    try:
        return await body(client)
    finally:
        await client.disconnect()


async def _bare(endpoint: str, seconds: float) -> Measured:
    got = 0

    def on_publish(result: ua.PublishResult) -> None:
        nonlocal got
        for data in result.NotificationMessage.NotificationData:
            if isinstance(data, ua.DataChangeNotification):
                got += len(data.MonitoredItems)

    async def body(client: Client) -> Measured:
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=float(PUBLISHING_MS),
            RequestedLifetimeCount=600,
            RequestedMaxKeepAliveCount=50,
            MaxNotificationsPerPublish=20_000,
            PublishingEnabled=True,
            Priority=0,
        )
        session = client.uaclient.session
        sub = await session.create_subscription(params, on_publish)
        request = ua.CreateMonitoredItemsParameters(
            SubscriptionId=sub.SubscriptionId, TimestampsToReturn=ua.TimestampsToReturn.Both
        )
        for i in range(NODES):
            request.ItemsToCreate.append(
                ua.MonitoredItemCreateRequest(
                    ItemToMonitor=ua.ReadValueId(
                        NodeId=ua.NodeId.from_string(node_id(i)), AttributeId=ua.AttributeIds.Value
                    ),
                    MonitoringMode=ua.MonitoringMode.Reporting,
                    RequestedParameters=ua.MonitoringParameters(
                        ClientHandle=i, SamplingInterval=0.0, QueueSize=100, DiscardOldest=True
                    ),
                )
            )
        await session.create_monitored_items(request)
        return await _window(lambda: got, seconds)

    return await _client(endpoint, body)


async def _per_value_handler(endpoint: str, seconds: float) -> Measured:
    got = 0

    class Handler:
        def datachange_notification(self, node: object, val: object, data: object) -> None:
            nonlocal got
            got += 1

    async def body(client: Client) -> Measured:
        sub = await client.create_subscription(PUBLISHING_MS, Handler())
        nodes = [client.get_node(node_id(i)) for i in range(NODES)]
        await sub.subscribe_data_change(nodes, queuesize=100, sampling_interval=0.0)
        return await _window(lambda: got, seconds)

    return await _client(endpoint, body)


def _start_server(port: int) -> subprocess.Popen[str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.opcua_load_server", str(port), str(NODES)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline().strip()
    if line != "ready":
        server.kill()
        raise RuntimeError(f"the OPC UA load server did not start (said {line!r})")
    return server


def _stop_server(server: subprocess.Popen[str]) -> float:
    """Stop the server; its write rate over its whole life."""
    assert server.stdin is not None
    assert server.stdout is not None
    server.stdin.write("stop\n")
    server.stdin.flush()
    words = server.stdout.readline().split()
    server.wait(timeout=30)
    return int(words[1]) / float(words[3])


async def _run(quick: bool) -> dict[str, Any]:
    for name in ("asyncua", "asyncua.client", "asyncua.uaprotocol"):  # their chatter
        logging.getLogger(name).setLevel(logging.ERROR)
    # The connector warns, rightly, that policy None is insecure; here it is on purpose.
    logging.getLogger("kiln.connectors.opcua.connector").setLevel(logging.ERROR)
    seconds = 1.5 if quick else 4.0
    port = free_port()
    endpoint = f"opc.tcp://127.0.0.1:{port}/bench"
    server = _start_server(port)
    kiln_runs: list[Measured] = []
    bare_runs: list[Measured] = []
    try:
        with tempfile.TemporaryDirectory(prefix="kiln-bench-") as tmp:
            for run in range(1 if quick else 3):
                bare_runs.append(await _bare(endpoint, seconds))
                kiln_runs.append(await _kiln(endpoint, seconds, Path(tmp), run))
            handler = await _per_value_handler(endpoint, seconds)
    finally:
        server_rate = _stop_server(server)
    kiln = statistics.median(r for r, _ in kiln_runs)
    bare = statistics.median(r for r, _ in bare_runs)
    kiln_cpu = statistics.median(c for _, c in kiln_runs)
    return {
        "metric": "opcua_subscription_changes_per_s",
        "value": round(kiln),
        "unit": "changes/s",
        "baseline": "bare asyncua client, same subscription, callback only counts notifications",
        "baseline_value": round(bare),
        "ratio": round(kiln / bare, 3),
        "target": ">= 10,000 changes/s",
        "path": "asyncua server (child process) -> connector -> bus -> historian commit (DuckDB)",
        "nodes": NODES,
        "runs": [round(r) for r, _ in kiln_runs],
        "baseline_runs": [round(r) for r, _ in bare_runs],
        "server_writes_per_s": round(server_rate),
        "kiln_cpu_us_per_change": round(kiln_cpu, 1),
        "kiln_changes_per_cpu_second": round(1e6 / kiln_cpu),
        "bare_cpu_us_per_change": round(statistics.median(c for _, c in bare_runs), 1),
        "asyncua_per_value_handler_changes_per_s": round(handler[0]),
        "asyncua_per_value_handler_cpu_us_per_change": round(handler[1], 1),
    }


def run(quick: bool = False) -> Iterator[dict[str, Any]]:
    yield asyncio.run(_run(quick))


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(json.dumps(row))
