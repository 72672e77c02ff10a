"""docs/api.md lists every route of the app, and only routes the app has.

The page's format is described at its end ("Keeping this page true"): routes are code spans
such as `GET /tags`, `GET/POST /users`, or a bare `/auth/refresh` after one in a table cell.
"""

from __future__ import annotations

import re
from pathlib import Path

from api_helpers import make_settings
from starlette.routing import Match

from kiln.app.server import build_app

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
METHODS = r"(?:GET|POST|PUT|PATCH|DELETE|WS)"
ROUTE = re.compile(rf"^({METHODS}(?:/{METHODS})*) (/[^\s?`]*)")
BARE = re.compile(r"^(/[^\s?`]*)")


# Documented routes that the OpenAPI document does not show: a WebSocket, and /metrics (text for
# Prometheus, kept out of the schema).
OUTSIDE_OPENAPI = {"WS /api/v1/live", "GET /metrics"}
PARAMETER = re.compile(r"\{[^}]*\}")


def _key(method: str, path: str) -> str:
    return f"{method} {PARAMETER.sub('{}', path)}"


def documented_routes(text: str) -> set[str]:
    routes: set[str] = set()
    for line in text.splitlines():
        root = "at the root" in line or "no prefix" in line
        cells = line.split("|") if line.startswith("|") else [line]
        for cell in cells:
            methods: list[str] = []
            end = 0  # where the route before ends
            for span in re.finditer(r"`([^`]+)`", cell):
                found = ROUTE.match(span.group(1))
                bare = BARE.match(span.group(1))
                listed = cell[end : span.start()] == ", "
                if found:
                    methods, path = found.group(1).split("/"), found.group(2)
                elif methods and listed and line.startswith("|") and bare:
                    path = bare.group(1)
                else:
                    methods = []
                    continue
                end = span.end()
                full = path if path.startswith("/api/") or root else "/api/v1" + path
                routes.update(_key(m, full) for m in methods)
    return routes


def test_the_format_is_read_as_the_page_describes_it() -> None:
    text = (
        "Sign in with `POST /auth/token`; `not a route`, `/alone`.\n"
        "| `GET/POST /users`, `PUT /users/{u}/disabled`, `/users/{u}/x` | users:manage |\n"
        "| `POST /write?db=` and `POST /api/v2/write` (at the root, not `/api/v1`) | |\n"
    )
    assert documented_routes(text) == {
        "POST /api/v1/auth/token",
        "GET /api/v1/users",
        "POST /api/v1/users",
        "PUT /api/v1/users/{}/disabled",
        "PUT /api/v1/users/{}/x",
        "POST /write",
        "POST /api/v2/write",
    }


def test_docs_api_md_and_the_openapi_document_list_the_same_routes(tmp_path: Path) -> None:
    app = build_app(make_settings(tmp_path))
    in_openapi = {
        _key(method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    documented = documented_routes(DOC.read_text())
    undocumented = sorted(in_openapi - documented)
    assert not undocumented, f"routes missing from docs/api.md: {undocumented}"
    unknown = sorted(documented - in_openapi - OUTSIDE_OPENAPI)
    assert not unknown, f"docs/api.md lists routes the app does not have: {unknown}"
    for route in sorted(OUTSIDE_OPENAPI):  # these the app must have, though OpenAPI omits them
        method, path = route.split(" ")
        kind = "websocket" if method == "WS" else "http"
        scope = {"type": kind, "path": path, "method": method, "root_path": ""}
        assert any(r.matches(scope)[0] is Match.FULL for r in app.routes), route
