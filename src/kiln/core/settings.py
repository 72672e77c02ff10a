"""The plant file's root, as every layer below the composition root sees it.

`PlantSettings` holds what every process has (name, data folder, log level); the composition
root (`kiln.app.settings`) derives the real model from it, one field per section of every
installed subsystem. Code below the root never names that derived class: it asks for a section
by its model's class, `settings.section(HistorianSettings)`, which is typed, and fails loudly
(naming the installed sections) when no installed subsystem declares it.
"""

from __future__ import annotations

import types
from functools import cache
from pathlib import Path
from typing import Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field

from kiln.core.config import MadeDir

M = TypeVar("M", bound=BaseModel)


class Section(BaseModel):
    """Base of a settings section: an unknown key is refused (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid")


class PlantSettings(Section):
    """Everything a plant is configured with. Relative paths are relative to the config file
    (`kiln.core.config`: every path field's type says so)."""

    name: str = "Kiln"
    data_dir: MadeDir = Field(default=Path("kiln-data"), validate_default=True)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    def section(self, kind: type[M]) -> M:
        """The section whose model is `kind`; LookupError if none is installed or it is unset
        (an optional section left out of the plant file)."""
        key = section_key(type(self), kind)
        value = getattr(self, key)
        if not isinstance(value, kind):
            raise LookupError(f"the settings section {key!r} is not set")
        return value

    def section_or_none(self, kind: type[M]) -> M | None:
        """The section whose model is `kind`, or None when it is unset or not installed."""
        if kind not in _keys(type(self)):
            return None
        value = getattr(self, _keys(type(self))[kind])
        return value if isinstance(value, kind) else None


def section_key(settings: type[PlantSettings], kind: type[BaseModel]) -> str:
    """The top-level key under which `settings` holds a `kind`."""
    keys = _keys(settings)
    if kind not in keys:
        raise LookupError(
            f"no installed subsystem has a {kind.__name__} settings section; "
            f"sections: {', '.join(sorted(keys.values())) or 'none'}"
        )
    return keys[kind]


@cache
def _keys(settings: type[PlantSettings]) -> dict[type[BaseModel], str]:
    """Section model → field name, for the fields typed as one model (or that model or None).
    Built once per settings class: the class is made once per set of subsystems."""
    found: dict[type[BaseModel], str] = {}
    for key, field in settings.model_fields.items():
        model = _model_of(field.annotation)
        if model is not None:
            if model in found:
                raise TypeError(
                    f"settings sections {found[model]!r} and {key!r} both hold a "
                    f"{model.__name__}: give each section a model of its own"
                )
            found[model] = key
    return found


def _model_of(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        models = [a for a in get_args(annotation) if a is not type(None)]
        if len(models) == 1:
            return _model_of(models[0])
    return None
