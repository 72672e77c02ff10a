"""The codec's values as asyncua objects: the one step of the OPC UA mapping that needs the
client library, kept apart so that `codec` and `config` load without it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from asyncua import ua

from kiln.connectors.opcua.codec import BuiltinType, NodeRef, encode
from kiln.core.values import Scalar

_NODE_ID_TYPES = {
    "i": ua.NodeIdType.Numeric,
    "s": ua.NodeIdType.String,
    "g": ua.NodeIdType.Guid,
    "b": ua.NodeIdType.ByteString,
}


def to_variant(value: Scalar, vtype: int) -> ua.Variant:
    """A Variant of built-in type `vtype` holding `value` (checked by `codec.encode`, whose
    ValueError says what fits)."""
    held = encode(value, vtype)
    variant_type = ua.VariantType(int(vtype))
    if vtype == BuiltinType.LocalizedText:
        return ua.Variant(ua.LocalizedText(cast(str, held)), variant_type)
    return ua.Variant(held, variant_type)


def node_id(ref: NodeRef, namespaces: Sequence[str] = ()) -> ua.NodeId:
    """The NodeId of `ref`, its namespace URI (if any) looked up in the server's
    NamespaceArray; LookupError when the server has no such namespace."""
    # asyncua annotates identifiers with its wire types (Int32, String, ...), plain int and
    # str subclasses it accepts as they are.
    identifier = cast("ua.Int32 | ua.String | ua.Guid | ua.ByteString", ref.identifier)
    namespace = cast("ua.Int16", ref.namespace_index(namespaces))
    return ua.NodeId(identifier, namespace, _NODE_ID_TYPES[ref.kind])
