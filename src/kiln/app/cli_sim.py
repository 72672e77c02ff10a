"""`kiln sim`: the virtual factory as real protocol servers, for another Kiln (or any client).

The CNCs are an OPC UA server, the fillers Modbus TCP devices, the conveyors a Sparkplug B edge
node on a broker. With `--write-config FILE` it writes the plant YAML whose connectors read
exactly these servers, so `kiln run --config FILE` connects to them through the real path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from kiln.core.clock import SystemClock
from kiln.core.platform import Platform, Stage
from kiln.logsetup import configure_logging
from kiln.sim import FactorySpec
from kiln.sim.settings import SimServeSettings

if TYPE_CHECKING:
    from kiln.sim.sinks import FrameSink

# The servers (OPC UA, Modbus and MQTT stacks) are imported when `kiln sim` runs: the parser
# is built for every `kiln` command.

_LOGGER = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    sim = sub.add_parser(
        "sim",
        help="serve the virtual factory over OPC UA, Modbus TCP and Sparkplug B",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sim.add_argument("--seed", type=int, default=42)
    sim.add_argument(
        "--tags", type=int, default=None, help="size the plant to about this many tags"
    )
    sim.add_argument("--rate", type=float, default=1.0, help="frames per second (default: 1)")
    sim.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    sim.add_argument("--opcua-port", type=int, default=4840, help="0 for none (default: 4840)")
    sim.add_argument("--modbus-port", type=int, default=5020, help="0 for none (default: 5020)")
    sim.add_argument(
        "--opcua-pki",
        type=Path,
        default=None,
        help="directory for the OPC UA server's certificate (and, with --write-config, the "
        "reading connector's): serve Basic256Sha256 SignAndEncrypt instead of policy None",
    )
    sim.add_argument("--mqtt-url", default=None, help="broker for the Sparkplug B edge node")
    sim.add_argument(
        "--write-config", type=Path, default=None, help="write a plant YAML that reads these"
    )
    sim.add_argument("--log-level", choices=["debug", "info", "warning"], default="info")
    sim.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kiln.sim.servers import simulated_servers

    configure_logging(args.log_level)
    spec = (
        FactorySpec.for_tag_count(args.tags, seed=args.seed, rate_hz=args.rate)
        if args.tags
        else FactorySpec(seed=args.seed, rate_hz=args.rate)
    )
    serve = SimServeSettings(
        host=args.host,
        opcua_port=args.opcua_port or None,
        opcua_pki=args.opcua_pki.resolve() if args.opcua_pki is not None else None,
        modbus_port=args.modbus_port or None,
        mqtt_url=args.mqtt_url,
    )
    sinks, configs = simulated_servers(spec, serve)
    if not sinks:
        print("kiln sim: nothing to serve: give --opcua-port, --modbus-port or --mqtt-url")
        return 2
    if args.write_config is not None:
        plant = {
            "name": "reads the Kiln virtual factory",
            # The type is a default of each model, but the file must name it to be read back.
            "connectors": [
                {"name": c.name, "type": c.type, **c.model_dump(mode="json", exclude_defaults=True)}
                for c in configs
            ],
        }
        args.write_config.write_text(yaml.safe_dump(plant, sort_keys=False))
        print(f"wrote {args.write_config}: kiln run --config {args.write_config}")
    return asyncio.run(_serve(spec, sinks))


async def _serve(spec: FactorySpec, sinks: list[FrameSink]) -> int:
    from kiln.sim.source import SimSource

    platform = Platform(clock=SystemClock(), data_dir=Path("."))
    platform.add(SimSource(spec, sinks), Stage.SOURCES)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with platform:
        for sink in sinks:
            print(
                f"serving {len(sink.paths())} tags over {sink.name} at {sink.endpoint}", flush=True
            )
        print("Ctrl-C stops", flush=True)
        await stop.wait()
    return 0
