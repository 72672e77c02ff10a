"""A Sparkplug B edge node that publishes node metrics: what the simulated conveyors report
through, and what the host tests talk to.

It follows the edge node's side of Sparkplug 3.0: the MQTT will is the NDEATH with the session's
bdSeq (5.2), the NBIRTH carries every metric with its alias and datatype plus bdSeq, seq 0
(6.4.20), every NDATA the next seq (wrapping at 256) and only changed metrics, by alias; an
NCMD "Node Control/Rebirth" makes it publish its NBIRTH again (5.17), with the current values
stamped with the time they were published at (not the command's time: a value is not restated
as produced later than it was).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import aiomqtt

from kiln.connectors.mqtt.broker import BrokerSettings, close_client
from kiln.connectors.sparkplug.codec import (
    BDSEQ_METRIC,
    REBIRTH_METRIC,
    DataType,
    Metric,
    Payload,
    decode_payload,
    encode_payload,
)
from kiln.connectors.sparkplug.topic import EdgeTopic, MessageType
from kiln.core.values import Scalar

_LOGGER = logging.getLogger(__name__)


def datatype_of_value(value: Scalar) -> DataType:
    if isinstance(value, bool):
        return DataType.BOOLEAN
    if isinstance(value, int):
        return DataType.INT64
    if isinstance(value, float):
        return DataType.DOUBLE
    return DataType.STRING


class EdgeNode:
    """One edge node of group `group_id`; metrics are declared by the first `publish`."""

    def __init__(self, broker: BrokerSettings, group_id: str, edge_node_id: str) -> None:
        self.broker = broker
        self.group_id = group_id
        self.edge_node_id = edge_node_id
        self.bd_seq = 0
        self.seq = 0
        self.births = 0
        self._aliases: dict[str, int] = {}
        self._types: dict[str, DataType] = {}
        self._last: dict[str, Scalar] = {}
        self._last_ms = 0  # when the values in _last were published
        self._client: aiomqtt.Client | None = None
        self._listener: asyncio.Task[None] | None = None

    def topic(self, kind: MessageType) -> str:
        return EdgeTopic(self.group_id, kind, self.edge_node_id).topic

    async def connect(self, metrics: Mapping[str, Scalar], now_ms: int) -> None:
        """Connect with the NDEATH will, publish the NBIRTH, listen for NCMD."""
        self._declare(metrics)
        self._last = dict(metrics)
        self._last_ms = now_ms
        death = encode_payload(
            Payload(
                timestamp_ms=now_ms,
                metrics=(Metric(name=BDSEQ_METRIC, datatype=DataType.INT64, value=self.bd_seq),),
            )
        )
        will = aiomqtt.Will(self.topic(MessageType.NDEATH), death, qos=1, retain=False)
        client = self.broker.client(will=will)
        await client.__aenter__()
        self._client = client
        await client.subscribe(self.topic(MessageType.NCMD), qos=0)
        self._listener = asyncio.create_task(self._listen(client))
        await self.birth(now_ms)

    def _declare(self, metrics: Mapping[str, Scalar]) -> None:
        for name, value in metrics.items():
            if name not in self._aliases:
                self._aliases[name] = len(self._aliases) + 1
                self._types[name] = datatype_of_value(value)

    async def birth(self, now_ms: int) -> None:
        self.seq = 0
        self.births += 1
        metrics = [Metric(name=BDSEQ_METRIC, datatype=DataType.INT64, value=self.bd_seq)] + [
            Metric(
                name=name,
                alias=self._aliases[name],
                timestamp_ms=now_ms,
                datatype=self._types[name],
                value=value,
            )
            for name, value in self._last.items()
        ]
        await self._send(MessageType.NBIRTH, Payload(now_ms, tuple(metrics), seq=0))

    async def publish(
        self, metrics: Mapping[str, Scalar], now_ms: int, *, historical: bool = False
    ) -> None:
        """NDATA with the metrics that changed (all of them when `historical`)."""
        changed = {
            k: v for k, v in metrics.items() if historical or self._last.get(k, object()) != v
        }
        if not changed:
            return
        if not historical:
            self._last.update(changed)
            self._last_ms = now_ms
        self.seq = (self.seq + 1) % 256
        payload = Payload(
            now_ms,
            tuple(
                Metric(
                    alias=self._aliases[name],
                    timestamp_ms=now_ms,
                    datatype=self._types[name],
                    value=value,
                    is_historical=historical,
                )
                for name, value in changed.items()
            ),
            seq=self.seq,
        )
        await self._send(MessageType.NDATA, payload)

    async def _send(self, kind: MessageType, payload: Payload) -> None:
        if self._client is None:
            raise RuntimeError("the edge node is not connected")
        await self._client.publish(self.topic(kind), encode_payload(payload), qos=0)

    async def _listen(self, client: aiomqtt.Client) -> None:
        try:
            async for message in client.messages:
                try:
                    command = decode_payload(bytes(message.payload))
                except ValueError:
                    continue
                if any(m.name == REBIRTH_METRIC and m.value is True for m in command.metrics):
                    await self.birth(self._last_ms)
        except aiomqtt.MqttError:
            return

    async def close(self, *, send_death: bool = True, now_ms: int = 0) -> None:
        """Disconnect; a clean disconnect does not fire the will, so send the NDEATH first."""
        client, self._client = self._client, None
        if client is None:
            return
        if send_death:
            death = Payload(
                now_ms,
                (Metric(name=BDSEQ_METRIC, datatype=DataType.INT64, value=self.bd_seq),),
            )
            await client.publish(self.topic(MessageType.NDEATH), encode_payload(death), qos=1)
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.wait({self._listener})
        await close_client(client)
        self.bd_seq = (self.bd_seq + 1) % 256
