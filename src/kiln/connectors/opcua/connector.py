"""The OPC UA client connector: one session, one subscription, values reported by exception.

`setup` connects (`client.open_client`: security, trust, identity), reads each node's value
and DataType once (to know what it holds, and to publish the values at once), creates ONE
subscription and its monitored items in as few CreateMonitoredItems calls as the server's
OperationLimits allow, with a sampling interval and, where set, a deadband filter per node
(Part 4, 5.12.2 and 7.22.2).

The notification path is batched, because that is where OPC UA clients in Python fall behind:
each PublishResponse (Part 4, 5.13.5) is decoded in one pass straight into the columns of one
`ValueBatch`, with no object per value and no task per value, and published with one bus call.
Between asyncua's publish loop and `run` sits a small bounded inbox whose overflow policy is to
block: a full bus (a slow historian) stops the client from sending PublishRequests, and the
server then keeps the changes in its own monitored-item queues (discarding the oldest per item,
with the Overflow info bit set, Part 4, 7.39.1), which is OPC UA's own back-pressure.

`run` ends with `SourceLost` when asyncua's connection watchdog reports the connection lost,
when the server ends the subscription (a StatusChangeNotification, Part 4, 7.20.4), or when not
even a keep-alive arrived in twice the keep-alive period. The runner then marks the tags Bad,
backs off and calls `setup` again, which creates a fresh session and subscription: after a
server restart nothing of the old session is left to resume.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import cast

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaStatusCodeError

from kiln.connectors.base import SourceLost
from kiln.connectors.link import Link, ValueColumns
from kiln.connectors.opcua import variants
from kiln.connectors.opcua.client import close_client, open_client, status_text
from kiln.connectors.opcua.codec import (
    NUMERIC_TYPES,
    BuiltinType,
    Unsupported,
    decodable,
    decode,
    parse_node_id,
    tag_type,
    value_type,
)
from kiln.connectors.opcua.config import Deadband, NodeMapping, OpcUaConfig
from kiln.core.quality import is_good
from kiln.core.values import Scalar, ValueBatch
from kiln.model import DataType, DescribedTag

_LOGGER = logging.getLogger(__name__)

# PublishResponses decoded but not yet on the bus; when full, the publish loop waits (above).
_INBOX_BATCHES = 16
_KEEPALIVE_S = 5.0  # the server sends at least a keep-alive this often (Part 4, 5.13.1.1)
_LIFETIME_S = 60.0  # it keeps the subscription this long without PublishRequests
_MAX_NOTIFICATIONS = 20_000  # per PublishResponse: bounds one message and one batch
_MAX_QUEUE = 100  # monitored-item queue: the samples of one publishing interval, at most this
_HAS_PROPERTY = ua.NodeId.from_string(f"i={ObjectIds.HasProperty}")
# asyncua types its Boolean fields with a marker class; the value is a plain bool.
_FORWARD = cast("ua.Boolean", False)
_BAD = 0x80000000  # the severity bit of a StatusCode (Part 4, 7.39.1)
# Read results that mean the configured node is not there at all (Part 4, 7.39).
_NO_SUCH_NODE = {StatusCodes.BadNodeIdUnknown, StatusCodes.BadNodeIdInvalid}


class OpcUaConnector:
    def __init__(self, config: OpcUaConfig) -> None:
        self.config = config
        self._nodes = list(config.nodes)
        self._refs = [parse_node_id(n.node_id) for n in self._nodes]
        self._paths = [n.path for n in self._nodes]
        self._by_path = {n.path: i for i, n in enumerate(self._nodes)}
        # Last value of each node, across reconnects: what a Bad StatusCode without a value
        # (a null Variant) is reported with.
        self._last: list[Scalar | None] = [None] * len(self._nodes)
        self._session: _Session | None = None
        if not config.secure:
            _LOGGER.warning(
                "Connector %s uses OPC UA security policy None (allow_insecure): values, "
                "writes and passwords travel unsigned and unencrypted",
                config.name,
            )

    @property
    def tags(self) -> Sequence[str]:
        return self._paths

    async def setup(self, link: Link) -> None:
        opened = await open_client(self.config, link.clock, label=self.config.name)
        session = _Session(self, opened.client, link)
        try:
            await session.subscribe()
        except BaseException:
            await close_client(opened.client, self.config.request_timeout_s)
            raise
        self._session = session

    async def run(self, link: Link) -> None:
        session = self._session
        if session is None:
            raise SourceLost("not connected")
        while True:
            await link.publish_batch(await session.inbox.get(session.stale_s))

    async def teardown(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.inbox.fail(SourceLost("closed"))
            await close_client(session.client, self.config.request_timeout_s)

    async def write(self, path: str, value: Scalar) -> None:
        """Write to a node marked `writable`, converted to the node's own data type."""
        name = self.config.name
        index = self._by_path.get(path)
        if index is None:
            raise LookupError(f"{path!r} is not a tag of OPC UA connector {name}")
        node = self._nodes[index]
        if not node.writable:
            raise LookupError(
                f"{path!r} is not writable: set writable: true on node {node.node_id} of OPC "
                f"UA connector {name} to allow write-back"
            )
        session = self._session
        if session is None or not session.inbox.open:
            raise ConnectionError(f"OPC UA connector {name} is not connected")
        node_id, vtype = session.node_ids[index], session.types[index]
        if node_id is None:
            raise ValueError(f"node {node.node_id} of {path} is not on the server")
        if vtype is None:
            raise ValueError(
                f"the data type of node {node.node_id} ({path}) is unknown, so a value "
                "cannot be converted for it"
            )
        try:
            variant = variants.to_variant(value, vtype)
        except ValueError as err:
            raise ValueError(f"cannot write {path} (node {node.node_id}): {err}") from None
        # No StatusCode and no timestamps: many servers refuse a write that carries them
        # (Bad_WriteNotSupported, Part 4, 5.10.4); the server stamps the value itself.
        dv = ua.DataValue(Value=variant, StatusCode=None)
        try:
            (status,) = await session.client.uaclient.write_attributes(
                [node_id], [dv], AttributeIds.Value
            )
        except UaStatusCodeError as err:
            raise ValueError(
                f"the server refused the write to {path} (node {node.node_id}): "
                f"{status_text(int(err.code))}"
            ) from None
        except TimeoutError:
            raise ConnectionError(
                f"the server did not answer the write to {path} within "
                f"{self.config.request_timeout_s:g} s; the value may or may not be written"
            ) from None
        if not status.is_good():
            raise ValueError(
                f"the server refused the write to {path} (node {node.node_id}): "
                f"{status_text(int(status.value))}"
            )
        _LOGGER.info("Connector %s wrote %r to %s (node %s)", name, value, path, node.node_id)


class _Inbox:
    """Decoded batches between asyncua's publish loop and `run`: bounded, blocking when full,
    and closed by the first `fail` (later reasons are ignored: the first one says why)."""

    def __init__(self, maxsize: int) -> None:
        self._items: deque[ValueBatch] = deque()
        self._maxsize = maxsize
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._error: SourceLost | None = None

    @property
    def open(self) -> bool:
        return self._error is None

    async def put(self, batch: ValueBatch) -> None:
        while len(self._items) >= self._maxsize and self._error is None:
            self._space.clear()
            await self._space.wait()
        if self._error is None:
            self._items.append(batch)
            self._wake.set()

    def alive(self) -> None:
        """A keep-alive: the server is there, nothing changed."""
        self._wake.set()

    def fail(self, error: SourceLost) -> None:
        if self._error is None:
            self._error = error
        self._wake.set()
        self._space.set()

    async def get(self, stale_s: float) -> ValueBatch:
        """The next batch; SourceLost once failed and drained, or after `stale_s` without even
        a keep-alive (the subscription died without a word)."""
        while True:
            if self._items:
                self._space.set()
                return self._items.popleft()
            if self._error is not None:
                raise self._error
            self._wake.clear()
            try:
                async with asyncio.timeout(stale_s):
                    await self._wake.wait()
            except TimeoutError:
                self.fail(
                    SourceLost(f"no publish response (not even a keep-alive) in {stale_s:.0f} s")
                )


@dataclass(slots=True)
class _Pending:
    """What setup read for a node, to drop the subscription's identical first report of it."""

    value: Scalar
    source_us: int
    quality: int


class _Session:
    """One connection's state: the client, the resolved nodes, the subscription's inbox."""

    def __init__(self, connector: OpcUaConnector, client: Client, link: Link) -> None:
        self.connector = connector
        self.config = connector.config
        self.client = client
        self.link = link
        n = len(connector._nodes)
        self.node_ids: list[ua.NodeId | None] = [None] * n
        self.types: list[BuiltinType | None] = [None] * n
        self.inbox = _Inbox(_INBOX_BATCHES)
        self.stale_s = 60.0
        self._initial: dict[int, _Pending] = {}
        client.connection_lost_callback = self._connection_lost

    async def _connection_lost(self, exc: Exception) -> None:
        reason = str(exc).strip() or type(exc).__name__
        self.inbox.fail(SourceLost(f"connection to {self.config.endpoint} lost: {reason}"))

    # -- setup ------------------------------------------------------------------------------

    async def subscribe(self) -> None:
        config, link = self.config, self.link
        read_limit, monitor_limit = await self._operation_limits()
        chunk = config.max_items_per_call
        await self._resolve()
        found = [i for i, node_id in enumerate(self.node_ids) if node_id is not None]
        per_read = read_limit // 3 if read_limit else chunk  # three attributes per node
        initial, live = await self._read(found, max(1, min(chunk, per_read)))

        interval = config.publishing_interval_ms
        keepalive = max(1, math.ceil(_KEEPALIVE_S * 1000 / interval))
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=float(interval),
            RequestedLifetimeCount=max(3 * keepalive, math.ceil(_LIFETIME_S * 1000 / interval)),
            RequestedMaxKeepAliveCount=keepalive,
            MaxNotificationsPerPublish=_MAX_NOTIFICATIONS,
            PublishingEnabled=True,
            Priority=0,
        )
        result = await self.client.uaclient.session.create_subscription(params, self._on_publish)
        period_s = result.RevisedPublishingInterval * result.RevisedMaxKeepAliveCount / 1000
        self.stale_s = 2 * period_s + config.request_timeout_s
        step = max(1, min(chunk, monitor_limit or chunk))
        for start in range(0, len(live), step):
            await self._monitor(result.SubscriptionId, live[start : start + step])
        await link.publish_batch(initial)

    async def _operation_limits(self) -> tuple[int, int]:
        """MaxNodesPerRead and MaxMonitoredItemsPerCall (0: no limit, or not told)."""
        ids = (
            ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead,
            ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall,
        )
        results = await self.client.uaclient.read_attributes(
            [ua.NodeId.from_string(f"i={i}") for i in ids], AttributeIds.Value
        )
        limits = []
        for dv in results:
            value = dv.Value.Value if dv.Value is not None else None
            ok = dv.StatusCode is None or dv.StatusCode.is_good()
            limits.append(value if ok and isinstance(value, int) and value > 0 else 0)
        return limits[0], limits[1]

    async def _resolve(self) -> None:
        refs = self.connector._refs
        namespaces: list[str] = []
        if any(r.namespace_uri is not None for r in refs):
            node = self.client.get_node(f"i={ObjectIds.Server_NamespaceArray}")
            namespaces = list(await node.read_value())
        for i, ref in enumerate(refs):
            try:
                self.node_ids[i] = variants.node_id(ref, namespaces)
            except LookupError as err:
                self.link.malformed("node", f"{self.connector._paths[i]}: {err}")

    async def _read(self, indexes: list[int], step: int) -> tuple[ValueBatch, list[int]]:
        """Read Value, DataType and Description of the nodes: the tags they are, described to
        the asset model; their values as a batch (remembered, so that the subscription's first
        report of the same value is not published twice), Bad ones with the reason; and the
        nodes worth monitoring: those that exist, of a type Kiln can carry."""
        nodes, paths, last = self.connector._nodes, self.connector._paths, self.connector._last
        receive_us = self.link.clock.now_us()
        columns = ValueColumns()
        monitor: list[int] = []
        read: list[tuple[int, ua.DataValue]] = []
        described: list[DescribedTag] = []
        attributes = (AttributeIds.Value, AttributeIds.DataType, AttributeIds.Description)
        for start in range(0, len(indexes), step):
            part = indexes[start : start + step]
            request = ua.ReadParameters(TimestampsToReturn=ua.TimestampsToReturn.Both)
            for i in part:
                for attribute in attributes:
                    request.NodesToRead.append(
                        ua.ReadValueId(NodeId=self.node_ids[i], AttributeId=attribute)
                    )
            results = await self.client.uaclient.read(request)
            for k, i in enumerate(part):
                dv, dtype, about = results[3 * k], results[3 * k + 1], results[3 * k + 2]
                status = int(dv.StatusCode.value) if dv.StatusCode is not None else 0
                if status in _NO_SUCH_NODE:
                    self.link.malformed(
                        "node", f"{nodes[i].node_id} ({paths[i]}): {status_text(status)}"
                    )
                    self.node_ids[i] = None
                    continue
                data_type = dtype.Value.Value if dtype.Value is not None else None
                current = dv.Value.VariantType if dv.Value is not None else None
                vtype = value_type(data_type if isinstance(data_type, ua.NodeId) else None, current)
                self.types[i] = vtype
                if vtype is not None and not decodable(vtype):
                    self.link.malformed(
                        "node",
                        f"{nodes[i].node_id} ({paths[i]}) holds {vtype.name}, which has no Kiln "
                        "form; not monitored",
                    )
                    continue
                monitor.append(i)
                kind = tag_type(vtype)
                if kind is not None:
                    described.append(DescribedTag(paths[i], kind, "", _text(about)))
                read.append((i, dv))
        numeric = [d for d in described if d.data_type in (DataType.FLOAT, DataType.INT)]
        units = await self._units([self.connector._by_path[d.path] for d in numeric], step)
        described = [replace(d, unit=units.get(d.path, "")) for d in described]
        # Described before any value: the model learns the node's type, not a guess from it.
        await self.link.describe(described)
        for i, dv in read:
            try:
                value, source_us, quality = decode(dv, receive_us)
            except Unsupported as err:
                self.link.malformed("value", f"{paths[i]} ({nodes[i].node_id}): {err}")
                continue
            if quality & _BAD:
                self.link.last_problem = (
                    f"{paths[i]} (node {nodes[i].node_id}): {status_text(quality)}"
                )
            if value is None:
                value = last[i] if last[i] is not None else self.link.stand_in(paths[i])
                if value is None or is_good(quality):
                    continue
            last[i] = value
            self._initial[i] = _Pending(value, source_us, quality)
            columns.add(paths[i], value, source_us, quality)
        return columns.batch(receive_us), monitor

    async def _units(self, indexes: list[int], step: int) -> dict[str, str]:
        """The unit of each numeric node that has an EngineeringUnits property (Part 8,
        5.6.2: an EUInformation, whose DisplayName is the unit's symbol), by path. Found with
        one TranslateBrowsePathsToNodeIds (Part 4, 5.8.4) and one Read per `step` nodes; a
        server that answers neither leaves the units empty."""
        paths = self.connector._paths
        units: dict[str, str] = {}
        for start in range(0, len(indexes), step):
            part = indexes[start : start + step]
            browse = [
                ua.BrowsePath(
                    StartingNode=self.node_ids[i],
                    RelativePath=ua.RelativePath(
                        Elements=[
                            ua.RelativePathElement(
                                ReferenceTypeId=_HAS_PROPERTY,
                                IsInverse=_FORWARD,  # asyncua's default is True
                                TargetName=ua.QualifiedName("EngineeringUnits", 0),
                            )
                        ]
                    ),
                )
                for i in part
            ]
            try:
                found = await self.client.uaclient.translate_browsepaths_to_nodeids(browse)
                having = [
                    (i, r.Targets[0].TargetId)
                    for i, r in zip(part, found, strict=True)
                    if r.StatusCode.is_good() and r.Targets
                ]
                if not having:
                    continue
                values = await self.client.uaclient.read_attributes(
                    [ua.NodeId(t.Identifier, t.NamespaceIndex) for _, t in having],
                    AttributeIds.Value,
                )
            except (UaStatusCodeError, TimeoutError) as err:
                _LOGGER.debug("Connector %s: no engineering units: %s", self.config.name, err)
                return units
            for (i, _), dv in zip(having, values, strict=True):
                unit = _unit(dv)
                if unit:
                    units[paths[i]] = unit
        return units

    async def _monitor(self, subscription_id: int, indexes: list[int]) -> None:
        nodes = self.connector._nodes
        request = ua.CreateMonitoredItemsParameters(
            SubscriptionId=subscription_id, TimestampsToReturn=ua.TimestampsToReturn.Both
        )
        for i in indexes:
            node = nodes[i]
            sampling = (
                node.sampling_interval_ms
                if node.sampling_interval_ms is not None
                else self.config.sampling_interval_ms
            )
            queue = min(
                _MAX_QUEUE,
                max(1, math.ceil(self.config.publishing_interval_ms / max(sampling, 1))),
            )
            request.ItemsToCreate.append(
                ua.MonitoredItemCreateRequest(
                    ItemToMonitor=ua.ReadValueId(
                        NodeId=self.node_ids[i], AttributeId=AttributeIds.Value
                    ),
                    MonitoringMode=ua.MonitoringMode.Reporting,
                    RequestedParameters=ua.MonitoringParameters(
                        ClientHandle=i,  # the node's index: decoding needs no lookup table
                        SamplingInterval=float(sampling),
                        Filter=self._filter(node, self.types[i]),
                        QueueSize=queue,
                        DiscardOldest=True,
                    ),
                )
            )
        results = await self.client.uaclient.session.create_monitored_items(request)
        for i, result in zip(indexes, results, strict=True):
            if not result.StatusCode.is_good():
                self.link.malformed(
                    "node",
                    f"{nodes[i].node_id} ({nodes[i].path}) cannot be monitored: "
                    f"{status_text(int(result.StatusCode.value))}",
                )

    def _filter(self, node: NodeMapping, vtype: BuiltinType | None) -> ua.DataChangeFilter | None:
        band: Deadband | None = node.deadband
        if band is None and vtype in NUMERIC_TYPES:  # the default never filters a text
            band = self.config.deadband
        if band is None or band.type == "none" or band.value == 0:
            return None
        return ua.DataChangeFilter(
            Trigger=ua.DataChangeTrigger.StatusValue,
            DeadbandType=ua.DeadbandType.Absolute
            if band.type == "absolute"
            else ua.DeadbandType.Percent,
            DeadbandValue=band.value,
        )

    # -- the notification path (hot) --------------------------------------------------------

    async def _on_publish(self, result: ua.PublishResult) -> None:
        """Called by asyncua's publish loop for each PublishResponse of our subscription."""
        data = result.NotificationMessage.NotificationData
        if not data:
            self.inbox.alive()
            return
        columns: ValueColumns | None = None
        for notification in data:
            if isinstance(notification, ua.DataChangeNotification):
                columns = self._decode(notification.MonitoredItems, columns)
            elif isinstance(notification, ua.StatusChangeNotification):
                # Bad_Timeout (expired), Good_SubscriptionTransferred (taken by another
                # session), Bad_Shutdown (asyncua saw the connection go): no more reports.
                status = status_text(int(notification.Status.value))
                self.inbox.fail(SourceLost(f"the server ended the subscription: {status}"))
        if columns is not None:
            await self.inbox.put(columns.batch(self.link.clock.now_us()))
        else:
            self.inbox.alive()

    def _decode(
        self, items: list[ua.MonitoredItemNotification], columns: ValueColumns | None
    ) -> ValueColumns:
        link = self.link
        receive_us = link.clock.now_us()
        paths, last, initial = self.connector._paths, self.connector._last, self._initial
        out = columns if columns is not None else ValueColumns()
        out_paths, out_values, out_ts, out_q = out.paths, out.values, out.source_us, out.qualities
        n = len(paths)
        for item in items:
            i = item.ClientHandle
            if not 0 <= i < n:
                link.malformed("notification", f"unknown client handle {i}")
                continue
            try:
                value, source_us, quality = decode(item.Value, receive_us)
            except Unsupported as err:
                link.malformed("value", f"{paths[i]}: {err}")
                continue
            if quality & _BAD:  # a node gone Bad says why in health (rare: not per value)
                link.last_problem = f"{paths[i]}: {status_text(quality)}"
            if value is None:  # no value: Bad/Uncertain are reported with the last one known
                if is_good(quality):
                    link.malformed("null", f"{paths[i]}: no value, yet Good")
                    continue
                value = last[i] if last[i] is not None else link.stand_in(paths[i])
                if value is None:  # nothing known yet, not even its type: no value to flag
                    continue
            if initial:
                seen = initial.pop(i, None)
                if seen is not None and (seen.value, seen.source_us, seen.quality) == (
                    value,
                    source_us,
                    quality,
                ):
                    continue
            last[i] = value
            out_paths.append(paths[i])
            out_values.append(value)
            out_ts.append(source_us)
            out_q.append(quality)
        return out


def _text(dv: ua.DataValue) -> str:
    """The text of a LocalizedText attribute (Description), "" when absent or unreadable."""
    value = dv.Value.Value if dv.Value is not None else None
    return (value.Text or "") if isinstance(value, ua.LocalizedText) else ""


def _unit(dv: ua.DataValue) -> str:
    """The symbol of an EngineeringUnits value: an EUInformation's DisplayName, or a plain
    text (some servers put the unit there as a String)."""
    value = dv.Value.Value if dv.Value is not None else None
    if isinstance(value, ua.EUInformation):
        return value.DisplayName.Text or ""
    if isinstance(value, ua.LocalizedText):
        return value.Text or ""
    return value if isinstance(value, str) else ""
