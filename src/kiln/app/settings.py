"""The plant configuration file (`kiln run --config plant.yaml`): the core sections, and one
per section of every installed subsystem.

The model is made from the installed subsystems (`settings_model`), so a third party's section
is validated, reported (`plant.yaml:12: mine.rate: ...`), listed among the allowed top-level
keys and written into the JSON schema like Kiln's own. Code below this package reads a section
through `settings.section(Model)` (`kiln.core.settings`); this package may also read the core
sections as typed attributes (`settings.http`, `settings.bus`).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, create_model

from kiln.api.settings import HttpSettings
from kiln.api.subsystem import Subsystem
from kiln.app.registry import installed_subsystems
from kiln.cluster.settings import BusSettings
from kiln.core.config import load_config
from kiln.core.settings import PlantSettings


class KilnSettings(PlantSettings):
    """The sections every Kiln process has, whatever is installed. The model of a plant file
    derives from it (`settings_model`), adding the subsystems' sections."""

    http: HttpSettings = HttpSettings()
    bus: BusSettings = Field(
        default_factory=BusSettings,
        description="in one process (the default) or across several through NATS JetStream",
    )

    # The subsystems whose sections this model holds: what the platform, the API and the CLI
    # built from these settings are made of.
    subsystems: ClassVar[tuple[Subsystem, ...]] = ()


def settings_model(subsystems: Iterable[Subsystem]) -> type[KilnSettings]:
    """The plant file's model with the sections of `subsystems` (in their order)."""
    chosen = tuple(subsystems)
    fields: dict[str, Any] = {}
    owner: dict[str, str] = dict.fromkeys(KilnSettings.model_fields, "the core")
    for subsystem in chosen:
        for section in subsystem.sections:
            if section.key in owner:
                raise ValueError(
                    f"subsystem {subsystem.name!r} declares the settings section "
                    f"{section.key!r}, which {owner[section.key]} has: rename one"
                )
            owner[section.key] = f"subsystem {subsystem.name!r}"
            fields[section.key] = (
                section.annotation,
                Field(default_factory=section.default, description=section.description or None),
            )
    model: type[KilnSettings] = create_model(
        "Settings", __base__=KilnSettings, __module__=__name__, **fields
    )
    model.subsystems = chosen
    return model


# One model per set of subsystems: a test that installs a plug-in and then restores the
# installed set gets the very class it had before (pydantic compares models by class too).
_MODELS: dict[tuple[int, ...], type[KilnSettings]] = {}


@cache
def installed_settings() -> type[KilnSettings]:
    """The model of a plant file for the subsystems installed (made once per process)."""
    subsystems = tuple(installed_subsystems())
    key = tuple(map(id, subsystems))  # the model holds them, so no id is reused while cached
    if key not in _MODELS:
        _MODELS[key] = settings_model(subsystems)
    return _MODELS[key]


def __getattr__(name: str) -> type[KilnSettings]:
    # `Settings` is made on first use, not at import: it depends on the installed entry
    # points, and `kiln --version` need not load them (PEP 562 module attribute).
    if name == "Settings":
        return installed_settings()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_settings(
    path: Path, *, check_paths: bool = False, model: type[KilnSettings] | None = None
) -> KilnSettings:
    """The plant file's settings (for the installed subsystems unless `model` says otherwise),
    relative paths anchored at its folder; with `check_paths` every path is checked as
    `kiln config check` does."""
    return load_config(path, model or installed_settings(), check_paths=check_paths)
