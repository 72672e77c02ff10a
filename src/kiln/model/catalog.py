"""The asset model as the other engines use it, as Protocols: what they need, not the service.

Connectors describe their tags to a `TagCatalog`: the model itself where it runs in the same
process, or `kiln.model.tag_events.BusTagCatalog` (descriptions as bus events) where it runs in
another. The HTTP ingest looks tags up and creates them through a `TagRegistry`, which is
always the model of its own process. `kiln.model` exports both with the definitions; importing
them loads no database (the model service, SQLAlchemy, is imported only to find it running).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from kiln.core.platform import Platform
from kiln.core.values import Scalar
from kiln.model.info import DescribedTag, EnsureResult, TagInfo

if TYPE_CHECKING:
    from kiln.model.service import AssetModel


class TagCatalog(Protocol):
    """Where connectors describe their tags."""

    async def describe_tags(self, source: str, described: Sequence[DescribedTag]) -> object:
        """Make the described tags tags of the model, served by `source`."""
        ...

    def tags_of(self, source: str) -> Sequence[TagInfo]:
        """The tags `source` served, in this run or an earlier one (empty where unknown)."""
        ...


class TagRegistry(Protocol):
    """Looking tags up and creating them as values arrive."""

    def tag(self, path: str) -> TagInfo | None:
        """The tag at `path`, or None."""
        ...

    async def ensure_tags(self, samples: Mapping[str, Scalar]) -> EnsureResult:
        """Create the unknown tags of `samples` (typed from the sample values) where allowed."""
        ...


def tag_catalog(platform: Platform, *, over_bus: bool = False) -> TagCatalog | None:
    """Where this process's connectors describe their tags: over the bus when the model runs in
    another process (`over_bus`), else the model running here, or None without one."""
    if over_bus:
        from kiln.model.tag_events import BusTagCatalog

        return BusTagCatalog(platform.bus, platform.clock)
    return _running_model(platform)


def tag_registry(platform: Platform) -> TagRegistry | None:
    """The asset model running in this process, or None."""
    return _running_model(platform)


def _running_model(platform: Platform) -> AssetModel | None:
    # Imported here: the model service loads SQLAlchemy, and this module must stay light.
    from kiln.model.service import AssetModel

    return platform.service(AssetModel) if platform.has(AssetModel) else None
