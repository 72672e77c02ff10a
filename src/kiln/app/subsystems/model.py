"""The asset model: ISA-95 hierarchy, asset types and tags, and the namespace's locked subtrees.

Its declarations are contributions: the plant file's types and assets, and whatever other
subsystems add (the virtual factory's machines), all applied once the model is up. Wherever
another process may run connectors (the `server` role, or any role on a broker bus: `--role all`
with `bus.url` beside a `--role sources` process) it also applies the tag descriptions their
connectors publish as events (`kiln.model.tag_events`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kiln.api.subsystem import BuildContext, Mount, Role, SettingsSection, Subsystem
from kiln.core.bus import InProcessBus
from kiln.core.platform import Health, Platform, Service, Stage, Status
from kiln.core.settings import PlantSettings
from kiln.model.definitions import AssetDef, AssetTypeDef
from kiln.model.settings import ModelSettings, NamespaceSettings

# The model's service (its store) and the router are imported where they are used: every
# `kiln` command reads this declaration (its settings sections) and needs neither.


@dataclass(slots=True)
class Declarations:
    """Applies the configured (and contributed) asset types and assets once the model is up."""

    types: list[AssetTypeDef]
    assets: list[AssetDef]
    name: str = "declarations"
    applied: bool = False

    async def start(self, platform: Platform) -> None:
        from kiln.model.service import AssetModel

        await platform.service(AssetModel).apply(self.types, self.assets)
        self.applied = True

    async def stop(self) -> None:
        return None

    def health(self) -> Health:
        return Health(
            Status.OK if self.applied else Status.STARTING,
            {"types": len(self.types), "assets": len(self.assets)},
        )


def _contribute(ctx: BuildContext) -> None:
    model = ctx.settings.section(ModelSettings)
    ctx.asset_types += model.types
    ctx.assets += model.assets


def _services(ctx: BuildContext) -> Iterable[tuple[Service, Stage]]:
    from kiln.model.service import AssetModel
    from kiln.model.tag_events import DescribedTagsApplier

    settings = ctx.settings
    url = settings.section(ModelSettings).url_in(settings.data_dir)
    locked = settings.section(NamespaceSettings).locked
    services: list[tuple[Service, Stage]] = [
        (AssetModel(url, locked_prefixes=locked), Stage.STORAGE),
        (Declarations(list(ctx.asset_types), list(ctx.assets)), Stage.ENGINES),
    ]
    if ctx.role is Role.SERVER or not isinstance(ctx.bus, InProcessBus):
        # Connectors of another process (a sources process) describe their tags as events.
        # (A role without the model drops this service with the model's stages.)
        services.append((DescribedTagsApplier(), Stage.ENGINES))
    return services


def _summary(settings: PlantSettings) -> str:
    model = settings.section(ModelSettings)
    return f"{len(model.types)} asset types, {len(model.assets)} assets"


SUBSYSTEM = Subsystem(
    name="model",
    sections=(
        SettingsSection("model", ModelSettings, ModelSettings),
        SettingsSection("namespace", NamespaceSettings, NamespaceSettings),
    ),
    contribute=_contribute,
    services=_services,
    routers=(Mount("kiln.api.routers.assets"),),
    summary=_summary,
)
