"""Building a Platform from Settings: which services run, at which stage."""

from __future__ import annotations

from dataclasses import dataclass

from kiln.connectors.http.ingest import HttpIngest
from kiln.core.clock import Clock, SystemClock
from kiln.core.platform import Health, Platform, Stage, Status
from kiln.historian import Historian
from kiln.model.definitions import AssetDef, AssetTypeDef
from kiln.model.service import AssetModel
from kiln.settings import Settings
from kiln.sim import SimSource, VirtualFactory


@dataclass(slots=True)
class Declarations:
    """Applies the configured (and simulated) asset types and assets once the model is up."""

    types: list[AssetTypeDef]
    assets: list[AssetDef]
    name: str = "declarations"
    applied: bool = False

    async def start(self, platform: Platform) -> None:
        await platform.service(AssetModel).apply(self.types, self.assets)
        self.applied = True

    async def stop(self) -> None:
        return None

    def health(self) -> Health:
        return Health(
            Status.OK if self.applied else Status.STARTING,
            {"types": len(self.types), "assets": len(self.assets)},
        )


def build_platform(settings: Settings, *, clock: Clock | None = None) -> Platform:
    platform = Platform(clock=clock or SystemClock(), data_dir=settings.data_dir)
    platform.add(
        AssetModel(settings.model_url, locked_prefixes=settings.namespace.locked), Stage.STORAGE
    )
    platform.add(
        Historian(
            settings.historian_path,
            max_batch_points=settings.historian.max_batch_points,
            queue_points=settings.historian.queue_points,
        ),
        Stage.STORAGE,
    )
    types = list(settings.model.types)
    assets = list(settings.model.assets)
    if settings.sim is not None:
        # The factory's structure does not depend on its start time; 0 is as good as any here.
        factory = VirtualFactory(settings.sim, 0)
        types += factory.asset_types()
        assets += factory.assets()
    platform.add(Declarations(types, assets), Stage.ENGINES)
    platform.add(HttpIngest(ack_timeout_s=settings.ingest.ack_timeout_s), Stage.ENGINES)
    if settings.sim is not None:
        platform.add(SimSource(settings.sim), Stage.SOURCES)
    return platform
