"""Connectors: the devices and servers a plant reads (and writes back to), one entry each."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Annotated

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import PlainValidator

from kiln.api.subsystem import BuildContext, Mount, Role, SettingsSection, Subsystem
from kiln.connectors.base import ConnectorConfig, ConnectorState
from kiln.connectors.registry import connector_model, validate_connector_config
from kiln.core.config import SubModel
from kiln.core.platform import Platform, Service, Stage

# Each entry is validated by its own type's model (found by its `type`, a plug-in's too).
CONNECTORS: SettingsSection[list[ConnectorConfig]] = SettingsSection(
    "connectors",
    list[
        Annotated[
            ConnectorConfig,
            PlainValidator(validate_connector_config),
            SubModel(connector_model),
        ]
    ],
    list,
    "devices and servers to read from (one entry each)",
)


def _contribute(ctx: BuildContext) -> None:
    ctx.connectors += CONNECTORS.of(ctx.settings)


def _services(ctx: BuildContext) -> Iterable[tuple[Service, Stage]]:
    # Here, not at the top: every `kiln` command reads this declaration, none needs the service.
    from kiln.connectors.service import Connectors

    # Every contribution is in by now: the plant file's and, e.g., the virtual factory's.
    if not ctx.connectors:
        return ()
    # A sources process has no asset model: the tags are described to the server's over the bus.
    over_bus = ctx.role is Role.SOURCES
    return ((Connectors(list(ctx.connectors), describe_over_bus=over_bus), Stage.SOURCES),)


_STATE_VALUE = {
    ConnectorState.CONNECTED: 1.0,
    ConnectorState.CONNECTING: 0.5,
    ConnectorState.DEGRADED: 0.5,
}


class ConnectorsCollector(Collector):
    """Each connector's state and counts, labelled by connector and type."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def collect(self) -> Iterator[Metric]:
        from kiln.connectors.service import Connectors

        if not self.platform.has(Connectors):
            return
        labels = ["connector", "type"]
        state = GaugeMetricFamily(
            "kiln_connector_state",
            "1 connected, 0.5 connecting or degraded, 0 error or stopped",
            labels=labels,
        )
        values = CounterMetricFamily("kiln_connector_values", "values published", labels=labels)
        malformed = CounterMetricFamily(
            "kiln_connector_malformed", "inputs dropped as undecodable", labels=labels
        )
        failures = CounterMetricFamily(
            "kiln_connector_failures", "connection attempts or runs that failed", labels=labels
        )
        reconnects = CounterMetricFamily(
            "kiln_connector_reconnects", "recoveries after an outage", labels=labels
        )
        refusals = CounterMetricFamily(
            "kiln_connector_bus_refusals",
            "publishes the bus refused (broker unreachable or full) and that were retried",
            labels=labels,
        )
        for r in self.platform.service(Connectors).runners:
            key = [r.name, r.config.type]
            state.add_metric(key, _STATE_VALUE.get(r.effective_state, 0.0))
            st = r.link.stats
            values.add_metric(key, st.values + st.historical_values)
            malformed.add_metric(key, st.malformed)
            failures.add_metric(key, st.failures)
            reconnects.add_metric(key, st.reconnects)
            refusals.add_metric(key, r.link.bus_refusals)
        yield from (state, values, malformed, failures, reconnects, refusals)


SUBSYSTEM = Subsystem(
    name="connectors",
    sections=(CONNECTORS,),
    contribute=_contribute,
    services=_services,
    routers=(Mount("kiln.api.routers.write"), Mount("kiln.api.routers.connectors")),
    collectors=lambda platform: (ConnectorsCollector(platform),),
)
