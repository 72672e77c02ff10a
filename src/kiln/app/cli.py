"""The `kiln` command: its own commands (demo, run, config check) and every installed
subsystem's (`Subsystem.cli`: `kiln admin`, `kiln audit`, `kiln sim`, a plug-in's)."""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from kiln import __version__
from kiln.api.settings import HttpSettings
from kiln.api.subsystem import Role
from kiln.app.settings import KilnSettings, installed_settings, load_settings
from kiln.core.errors import ConfigError
from kiln.core.settings import section_key
from kiln.historian.settings import HistorianSettings
from kiln.logsetup import configure_logging
from kiln.sim import FactorySpec
from kiln.sim.settings import SimServeSettings
from kiln.sim.spec import ShiftSpec

_LOGGER = logging.getLogger(__name__)

EPILOG = """\
examples:
  kiln demo                          run the virtual factory, UI at http://127.0.0.1:8000
  kiln demo --tags 5000 --rate 2     a bigger plant, updating twice a second
  kiln run --config plant.yaml       run a configured plant
  kiln run --config plant.yaml --role sources
                                     ... split: the connectors here, the rest in a
                                     --role server process (both need bus.url: NATS)
  kiln config check plant.yaml       validate a configuration without running it
  kiln sim --write-config sim.yaml   the virtual factory over OPC UA and Modbus TCP
  kiln run --config sim.yaml --port 8001
                                     ... read through Kiln's connectors
  kiln admin devices add press7 --prefix acme/plant1/press/line1/press7
                                     a device credential, printed once
  kiln admin users add alice --role operator --scope acme/plant1
  kiln audit verify --data-dir kiln-data
                                     check the audit log's hash chain
"""


def _parser(settings_model: type[KilnSettings]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiln",
        description="Kiln: open industrial internet platform (connect, historian, API, web UI).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kiln {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run the platform with the built-in virtual factory",
        description="Run the whole platform in one process with the virtual factory feeding it.",
    )
    _server_options(demo)
    demo.add_argument(
        "--data-dir",
        type=Path,
        default=Path("kiln-data"),
        help="where data is kept (default: %(default)s)",
    )
    demo.add_argument("--seed", type=int, default=42, help="simulator seed (default: %(default)s)")
    demo.add_argument(
        "--tags",
        type=int,
        default=None,
        help="size the plant to about this many tags (default: ~100)",
    )
    demo.add_argument(
        "--mqtt-url",
        default="auto",
        help="broker for the conveyors' Sparkplug B edge node (default: mqtt://127.0.0.1:1883 "
        "if one answers there; 'none' for no broker)",
    )
    demo.add_argument(
        "--direct",
        action="store_true",
        help="publish the simulator's values straight onto the bus, without protocol servers",
    )
    demo.add_argument(
        "--rate",
        type=float,
        default=1.0,
        help="simulator updates per second (default: %(default)s)",
    )

    run = sub.add_parser(
        "run",
        help="run a configured plant",
        description="Run the platform from a YAML configuration.",
    )
    run.add_argument("--config", type=Path, required=True, help="plant configuration (YAML)")
    run.add_argument(
        "--historian-url",
        default=None,
        metavar="URL",
        help="keep the history in PostgreSQL (postgresql://user@host/db) instead of DuckDB; "
        "overrides historian.url",
    )
    run.add_argument(
        "--role",
        choices=[r.value for r in Role],
        default=Role.ALL.value,
        help="all: the whole plant in this process (default); sources: the connectors and "
        "simulator, no API; server: everything else with the API. A split needs bus.url",
    )
    _server_options(run)

    config = sub.add_parser("config", help="work with configuration files")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION")
    check = config_sub.add_parser(
        "check", help="validate a configuration file and say what is wrong"
    )
    check.add_argument("file", type=Path)
    for subsystem in settings_model.subsystems:
        subsystem.cli(sub)
    return parser


def _server_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=None, help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="HTTP port (default: 8000)")
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=None,
        help="log detail",
    )


def main(argv: Sequence[str] | None = None) -> int:
    model = installed_settings()
    parser = _parser(model)
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            spec = (
                FactorySpec.for_tag_count(args.tags, seed=args.seed, rate_hz=args.rate)
                if args.tags
                # About 100 tags. The connectors report by exception, so only the tags that
                # change arrive each second (well over 50; counters and states wait).
                else FactorySpec(
                    seed=args.seed, rate_hz=args.rate, machines_per_line=6, fillers_per_line=3
                )
            )
            # The demo shows a plant at work whenever it is started: no changeovers or planned
            # breaks (a plant file's `sim:` keeps the whole shift pattern).
            spec = spec.model_copy(
                update={"shifts": ShiftSpec(changeover_minutes=0, break_minutes=0)}
            )
            # The machines are real protocol servers on loopback, read by Kiln's connectors,
            # so the demo exercises the path a plant uses (--direct: straight onto the bus).
            data_dir = args.data_dir.resolve()
            serve = (
                SimServeSettings()
                if args.direct
                else SimServeSettings(
                    modbus_port=0,
                    opcua_port=0,
                    # Secured as a plant's servers are: certificates made on first start.
                    opcua_pki=data_dir / "pki" / "sim",
                    mqtt_url=_demo_broker(args.mqtt_url),
                )
            )
            settings = model.model_validate(
                {"name": "Kiln demo", "data_dir": data_dir, "sim": spec, "sim_serve": serve}
            )
            return _serve(_override(settings, args))
        if args.command == "run":
            role = Role(args.role)
            settings = _override(load_settings(args.config, model=model), args)
            _check_role(settings, role, args.config)
            return _serve(settings, role)
        if args.command == "config" and args.config_command == "check":
            settings = load_settings(args.file, check_paths=True, model=model)
            summaries = [s.summary(settings) for s in model.subsystems]
            said = ", ".join(x for x in summaries if x)
            print(f"{args.file}: OK" + (f" ({said})" if said else ""))
            return 0
        # A subsystem's command: its parser set the function that runs it.
        handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
        if handler is not None:
            return handler(args)
    except ConfigError as err:
        print(f"kiln: configuration error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"kiln: {err}", file=sys.stderr)
        return 2
    parser.print_help()
    return 0 if args.command is None else 2


def _demo_broker(choice: str) -> str | None:
    """The demo's MQTT broker: the one asked for, or a local one if it answers, or none."""
    if choice == "none":
        return None
    if choice != "auto":
        return choice
    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=0.5).close()
    except OSError:
        print("kiln demo: no MQTT broker on 127.0.0.1:1883; the conveyors report directly")
        return None
    return "mqtt://127.0.0.1:1883"


def _override(settings: KilnSettings, args: argparse.Namespace) -> KilnSettings:
    http = settings.http.model_dump()
    if args.host is not None:
        http["host"] = args.host
    if args.port is not None:
        http["port"] = args.port
    update: dict[str, object] = {"http": HttpSettings(**http)}
    url = getattr(args, "historian_url", None)
    if url is not None:
        historian = settings.section(HistorianSettings).model_dump()
        historian["url"] = url
        key = section_key(type(settings), HistorianSettings)
        update[key] = HistorianSettings.model_validate(historian)
    if args.log_level is not None:
        update["log_level"] = args.log_level
    return settings.model_copy(update=update)


def _check_role(settings: KilnSettings, role: Role, config: Path) -> None:
    """A split role needs a bus both processes reach: refuse it at once without one."""
    if role is not Role.ALL and settings.bus.url is None:
        raise ConfigError(
            f"--role {role.value} runs part of the plant, and the other part runs in another "
            f"process: they meet on NATS, but {config} has no bus.url. Add\n"
            "  bus:\n    url: nats://127.0.0.1:4222\n"
            f"to {config} (a nats-server with -js), or run --role all (one process)"
        )


def _serve(settings: KilnSettings, role: Role = Role.ALL) -> int:
    if role is Role.SOURCES:
        return _run_sources(settings)
    import uvicorn  # imported here: `kiln --help` and `kiln config check` stay fast

    from kiln.app.server import build_app
    from kiln.core.errors import StartupError

    configure_logging(settings.log_level)
    app = build_app(settings, role=role)
    http = settings.http
    if (http.tls_cert is None) != (http.tls_key is None):
        print("kiln: give both http.tls_cert and http.tls_key, or neither", file=sys.stderr)
        return 2
    scheme = "https" if http.tls_cert else "http"
    url = f"{scheme}://{http.host}:{http.port}"
    part = "" if role is Role.ALL else f", {role.value} role on {settings.bus.url}"
    print(
        f"Kiln {__version__}: serving {url}  (API docs {url}/docs, data in "
        f"{settings.data_dir}{part})"
    )
    config = uvicorn.Config(
        app,
        host=settings.http.host,
        port=settings.http.port,
        lifespan="on",
        ws="websockets-sansio",
        ssl_certfile=str(http.tls_cert) if http.tls_cert else None,
        ssl_keyfile=str(http.tls_key) if http.tls_key else None,
        # Only what TLS 1.2+ with forward secrecy allows (IEC 62443-4-2 CR 3.1, 4.3).
        ssl_ciphers="ECDHE+AESGCM:ECDHE+CHACHA20",
        # uvicorn's records go through Kiln's logging (configure_logging); the access line of
        # every request only at debug.
        log_config=None,
        access_log=settings.log_level == "debug",
    )
    try:
        uvicorn.Server(config).run()
    except StartupError as err:
        print(f"kiln: could not start: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # uvicorn re-raises Ctrl-C after its graceful shutdown; the platform has already
        # stopped and checkpointed, so there is nothing left to report.
        pass
    return 0


def _run_sources(settings: KilnSettings) -> int:
    """The sources role: the platform's sources without an HTTP server, until Ctrl-C/SIGTERM."""
    import asyncio

    from kiln.app.sources import run_sources
    from kiln.core.bus import BusError
    from kiln.core.errors import StartupError

    configure_logging(settings.log_level)
    print(f"Kiln {__version__}: sources role, publishing to {settings.bus.url}", flush=True)
    try:
        asyncio.run(run_sources(settings))
    except (StartupError, BusError) as err:
        print(f"kiln: could not start: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass  # a second Ctrl-C while stopping
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
