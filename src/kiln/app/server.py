"""The served Kiln: a platform built from settings, and the API that serves it."""

from __future__ import annotations

from fastapi import FastAPI

from kiln.api.app import create_app
from kiln.api.subsystem import Role
from kiln.app.assembly import build_platform
from kiln.app.settings import KilnSettings
from kiln.core.clock import Clock
from kiln.security.passwords import PasswordHasherSettings


def build_app(
    settings: KilnSettings,
    *,
    clock: Clock | None = None,
    password_settings: PasswordHasherSettings | None = None,
    role: Role = Role.ALL,
) -> FastAPI:
    """The app of `settings`, over a platform of the subsystems its model holds; the app's
    lifespan starts and stops the platform. `role` is `all` (everything) or `server` (all but
    the sources, which another process runs: `kiln.app.sources`). `password_settings` is for
    tests (cheap hashing); production keeps argon2id's defaults."""
    if role is Role.SOURCES:
        raise ValueError("the sources role serves no API: run it with kiln.app.sources")
    platform = build_platform(settings, clock=clock, password_settings=password_settings, role=role)
    return create_app(platform, settings, type(settings).subsystems)
