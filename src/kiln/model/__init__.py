"""The asset model: ISA-95 equipment hierarchy, asset types as templates, and tags.

This package module is the model's surface for the other domain packages (the layer rule in
pyproject's import-linter contracts): the definitions, the views it hands out and the
`TagCatalog` and `TagRegistry` they use it through. It stays light: no database is loaded by importing it.
"""

from kiln.model.catalog import TagCatalog, TagRegistry, tag_catalog, tag_registry
from kiln.model.definitions import AssetDef, AssetTypeDef, DataType, Level, TagDef, resolve_tags
from kiln.model.info import DescribedTag, DescribeResult, EnsureResult, TagInfo

__all__ = [
    "AssetDef",
    "AssetTypeDef",
    "DataType",
    "DescribeResult",
    "DescribedTag",
    "EnsureResult",
    "Level",
    "TagCatalog",
    "TagDef",
    "TagInfo",
    "TagRegistry",
    "resolve_tags",
    "tag_catalog",
    "tag_registry",
]
