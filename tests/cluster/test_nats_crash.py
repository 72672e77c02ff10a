"""A storing consumer killed (SIGKILL) before its commit loses nothing: the broker delivers the
batch again, to its successor under the same name, and the publisher still gets its ack."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cluster_helpers import BusMaker

from kiln.core.bus import Overflow
from kiln.core.values import ValueBatch
from kiln.testing.nats import NATS_URL

WAIT_S = 15.0

# The consumer process: takes one batch from the storing subscription, says so, and hangs
# before committing (the kill comes there).
CONSUMER = """
import asyncio, sys
from kiln.cluster.nats_bus import NatsBus
from kiln.core.bus import Overflow
from kiln.core.clock import SystemClock

async def main() -> None:
    bus = NatsBus(sys.argv[1], SystemClock(), node="doomed", prefix=sys.argv[2], ack_wait_s=1.0)
    await bus.start()
    sub = bus.subscribe("historian", max_points=1000, overflow=Overflow.BLOCK, stores=True)
    await sub.created
    print("ready", flush=True)
    batch = await sub.get()
    print("got", batch.batch_id, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.mark.slow
async def test_a_consumer_killed_before_its_commit_gets_the_batch_again(
    buses: BusMaker, prefix: str, tmp_path: Path
) -> None:
    script = tmp_path / "consumer.py"
    script.write_text(CONSUMER)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), NATS_URL, prefix,
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        # The same prefix and settings as the consumer's: one plant's processes share them.
        ingest = await buses("ingest", ack_wait_s=1.0)
        assert await asyncio.wait_for(proc.stdout.readline(), WAIT_S) == b"ready\n"
        sent = ValueBatch(
            paths=[f"acme/line{i}/weight" for i in range(10)],
            values=[float(i) for i in range(10)],
            source_us=list(range(10)),
            qualities=[0] * 10,
            receive_us=0,
        )
        publish = asyncio.ensure_future(ingest.publish_durable(sent, timeout_s=WAIT_S))
        line = await asyncio.wait_for(proc.stdout.readline(), WAIT_S)
        assert line.startswith(b"got ")
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        assert not publish.done(), "acknowledged although nothing was committed"

        # The successor (here, in this process) takes over the name and gets the batch again
        # once the dead consumer's ack_wait has run out.
        successor = ingest.subscribe(
            "historian", max_points=1000, overflow=Overflow.BLOCK, stores=True
        )
        again = await asyncio.wait_for(successor.get(), WAIT_S)
        assert line.split()[1].decode() == again.batch_id
        assert list(again.paths) == list(sent.paths) and list(again.values) == list(sent.values)
        await successor.ack(again)
        await asyncio.wait_for(publish, WAIT_S)  # the publisher's wait ends durable
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
