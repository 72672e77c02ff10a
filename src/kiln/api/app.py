"""The FastAPI application factory. Its lifespan owns the Platform: start, serve, stop."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from swagger_ui_bundle import swagger_ui_path

from kiln import __version__
from kiln.api.auth import Require, Unauthorized, reads_installation
from kiln.api.errors import json_safe
from kiln.api.headers import SecurityHeaders
from kiln.api.metrics import PlatformCollector, render
from kiln.api.openapi_doc import install as install_openapi
from kiln.api.routers import health, web
from kiln.api.settings import HttpSettings
from kiln.api.subsystem import API_PREFIX, Subsystem
from kiln.core.errors import InvalidPathError, QueryTooLargeError
from kiln.core.platform import Platform
from kiln.core.settings import PlantSettings
from kiln.security.permissions import Permission
from kiln.security.principal import Principal

_LOGGER = logging.getLogger(__name__)


class BodyLimit:
    """Refuse request bodies over the limit (413), before or while reading them, to bound memory.

    A body without a Content-Length (chunked) is counted as it arrives. Over the limit, the 413
    is sent from here and the app is told the client went away: raising into the app instead
    would let FastAPI rewrite it into 400 "There was an error parsing the body".
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        per_path: dict[str, int] | None = None,
        setting: str = "http.max_body_bytes",
        per_path_setting: dict[str, str] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.per_path = per_path or {}
        self.setting = setting  # named in the 413, so the operator knows what to raise
        self.per_path_setting = per_path_setting or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope.get("path", "")
            limit = self.per_path.get(path, self.max_bytes)
            setting = self.per_path_setting.get(path, self.setting)
            await self._limited(scope, receive, send, limit, setting)
            return
        await self.app(scope, receive, send)

    async def _limited(
        self, scope: Scope, receive: Receive, send: Send, max_bytes: int, setting: str
    ) -> None:
        too_large = JSONResponse(
            {"detail": f"request body over {max_bytes} bytes ({setting}): send smaller batches"},
            status_code=413,
        )
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            await too_large(scope, receive, send)
            return
        received = 0
        started = tripped = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if tripped:
                return  # the 413 is the answer; whatever the app says after it is dropped
            started = True
            await send(message)

        async def limited() -> Message:
            nonlocal received, tripped
            if tripped:
                return {"type": "http.disconnect"}
            message = await receive()
            body = message.get("body", b"")
            received += len(body) if isinstance(body, bytes) else 0
            if received > max_bytes:
                if not started:
                    await too_large(scope, receive, send)
                tripped = True
                return {"type": "http.disconnect"}
            return message

        try:
            await self.app(scope, limited, guarded_send)
        except Exception:
            if not tripped:
                raise
            # The app failed on the cut-off body (ClientDisconnect): it has been answered.


def create_app(
    platform: Platform, settings: PlantSettings, subsystems: Sequence[Subsystem]
) -> FastAPI:
    """The API of a built `platform`: the core routes (health, metrics, web UI) and those of
    `subsystems`. The app's lifespan starts the platform, serves, and stops it.

    `kiln.app.server.build_app` builds the platform and the app from settings together.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with platform:
            # What is loaded by now lives as long as the process: keep it out of the garbage
            # collector's full passes, which hold the GIL (and so stall the event loop) for a
            # time that grows with every object tracked (0.4 s at 200k objects, measured).
            gc.freeze()
            # Bodies are parsed in worker threads: the loop waits for the GIL at most this
            # long each time it needs it (5 ms by default; 1 ms halved health's median
            # latency during a large ingest, measured).
            sys.setswitchinterval(0.001)
            registry = CollectorRegistry(auto_describe=False)
            registry.register(PlatformCollector(platform))
            for subsystem in subsystems:
                for collector in subsystem.collectors(platform):
                    registry.register(collector)
            app.state.metrics = registry
            for subsystem in subsystems:
                subsystem.started(platform)
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
    app.state.platform = platform
    app.state.live_connections = 0

    app.include_router(health.router, prefix=API_PREFIX)
    for subsystem in subsystems:
        for mount in subsystem.routers:
            # Imported here when declared lazily (`Mount("module")`): only a served API needs it.
            app.include_router(mount.resolve(), prefix=mount.prefix)
        for error, handler in subsystem.error_handlers.items():
            app.add_exception_handler(error, handler)
    app.include_router(web.router)
    app.mount("/static", StaticFiles(directory=web.STATIC_DIR), name="static")
    app.mount("/docs-assets", StaticFiles(directory=Path(str(swagger_ui_path))), name="docs-assets")

    @app.get("/metrics", include_in_schema=False)
    def metrics(
        request: Request,
        who: Annotated[Principal, Depends(Require(Permission.SYSTEM_READ))],
    ) -> Response:
        # Every tenant's tags, connectors and clients are counted here: the installation's own
        # readers only (a tenant's system:read is not enough).
        if not reads_installation(who):
            return JSONResponse(
                {
                    "detail": "metrics count every tenant: it takes system:read over the whole "
                    "default tenant to read them"
                },
                status_code=403,
            )
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

    @app.exception_handler(QueryTooLargeError)
    async def _too_large(request: Request, err: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, err: Exception) -> JSONResponse:
        # FastAPI's own handler echoes each bad input, and a NaN or Infinity the client sent
        # (Python's JSON reader accepts them) cannot be written back as JSON: it became a 500.
        assert isinstance(err, RequestValidationError)
        return JSONResponse({"detail": json_safe(jsonable_encoder(err.errors()))}, 422)

    @app.exception_handler(405)
    async def _method_not_allowed(request: Request, err: Exception) -> JSONResponse:
        # Starlette's Allow names the methods of the first route that matched the path only;
        # a path served by several routes (GET and POST apart) takes the methods of them all.
        assert isinstance(err, StarletteHTTPException)
        path = request.scope["path"].removeprefix(request.scope.get("root_path", ""))
        allowed = sorted(
            {
                method
                for route in iter_route_contexts(app.routes)
                if route.methods and route.path_regex.match(path)
                for method in route.methods
            }
        )
        return JSONResponse(
            {"detail": f"{request.method} is not allowed here; use {', '.join(allowed)}"},
            status_code=405,
            headers={"Allow": ", ".join(allowed)},
        )

    install_openapi(app, settings)
    limits = [limit for s in subsystems for limit in s.body_limits(settings)]
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.section(HttpSettings).max_body_bytes,
        per_path={limit.path: limit.max_bytes for limit in limits},
        per_path_setting={limit.path: limit.setting for limit in limits},
    )
    app.add_middleware(SecurityHeaders)
    return app
