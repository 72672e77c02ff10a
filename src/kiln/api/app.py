"""The FastAPI application factory. Its lifespan owns the Platform: start, serve, stop."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Receive, Scope, Send
from swagger_ui_bundle import swagger_ui_path

from kiln import __version__
from kiln.api.auth import Require, Unauthorized
from kiln.api.headers import SecurityHeaders
from kiln.api.metrics import PlatformCollector, render
from kiln.api.routers import (
    assets,
    audit,
    auth,
    connectors,
    credentials,
    health,
    history,
    history_analysis,
    influx,
    ingest,
    live,
    tenants,
    users,
    values,
    web,
    write,
)
from kiln.assembly import build_platform
from kiln.core.clock import Clock
from kiln.core.errors import InvalidPathError, QueryTooLargeError
from kiln.historian.store import StoreClosedError
from kiln.security.passwords import PasswordHasherSettings
from kiln.security.permissions import Permission
from kiln.security.service import Identity
from kiln.settings import Settings

_LOGGER = logging.getLogger(__name__)


class BodyLimit:
    """Refuse request bodies over the limit before reading them (413), to bound memory."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, per_path: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.per_path = per_path or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            limit = self.per_path.get(scope.get("path", ""), self.max_bytes)
            await self._limited(scope, receive, send, limit)
            return
        await self.app(scope, receive, send)

    async def _limited(self, scope: Scope, receive: Receive, send: Send, max_bytes: int) -> None:
        too_large = JSONResponse(
            {"detail": f"request body over {max_bytes} bytes: send smaller batches"},
            status_code=413,
        )
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            await too_large(scope, receive, send)
            return
        received = 0

        async def limited() -> dict[str, object]:
            nonlocal received
            message = dict(await receive())
            body = message.get("body", b"")
            received += len(body) if isinstance(body, bytes) else 0
            if received > max_bytes:
                raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await too_large(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    password_settings: PasswordHasherSettings | None = None,
) -> FastAPI:
    """A Kiln app for `settings`; the platform is built and started by the app's lifespan.

    `password_settings` is for tests (cheap hashing); production keeps argon2id's defaults.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        platform = build_platform(settings, clock=clock, password_settings=password_settings)
        async with platform:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(PlatformCollector(platform))
            app.state.platform = platform
            app.state.metrics = registry
            first = platform.service(Identity).bootstrap_result
            if first is not None:
                # Printed once to the console, on purpose not logged: logs are kept and shipped.
                print(
                    f"\nFirst start: sign in as {first.username!r} with password "
                    f"{first.password}\n(also in {first.path}, mode 0600; change it, then "
                    "delete the file)\n",
                    flush=True,
                )
            _LOGGER.info(
                "Kiln %s running with %d services (data in %s)",
                __version__,
                len(platform.services),
                settings.data_dir,
            )
            yield
        _LOGGER.info("Kiln stopped")

    app = FastAPI(
        title="Kiln",
        version=__version__,
        summary="Open industrial internet platform",
        lifespan=lifespan,
        docs_url=None,  # served by web.docs from local assets instead of a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.live_connections = 0

    api = "/api/v1"
    for module in (health, auth, assets, values, history, ingest, live, users, credentials):
        app.include_router(module.router, prefix=api)
    for module in (history_analysis, tenants, audit, write, connectors):
        app.include_router(module.router, prefix=api)
    app.include_router(influx.router)  # at the root, where Influx clients write
    app.include_router(web.router)
    app.mount("/static", StaticFiles(directory=web.STATIC_DIR), name="static")
    app.mount("/docs-assets", StaticFiles(directory=Path(str(swagger_ui_path))), name="docs-assets")

    @app.get(
        "/metrics", include_in_schema=False, dependencies=[Depends(Require(Permission.SYSTEM_READ))]
    )
    def metrics(request: Request) -> Response:
        return Response(
            render(request.app.state.metrics),
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )

    @app.exception_handler(Unauthorized)
    async def _unauthorized(request: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, Unauthorized)
        headers = {"WWW-Authenticate": 'Bearer realm="kiln"'}
        if err.retry_after_s is not None:
            headers["Retry-After"] = str(max(1, round(err.retry_after_s)))
        status = 429 if err.reason == "rate_limited" else 401
        return JSONResponse(
            {"detail": err.detail, "reason": err.reason}, status_code=status, headers=headers
        )

    @app.exception_handler(InvalidPathError)
    async def _bad_path(request: Request, err: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=400)

    @app.exception_handler(StoreClosedError)
    async def _stopped(request: Request, err: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"{err}; try again shortly"}, status_code=503)

    @app.exception_handler(QueryTooLargeError)
    async def _too_large(request: Request, err: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=400)

    app.add_middleware(
        BodyLimit,
        max_bytes=settings.http.max_body_bytes,
        per_path={f"{api}/ingest/bulk": settings.ingest.bulk_max_bytes},
    )
    app.add_middleware(SecurityHeaders)
    return app
