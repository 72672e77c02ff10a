"""The OpenAPI document tells the truth: every status a route answers, every bound it checks,
and the `Allow` header of a 405 names every method of the path (issue 12, finding 8).

The statuses are derived from the code (`kiln.api.openapi_doc`); these tests hold the
derivation to what the running app answers, and schemathesis (`test_api_fuzz.py`) holds it to
thousands of generated requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
from api_helpers import make_app_client, make_settings
from fastapi import Depends, FastAPI, HTTPException, Response, status
from fastapi.responses import JSONResponse
from httpx import Response as HttpxResponse

from kiln.api.auth import Require, RequireDevice, Unauthorized
from kiln.api.errors import service_errors
from kiln.api.openapi_doc import (
    BOUNDS,
    ERROR_SCHEMA,
    EXPLICIT,
    THROTTLED,
    answers,
    api_routes,
    statuses,
)
from kiln.api.settings import QueryLimits
from kiln.app.server import build_app
from kiln.security.permissions import Permission
from kiln.security.principal import Principal
from kiln.testing.auth import admin_headers, user_headers

ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}


def operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = document["paths"][path][method.lower()]
    return found


def undeclared(
    document: dict[str, Any], method: str, path: str, response: HttpxResponse
) -> str | None:
    """Why `response` is not as the document says for `method path`, or None if it is."""
    declared = operation(document, method, path)["responses"].get(str(response.status_code))
    if declared is None:
        return f"{method} {path} answered {response.status_code}, which is not declared"
    schema = declared.get("content", {}).get("application/json", {}).get("schema", {})
    options = schema.get("anyOf", [schema])
    if ERROR_REF in options and "detail" not in response.json():
        return f"{method} {path} declares an error body for {response.status_code}: {response.text}"
    return None


def test_the_refusals_found_by_the_probe_are_declared(tmp_path: Path) -> None:
    # The finding: 400, 401, 403, 404, 409 and 429 were answered but not declared.
    with make_app_client(make_settings(tmp_path / "data")) as client:
        admin = admin_headers(client, tmp_path / "data")
        viewer = user_headers(client, admin, "vic", "a-long-passphrase-1", ["viewer"])
        document = client.app.openapi()  # type: ignore[attr-defined]
        seen: list[tuple[str, str, HttpxResponse]] = [
            ("GET", "/api/v1/values/latest",
             client.get("/api/v1/values/latest", params={"limit": 10_001}, headers=admin)),
            ("GET", "/api/v1/history/raw",
             client.get("/api/v1/history/raw", headers=admin,
                        params={"tag": "acme/x", "start": "-1h", "end": "now", "limit": 501})),
            ("GET", "/api/v1/tags", client.get("/api/v1/tags")),
            ("GET", "/api/v1/audit", client.get("/api/v1/audit", headers=viewer)),
            ("DELETE", "/api/v1/devices/{name}",
             client.delete("/api/v1/devices/nobody", headers=admin)),
            ("POST", "/api/v1/users",
             client.post("/api/v1/users", headers=admin,
                         json={"username": "vic", "password": "another-passphrase-2"})),
            ("POST", "/api/v1/ingest", client.post("/api/v1/ingest", json={"values": []})),
        ]  # fmt: skip
        for _ in range(40):  # failed sign-ins until the throttle answers
            login = client.post("/api/v1/auth/login", json={"username": "x", "password": "bad"})
            seen.append(("POST", "/api/v1/auth/login", login))
            if login.status_code == 429:
                break
    answered = {r.status_code for _, _, r in seen}
    assert {400, 401, 403, 404, 409, 429} <= answered, answered
    problems = [undeclared(document, m, p, r) for m, p, r in seen]
    assert [p for p in problems if p] == []


def test_guards_and_bodies_declare_their_refusals() -> None:
    app = build_app(make_settings(Path("unused")))
    document = app.openapi()
    checked = 0
    for route in api_routes(app):
        if not route.include_in_schema:
            continue
        guards = [d.call for d in route.dependant.dependencies]
        for method in route.methods:
            declared = set(operation(document, method, route.path_format)["responses"])
            where = f"{method} {route.path_format}"
            if any(isinstance(g, Require) for g in guards):
                assert {"401", "403"} <= declared, where
                checked += 1
            if any(isinstance(g, RequireDevice) for g in guards):
                assert "401" in declared, where
            if route.body_field is not None:
                assert {"400", "413", "422"} <= declared, where
    assert checked > 20  # the walk found the guards


def test_every_added_response_is_described_with_its_body() -> None:
    document = build_app(make_settings(Path("unused"))).openapi()
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            for code, response in op["responses"].items():
                assert response.get("description"), f"{method} {path} {code}"
                if code.startswith(("4", "5")) and "content" in response:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema, f"{method} {path} {code}"


def test_bounds_checked_against_the_settings_are_in_the_schema(tmp_path: Path) -> None:
    limits = QueryLimits(latest_max=50, list_max=20, raw_max=30)
    settings = make_settings(tmp_path / "data", limits=limits)
    document = build_app(settings).openapi()

    def parameter(path: str, name: str) -> dict[str, Any]:
        params = operation(document, "GET", path)["parameters"]
        schema: dict[str, Any] = next(p for p in params if p["name"] == name)["schema"]
        return next((s for s in schema.get("anyOf", []) if s.get("type") == "array"), schema)

    assert parameter("/api/v1/values/latest", "limit")["maximum"] == 50
    assert parameter("/api/v1/values/latest", "tag")["maxItems"] == 50
    assert parameter("/api/v1/tags", "limit")["maximum"] == 20
    assert parameter("/api/v1/history/raw", "limit")["maximum"] == 30
    assert parameter("/api/v1/history/summary", "tag")["maxItems"] == 100

    with make_app_client(settings) as client:
        admin = admin_headers(client, tmp_path / "data")
        over = client.get("/api/v1/values/latest", params={"limit": 51}, headers=admin)
        at = client.get("/api/v1/values/latest", params={"limit": 50}, headers=admin)
    assert (over.status_code, at.status_code) == (400, 200), over.text


def test_the_hand_written_tables_name_operations_that_exist() -> None:
    # A renamed route would leave its entry behind, silently no longer declaring anything.
    document = build_app(make_settings(Path("unused"))).openapi()
    listed = [*THROTTLED, *EXPLICIT, *((b.method, b.path) for b in BOUNDS)]
    missing = [(m, p) for m, p in listed if m.lower() not in document["paths"].get(p, {})]
    assert missing == []


def test_required_form_fields_need_a_value() -> None:
    # FastAPI reads an empty form field as a missing one: the schema must not allow "".
    document = build_app(make_settings(Path("unused"))).openapi()
    body = operation(document, "POST", "/api/v1/auth/token")["requestBody"]
    ref = body["content"]["application/x-www-form-urlencoded"]["schema"]["$ref"]
    form = document["components"]["schemas"][ref.rpartition("/")[2]]
    assert form["properties"]["grant_type"]["minLength"] == 1


def test_a_405_allows_every_method_of_the_path(tmp_path: Path) -> None:
    # Starlette's 405 names the methods of the first route matching the path only: a path
    # with GET and POST in separate routes answered "Allow: GET".
    with make_app_client(make_settings(tmp_path / "data")) as client:
        document = client.app.openapi()  # type: ignore[attr-defined]
        checked = 0
        for path, operations in document["paths"].items():
            url = path.replace("{", "").replace("}", "")  # any value fills a parameter
            answer = client.request("PATCH", url)
            assert answer.status_code == 405, (path, answer.status_code)
            allowed = {m.strip() for m in answer.headers["allow"].split(",")}
            assert allowed == {m.upper() for m in operations}, path
            checked += 1
        assert checked == len(document["paths"])
        options = client.options("/api/v1/users")
    assert options.status_code == 405
    assert {m.strip() for m in options.headers["allow"].split(",")} == {"GET", "POST"}


# The derivation itself, on routes written for it.

probe = FastAPI()


@probe.get("/teapot")
async def teapot(response: Response) -> dict[str, str]:
    try:
        raise Unauthorized("optional sign-in")  # caught below: never answered
    except (Unauthorized, HTTPException):
        pass
    if response.headers.get("x-fail"):
        raise HTTPException(status.HTTP_418_IM_A_TEAPOT, "short and stout")
    response.status_code = 207 if response.headers.get("x-partial") else 200
    return {}


@probe.post("/records/{name}")
async def records(name: str) -> Response:
    with service_errors():
        pass
    if name == "gone":
        return JSONResponse({"detail": "gone"}, status_code=410)
    if name == "odd":
        return JSONResponse({"something": "else"}, status_code=451)
    return Response(status_code=204)


@pytest.mark.parametrize(
    ("path", "method", "expected"),
    [
        ("/teapot", "GET", {207, 418}),
        ("/records/{name}", "POST", {400, 401, 403, 404, 409, 410, 451}),
    ],
)
def test_statuses_are_read_from_the_code(path: str, method: str, expected: set[int]) -> None:
    route = next(r for r in api_routes(probe) if r.path_format == path)
    assert statuses(route, method) == expected


def test_an_answer_keeps_its_body_kind() -> None:
    route = next(r for r in api_routes(probe) if r.path_format == "/records/{name}")
    bodies = {a.status: a.body.value for a in answers(route, "POST")}
    assert (bodies[410], bodies[451], bodies[409]) == ("error", "other", "error")


def test_guard_statuses_come_from_the_guard_code() -> None:
    guarded = FastAPI()

    @guarded.get("/guarded")
    async def read(who: Annotated[Principal, Depends(Require(Permission.VALUES_READ))]) -> None:
        return None

    route = next(iter(api_routes(guarded)))
    assert statuses(route, "GET") == {401, 403}
