"""Building a Platform from settings: every installed subsystem's services, at their stages.

Two rounds (`kiln.api.subsystem`): every subsystem contributes (asset types, connector
configurations) before any builds its services, so what one hands another never depends on
which was built first. Within a stage, services start in the subsystems' order. A split
process (`Role`) keeps the services of the stages its role runs.
"""

from __future__ import annotations

from kiln.api.subsystem import BuildContext, Role
from kiln.app.settings import KilnSettings
from kiln.cluster.settings import make_bus
from kiln.core.clock import Clock, SystemClock
from kiln.core.platform import Platform
from kiln.security.passwords import PasswordHasherSettings


def build_platform(
    settings: KilnSettings,
    *,
    clock: Clock | None = None,
    password_settings: PasswordHasherSettings | None = None,
    role: Role = Role.ALL,
) -> Platform:
    """The platform of `settings`, made of the subsystems its model holds
    (`type(settings).subsystems`), with the services `role` runs. `password_settings` lets
    tests use cheap hashing; production keeps argon2id's defaults."""
    clock = clock or SystemClock()
    bus = make_bus(settings.bus, clock)
    platform = Platform(clock=clock, data_dir=settings.data_dir, bus=bus)
    ctx = BuildContext(settings, clock, bus, password_settings=password_settings, role=role)
    subsystems = type(settings).subsystems
    for subsystem in subsystems:
        subsystem.contribute(ctx)
    for subsystem in subsystems:
        for service, stage in subsystem.services(ctx):
            if role.runs(stage):
                platform.add(service, stage)
    return platform
