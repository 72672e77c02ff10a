"""The Sparkplug B host application connector: MQTT around the pure `HostSession`.

On connect it publishes its STATE as online, retained, with a will that says offline
(Sparkplug 3.0, 5.2: [tck-id-host-topic-phid-birth-message], the Death Certificate is the MQTT
will, 5.3), then subscribes to the edge nodes' topics with QoS 0 as data messages are sent with
(4.1). Every message goes through the session; its values are published on the bus in one batch
per burst of messages, historical ones apart (stored, never the latest value); stale metrics get
their last value again, Bad; rebirth requests are published as NCMD.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence
from typing import cast

import aiomqtt

from kiln.connectors.base import SourceLost
from kiln.connectors.link import Link, ValueColumns
from kiln.connectors.mqtt.broker import close_client
from kiln.connectors.sparkplug.codec import BDSEQ_METRIC, HostState, encode_state
from kiln.connectors.sparkplug.config import SparkplugConfig
from kiln.connectors.sparkplug.describe import birth_tags
from kiln.connectors.sparkplug.session import (
    HostOutput,
    HostSession,
    MetricId,
    NodeStatus,
    SessionConfig,
    ValueBlock,
)
from kiln.connectors.sparkplug.topic import StateTopic
from kiln.core.clock import us_to_datetime
from kiln.core.errors import InvalidPathError
from kiln.core.quality import Quality
from kiln.core.values import validate_path
from kiln.model import DescribedTag

_LOGGER = logging.getLogger(__name__)

_BURST = 2_000  # messages handled per bus publish at most
_BAD_SEGMENT_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


def metric_path(template: str, metric: MetricId) -> str:
    """The namespace path of a metric: template filled, each segment made valid ('/' in a
    metric name are folders, 6.4.6; other characters outside the path alphabet become '_' and a
    segment is cut at 64 characters). Not injective: the host gives a path to the first metric
    that maps to it and drops any other, named (`SparkplugHost._path`)."""
    device = metric.device_id
    if device is None:
        template = template.replace("{device}/", "").replace("/{device}", "")
    filled = template.format(
        group=_segment(metric.group_id),
        node=_segment(metric.edge_node_id),
        device=_segment(device or ""),
        metric="/".join(_segment(p) for p in metric.name.split("/") if p),
    )
    return filled


def _segment(text: str) -> str:
    cleaned = _BAD_SEGMENT_CHARS.sub("_", text.strip())[:64]
    return cleaned.lstrip("-.") or "_"


class SparkplugHost:
    def __init__(self, config: SparkplugConfig) -> None:
        self.config = config
        self._session_config = SessionConfig(
            reorder_timeout_ms=config.session.reorder_timeout_ms,
            rebirth_resend_ms=config.session.rebirth_resend_ms,
        )
        self.session = HostSession(self._session_config)
        self._connections = 0
        self._client: aiomqtt.Client | None = None
        self._paths: dict[MetricId, str] = {}
        self._owners: dict[str, MetricId] = {}  # each path, and the one metric stored there
        self._state_topic = StateTopic(config.host_id).topic
        self._birth_ms = 0  # the STATE birth's timestamp, which its death repeats (5.3)

    @property
    def tags(self) -> Sequence[str]:
        return sorted(self._paths.values())

    async def setup(self, link: Link) -> None:
        if self._connections:
            # What the nodes sent while this host was away is lost to it, and the runner has
            # marked their metrics Bad: forget their sessions, so that a node's next data
            # message is data before birth and gets a rebirth request (5.17), whose NBIRTH
            # brings every metric back, Good. (A node that watches this host's STATE rebirths
            # by itself anyway.)
            self.session = HostSession(self._session_config)
        self._connections += 1
        now = self._birth_ms = link.clock.now_us() // 1000
        # The will is published by the broker when this connection drops (5.3).
        will = aiomqtt.Will(
            self._state_topic,
            encode_state(HostState(online=False, timestamp_ms=now)),
            qos=1,
            retain=True,
        )
        client = self.config.broker.client(will=will)
        try:
            await client.__aenter__()
            await client.publish(
                self._state_topic,
                encode_state(HostState(online=True, timestamp_ms=now)),
                qos=1,
                retain=True,
            )
            for group in self.config.groups:
                await client.subscribe(f"spBv1.0/{group}/#", qos=0)
        except BaseException:
            await close_client(client)
            raise
        self._client = client

    async def run(self, link: Link) -> None:
        client = self._client
        if client is None:
            raise SourceLost("not connected")
        messages = client.messages
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._timers(client, link))
                async for first in messages:
                    burst = [first]
                    while len(burst) < _BURST and len(messages) > 0:
                        burst.append(await anext(messages))
                    now_ms = link.clock.now_us() // 1000
                    outputs = [
                        self.session.handle(str(m.topic), bytes(m.payload), now_ms) for m in burst
                    ]
                    await self._describe_births(burst, link)
                    await self._deliver(outputs, client, link)
        except* aiomqtt.MqttError as group:
            raise SourceLost(f"broker connection lost: {group.exceptions[0]}") from None

    async def _describe_births(self, burst: list[aiomqtt.Message], link: Link) -> None:
        """Births (and rebirths with changed metrics) describe their metrics to the model:
        datatype, and unit and description where properties say so (`describe`)."""
        described: list[DescribedTag] = []
        for m in burst:
            if "BIRTH/" in str(m.topic):  # cheap filter; birth_tags parses the topic
                tags = birth_tags(str(m.topic), bytes(m.payload), lambda mid: self._path(mid, link))
                described.extend(tags or ())
        if described:
            await link.describe(described)

    async def _timers(self, client: aiomqtt.Client, link: Link) -> None:
        """Reorder timeouts and rebirth resends fire even when no message arrives."""
        while True:
            due = self.session.next_deadline_ms()
            now_ms = link.clock.now_us() // 1000
            wait_s = 0.5 if due is None else max(0.0, (due - now_ms) / 1000)
            await link.clock.sleep(min(wait_s, 0.5))
            if due is not None and link.clock.now_us() // 1000 >= due:
                await self._deliver([self.session.poll(link.clock.now_us() // 1000)], client, link)

    async def _deliver(self, outputs: list[HostOutput], client: aiomqtt.Client, link: Link) -> None:
        # Columns, not a TagValue per metric: this runs for every metric the plant sends.
        live = ValueColumns()
        historical = ValueColumns()
        last = None
        paths = self._paths
        for out in outputs:
            for block in out.blocks:
                self._add_block(block, live, link)
            for u in out.values:
                if u.metric.name == BDSEQ_METRIC:
                    continue  # the session's own bookkeeping (5.2), not a measurement
                path = paths.get(u.metric) or self._path(u.metric, link)
                if path is None:
                    continue
                value = u.value
                if not isinstance(value, bool | int | float | str):
                    link.malformed("value", f"{u.metric.name}: {type(value).__name__} not stored")
                    continue
                (historical if u.historical else live).add(
                    path, value, u.source_ms * 1000, u.quality
                )
            for s in out.stale:
                if last is None:
                    last = link.last_values()
                path = self._path(s.metric, link)
                if path is not None and path in last:
                    live.add(path, last[path], s.timestamp_ms * 1000, s.quality)
            for action in out.actions:
                # NCMD is sent with QoS 0 (4.1); the session resends when no NBIRTH follows.
                await client.publish(action.topic, action.payload, qos=0)
                _LOGGER.info(
                    "Sparkplug host %s asked %s/%s for a rebirth (%s)",
                    self.config.name, action.group_id, action.edge_node_id, action.reason,
                )  # fmt: skip
            if out.counters.malformed:
                link.malformed("message", "undecodable Sparkplug topic or payload")
        now_us = link.clock.now_us()
        await link.publish_batch(live.batch(now_us))
        await link.publish_batch(historical.batch(now_us, historical=True))

    def _add_block(self, block: ValueBlock, live: ValueColumns, link: Link) -> None:
        paths = self._paths
        found = [paths.get(m) for m in block.metrics]
        if None not in found:  # every metric seen before: the usual case
            source_us = [ms * 1000 for ms in block.source_ms]
            live.extend(cast("list[str]", found), block.values, source_us, Quality.GOOD)
            return
        # First values of some metrics, or names that make no valid path (dropped, counted).
        for metric, value, ms in zip(block.metrics, block.values, block.source_ms, strict=True):
            path = self._path(metric, link)
            if path is not None:
                live.add(path, value, ms * 1000, Quality.GOOD)

    def _path(self, metric: MetricId, link: Link) -> str | None:
        path = self._paths.get(metric)
        if path is None:
            candidate = metric_path(self.config.path, metric)
            try:
                validate_path(candidate)
            except InvalidPathError as err:
                link.malformed("metric name", str(err))
                return None
            owner = self._owners.setdefault(candidate, metric)
            if owner != metric:
                # metric_path makes names valid ('Scan Rate' and 'Scan_Rate' both become
                # Scan_Rate): a second metric there would silently overwrite the first one's
                # series, so the first keeps the path and the second is dropped, named.
                link.malformed(
                    "metric name",
                    f"{metric.path!r} maps to {candidate}, the path of {owner.path!r}: "
                    "rename one of them at the edge node",
                )
                return None
            path = self._paths[metric] = candidate
        return path

    @property
    def degraded(self) -> bool:
        """Connected to the broker, but an edge node or device it heard from is offline."""
        return _offline(self.session.nodes()) != []

    def health_detail(self) -> dict[str, object]:
        """Each edge node and device: online, last birth and death, rebirths, seq errors; and
        while any is offline, a reason that names them."""
        nodes = self.session.nodes()
        detail: dict[str, object] = {
            "nodes": {f"{n.group_id}/{n.edge_node_id}": _node_detail(n) for n in nodes}
        }
        offline = _offline(nodes)
        if offline:
            shown = ", ".join(offline[:5]) + (
                f" and {len(offline) - 5} more" if len(offline) > 5 else ""
            )
            detail["reason"] = f"offline: {shown}"
        return detail

    async def teardown(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        # A clean disconnect does not fire the will: say offline first (5.4), if still up.
        with contextlib.suppress(aiomqtt.MqttError, asyncio.TimeoutError):
            async with asyncio.timeout(2):
                await client.publish(
                    self._state_topic,
                    encode_state(HostState(online=False, timestamp_ms=self._birth_ms)),
                    qos=1,
                    retain=True,
                )
        await close_client(client)


def _offline(nodes: Sequence[NodeStatus]) -> list[str]:
    """What is offline, in words: 'edge node g/n (since ...)', 'device g/n/d (since ...)'."""
    found: list[str] = []
    for n in nodes:
        name = f"{n.group_id}/{n.edge_node_id}"
        if not n.online:
            if n.last_death_ms is not None:
                found.append(f"edge node {name} (NDEATH at {_iso(n.last_death_ms)})")
            else:  # heard from, never seen born: its data cannot be read until it rebirths
                found.append(f"edge node {name} (no NBIRTH seen; rebirth requested)")
            continue
        found.extend(
            f"device {name}/{d.device_id} (since {_iso(d.last_death_ms)})"
            for d in n.devices
            if not d.online and d.last_death_ms is not None
        )
    return found


def _node_detail(n: NodeStatus) -> dict[str, object]:
    return {
        "online": n.online,
        "last_birth": _iso(n.last_birth_ms),
        "last_death": _iso(n.last_death_ms),
        "rebirths_requested": n.rebirths_requested,
        "seq_errors": n.seq_errors,
        "devices": {
            d.device_id: {
                "online": d.online,
                "last_birth": _iso(d.last_birth_ms),
                "last_death": _iso(d.last_death_ms),
            }
            for d in n.devices
        },
    }


def _iso(ms: int | None) -> str | None:
    return None if ms is None else us_to_datetime(ms * 1000).isoformat()
