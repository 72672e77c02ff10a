"""An asyncua server that changes its variables as fast as it can: the OPC UA benchmark's peer.

Run as a child process so that the server has a core of its own and the process measured is
only the client's:

    python -m benchmarks.opcua_load_server PORT NODES

It serves NODES Double variables `ns=2;s=v0` ... under one object, prints `ready` when it
listens, then writes every variable in turn (a new value and source timestamp each time),
yielding to its network loop after each round, until a line arrives on stdin; it then prints
`writes N seconds S` and stops. Writes go through the address space's `write_attribute_value`,
which is where asyncua's monitored items see each change (no sampling in between).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from datetime import UTC, datetime

from asyncua import ua
from asyncua.server.server import Server

NAMESPACE = "urn:kiln:bench"


def node_id(i: int) -> str:
    return f"ns=2;s=v{i}"


async def serve(port: int, nodes: int) -> None:
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    server = Server()
    server.disable_clock()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/bench")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    ns = await server.register_namespace(NAMESPACE)
    parent = await server.nodes.objects.add_object(ua.NodeId("bench", ns), "bench")
    ids = []
    for i in range(nodes):
        var = await parent.add_variable(ua.NodeId(f"v{i}", ns), f"v{i}", 0.0, ua.VariantType.Double)
        ids.append(var.nodeid)
    await server.start()
    print("ready", flush=True)

    stop = asyncio.Event()
    asyncio.get_running_loop().add_reader(sys.stdin.fileno(), stop.set)
    aspace = server.iserver.aspace
    writes, round_no = 0, 0
    started = time.perf_counter()
    while not stop.is_set():
        round_no += 1
        now = datetime.now(UTC)
        for i, nid in enumerate(ids):
            dv = ua.DataValue(
                ua.Variant(round_no + i / nodes, ua.VariantType.Double),
                SourceTimestamp=now,  # type: ignore[arg-type]
                ServerTimestamp=now,  # type: ignore[arg-type]
            )
            await aspace.write_attribute_value(nid, ua.AttributeIds.Value, dv)
        writes += nodes
        await asyncio.sleep(0)  # let the server answer PublishRequests between rounds
    print(f"writes {writes} seconds {time.perf_counter() - started:.3f}", flush=True)
    await server.stop()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2])))
