"""Proposing tag mappings from a server's address space, for a CLI or an API to offer.

`propose` walks the hierarchy below a node (Objects by default) breadth first, one Browse call
per level and chunk (Part 4, 5.8.2, following continuation points with BrowseNext), and turns
each Variable Kiln can carry into a {node_id, path, data_type} proposal whose path is the
prefix plus the browse names on the way, made into valid namespace segments. Properties
(HasProperty: EURange, EngineeringUnits, ...) describe a variable rather than being tags and are
skipped, as are arrays and data types without a Kiln scalar form. Proposals are never writable:
write-back stays a deliberate choice in the configuration.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIdNames, ObjectIds

from kiln.connectors.opcua import variants
from kiln.connectors.opcua.client import close_client, open_client
from kiln.connectors.opcua.codec import decodable, parse_node_id, value_type
from kiln.connectors.opcua.config import OpcUaConnection
from kiln.core.clock import Clock, SystemClock
from kiln.core.values import MAX_PATH_LENGTH, validate_path

_LOGGER = logging.getLogger(__name__)

_SEGMENT_MAX = 64
_BROWSE_CHUNK = 500  # nodes per Browse or Read call


@dataclass(frozen=True, slots=True)
class Proposal:
    """One proposed mapping: put `node_id`'s values at `path`."""

    node_id: str
    path: str
    data_type: str  # the DataType's name (Double, Int32, Duration, ...) or its NodeId

    def as_mapping(self) -> dict[str, str]:
        """The entry for a connector's `nodes:` list."""
        return {"node_id": self.node_id, "path": self.path}


def sanitize_segment(name: str) -> str:
    """A browse name as one namespace path segment: accents dropped (ü -> u), every other
    character outside letters, digits, '_', '-' and '.' replaced by '_', runs of '_' merged, no
    leading '.' or '-', at most 64 characters; "_" when nothing is left."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    segment = re.sub(r"[^A-Za-z0-9_.\-]+", "_", ascii_name)
    segment = re.sub(r"_{2,}", "_", segment).strip("_")
    segment = segment.lstrip(".-")
    return segment[:_SEGMENT_MAX].rstrip(".-") or "_"


async def propose(
    connection: OpcUaConnection,
    *,
    root: str = "i=85",
    prefix: str,
    max_depth: int = 10,
    limit: int = 10_000,
    clock: Clock | None = None,
) -> list[Proposal]:
    """Mappings for the variables below `root` (a NodeId string; Objects by default), their
    paths under `prefix` (a namespace path such as acme/plant1/line1).

    Stops at `max_depth` levels and at `limit` proposals (logged when it does, so a partial
    list is never mistaken for the whole server).
    """
    validate_path(f"{prefix.rstrip('/')}/x")  # a valid path once a name is added
    root_id = variants.node_id(parse_node_id(root))
    opened = await open_client(connection, clock or SystemClock(), label="browse")
    try:
        return await _walk(opened.client, root_id, prefix.rstrip("/"), max_depth, limit)
    finally:
        await close_client(opened.client, connection.request_timeout_s)


@dataclass(frozen=True, slots=True)
class _Found:
    node_id: ua.NodeId
    path: str


async def _walk(
    client: Client, root: ua.NodeId, prefix: str, max_depth: int, limit: int
) -> list[Proposal]:
    seen: set[ua.NodeId] = {root}
    level: list[_Found] = [_Found(root, prefix)]
    proposals: list[Proposal] = []
    for _depth in range(max_depth):
        if not level:
            break
        children = await _browse(client, [f.node_id for f in level])
        variables: list[_Found] = []
        next_level: list[_Found] = []
        for parent, refs in zip(level, children, strict=True):
            taken: set[str] = set()
            for ref in refs:
                target = ref.NodeId  # an ExpandedNodeId, or a plain NodeId from some servers
                if getattr(target, "ServerIndex", None):
                    continue  # on another server
                node_id = ua.NodeId(target.Identifier, target.NamespaceIndex, target.NodeIdType)
                if node_id in seen:
                    continue  # visited: hierarchies may loop
                seen.add(node_id)
                name = _unique(sanitize_segment(ref.BrowseName.Name or ""), taken)
                path = f"{parent.path}/{name}"
                if len(path) > MAX_PATH_LENGTH:
                    continue
                found = _Found(node_id, path)
                if ref.NodeClass == ua.NodeClass.Variable:
                    variables.append(found)
                next_level.append(found)  # objects, and variables with component variables
        for found, data_type in await _carried_types(client, variables):
            if len(proposals) >= limit:
                _LOGGER.warning(
                    "Browse stopped at %d proposals below %s; browse a deeper node for the rest",
                    limit,
                    root.to_string(),
                )
                return proposals
            proposals.append(Proposal(found.node_id.to_string(), found.path, data_type))
        level = next_level
    return proposals


def _unique(name: str, taken: set[str]) -> str:
    """Siblings whose names sanitize alike get _2, _3, ... in browse order."""
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        suffix = f"_{n}"
        candidate = name[: _SEGMENT_MAX - len(suffix)] + suffix
    taken.add(candidate)
    return candidate


async def _browse(
    client: Client, nodes: Sequence[ua.NodeId]
) -> list[list[ua.ReferenceDescription]]:
    """The forward hierarchical references (without properties) of each node."""
    out: list[list[ua.ReferenceDescription]] = []
    session = client.uaclient.session
    for start in range(0, len(nodes), _BROWSE_CHUNK):
        part = nodes[start : start + _BROWSE_CHUNK]
        params = ua.BrowseParameters(RequestedMaxReferencesPerNode=0)
        for node_id in part:
            params.NodesToBrowse.append(
                ua.BrowseDescription(
                    NodeId=node_id,
                    BrowseDirection=ua.BrowseDirection.Forward,
                    ReferenceTypeId=ua.NodeId.from_string(f"i={ObjectIds.HierarchicalReferences}"),
                    IncludeSubtypes=True,
                    NodeClassMask=ua.NodeClass.Object | ua.NodeClass.Variable,
                    ResultMask=ua.BrowseResultMask.All,
                )
            )
        for result in await session.browse(params):
            refs = list(result.References)
            point = result.ContinuationPoint
            while point:
                (more,) = await session.browse_next(
                    ua.BrowseNextParameters(ContinuationPoints=[point])
                )
                refs.extend(more.References)
                point = more.ContinuationPoint
            out.append([r for r in refs if not _is_property(r)])
    return out


def _is_property(ref: ua.ReferenceDescription) -> bool:
    kind = ref.ReferenceTypeId
    return bool(kind.NamespaceIndex == 0 and kind.Identifier == ObjectIds.HasProperty)


async def _carried_types(client: Client, variables: Sequence[_Found]) -> list[tuple[_Found, str]]:
    """The variables Kiln can carry (a scalar of a type with a Kiln form), with the name of
    their DataType. The value is read too: for an abstract DataType (BaseDataType, Number) it
    is what tells the type."""
    attributes = (AttributeIds.DataType, AttributeIds.ValueRank, AttributeIds.Value)
    out: list[tuple[_Found, str]] = []
    for start in range(0, len(variables), _BROWSE_CHUNK):
        part = variables[start : start + _BROWSE_CHUNK]
        request = ua.ReadParameters()
        for found in part:
            for attribute in attributes:
                request.NodesToRead.append(
                    ua.ReadValueId(NodeId=found.node_id, AttributeId=attribute)
                )
        results = await client.uaclient.read(request)
        for k, found in enumerate(part):
            dtype, rank, value = (results[3 * k + j].Value for j in range(3))
            data_type = dtype.Value if dtype is not None else None
            if not isinstance(data_type, ua.NodeId):
                continue
            # ValueRank >= 0 is an array of that many dimensions (Part 3, 5.6.2).
            if rank is not None and isinstance(rank.Value, int) and rank.Value >= 0:
                continue
            if value is not None and value.is_array:
                continue
            current = value.VariantType if value is not None else None
            if not decodable(value_type(data_type, current)):
                continue
            out.append((found, _type_name(data_type)))
    return out


def _type_name(data_type: ua.NodeId) -> str:
    if data_type.NamespaceIndex == 0 and isinstance(data_type.Identifier, int):
        name = ObjectIdNames.get(data_type.Identifier)
        if name:
            return name
    return data_type.to_string()
