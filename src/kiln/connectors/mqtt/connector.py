"""The plain MQTT connector: subscribe with QoS 1, decode JSON by the topic mappings, publish.

Messages are taken in bursts: everything already received is decoded and published as one
batch, so a busy broker costs one bus publish per burst, not one per message. After a lost
connection the runner reconnects and `setup` subscribes again (a clean session: the broker
keeps nothing for us, so nothing stale arrives after a long outage).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import aiomqtt

from kiln.connectors.base import SourceLost
from kiln.connectors.link import Link
from kiln.connectors.mqtt.broker import close_client
from kiln.connectors.mqtt.codec import CompiledMapping, MalformedMessage, TopicMapping, decode
from kiln.connectors.mqtt.config import MqttConfig
from kiln.core.values import TagValue
from kiln.model import DataType, DescribedTag

_LOGGER = logging.getLogger(__name__)

# Messages decoded into one batch at most; more wait for the next burst.
_BURST = 5_000


class MqttConnector:
    def __init__(self, config: MqttConfig) -> None:
        self.config = config
        self._compiled = [CompiledMapping.of(m) for m in config.mappings]
        self._client: aiomqtt.Client | None = None
        self._paths: set[str] = set()

    @property
    def tags(self) -> Sequence[str]:
        # Paths are known only as messages arrive (a `+` can stand for any machine).
        return sorted(self._paths)

    async def setup(self, link: Link) -> None:
        client = self.config.broker.client()
        try:
            await client.__aenter__()
            for topic in dict.fromkeys(m.topic for m in self.config.mappings):
                await client.subscribe(topic, qos=self.config.qos)
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
            async for first in messages:
                burst = [first]
                while len(burst) < _BURST and len(messages) > 0:  # already received: no wait
                    burst.append(await anext(messages))
                known = len(self._paths)
                values = self._decode(burst, link)
                if len(self._paths) > known:
                    await link.describe(self._described(burst, values))
                await link.publish(values)
        except aiomqtt.MqttError as err:
            raise SourceLost(f"broker connection lost: {err}") from None

    def _decode(self, messages: list[aiomqtt.Message], link: Link) -> list[TagValue]:
        receive_us = link.clock.now_us()
        out: list[TagValue] = []
        for msg in messages:
            try:
                values = decode(self._compiled, str(msg.topic), bytes(msg.payload), receive_us)
            except MalformedMessage as err:
                link.malformed("payload", str(err))
                continue
            out.extend(values)
        self._paths.update(v.path for v in out)
        return out

    def _described(
        self, messages: list[aiomqtt.Message], values: list[TagValue]
    ) -> list[DescribedTag]:
        """New paths as tags of the model: the type of the first value, the mapping's unit and
        description. A path is known only when a message names it (a `+` may be any machine),
        so this runs for the first message of each path."""
        mapping_of: dict[str, TopicMapping] = {}
        for msg in messages:
            for c in self._compiled:
                path = c.match(str(msg.topic))
                if path is not None:
                    mapping_of.setdefault(path, c.mapping)
        out: list[DescribedTag] = []
        for v in values:
            m = mapping_of.get(v.path)
            if m is not None and (m.unit or m.description):
                out.append(DescribedTag(v.path, DataType.infer(v.value), m.unit, m.description))
        return out

    async def teardown(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await close_client(client)
