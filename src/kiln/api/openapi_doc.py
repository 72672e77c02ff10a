"""The OpenAPI document, made to tell the truth: every status a route answers, every bound.

FastAPI documents the success status, the statuses a route declares and 422 for a request
that does not match the schema. A Kiln route answers more than that: its guard refuses with
401 or 403, its handler raises `HTTPException(404)` or runs inside `service_errors()`, the body
limit answers 413, the app's exception handlers turn a closed store into 503. Clients (and
schemathesis' `status_code_conformance`) read the document, so it must list them all.

The statuses are derived from the code rather than listed by hand, so that a new route or a
new `raise` cannot be forgotten: the route's endpoint, its dependencies (the whole dependant
tree: the guard, `Depends()` classes) and the module functions they call are read with `ast`
for the statuses they construct (`HTTPException(404, ...)`, `Unauthorized(...)`,
`status_code=...`). What cannot be read from the code (which routes a login throttle covers,
which reach the store) is in the explicit tables below. Bounds the routes check against the
settings at run time (`limit` over `limits.latest_max` is a 400) are written into the schema
from the settings the app is built with.
"""

from __future__ import annotations

import ast
import enum
import functools
import inspect
import re
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_flat_params
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException

from kiln.api.auth import Unauthorized
from kiln.api.deps import service
from kiln.api.routers.history_analysis import MAX_TAGS
from kiln.api.settings import QueryLimits
from kiln.connectors.http.ingest import HttpIngest
from kiln.core.settings import PlantSettings
from kiln.historian.service import Historian
from kiln.model.service import AssetModel

ERROR_SCHEMA = "Error"
_REF = f"#/components/schemas/{ERROR_SCHEMA}"
_HTTP_STATUS = re.compile(r"HTTP_(\d{3})_")

# What each added status means, for the document's readers.
DESCRIPTIONS = {
    400: "the request is understood but refused: the detail says what is wrong and how to fix it",
    401: "not signed in, or the credential is unknown, expired or revoked (`reason` says which)",
    403: "signed in, but not allowed: a missing permission, a device credential where a user's "
    "is needed, or a cookie session without its X-CSRF-Token header",
    404: "no such record, or none the caller may see (out of scope answers the same)",
    409: "the request conflicts with the current state, e.g. the name is taken",
    413: "the request body is over the limit: send smaller batches",
    415: "the body's Content-Type is not one this route reads",
    422: "the request does not match the schema",
    429: "too many failed attempts: wait for the Retry-After header's seconds",
    502: "the device did not take the write",
    503: "not available right now (the store is stopping or the write is not durable): retry",
}

MODEL_DESCRIPTION = "the operation's own answer with this status: its description says when"

# Routes behind a login throttle (`security.sessions`: failures per account and address); the
# throttle's refusal reaches them as an `AuthError` whose reason is only known at run time.
THROTTLED = frozenset(
    {
        ("POST", "/api/v1/auth/token"),
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/totp/confirm"),
    }
)

# Statuses the code answers with that the scan cannot see (a status carried by an exception).
EXPLICIT: dict[tuple[str, str], frozenset[int]] = {
    # `BodyError.status`: the body is not JSON (400), over the item limit (413), or not
    # {"values": [...]} (422).
    ("POST", "/api/v1/ingest"): frozenset({400, 413, 422}),
}

# The app's exception handlers (`create_app`) for errors raised below the routes: any route
# that reaches the historian or the model can meet them.
_STORE_DEPENDENCIES: tuple[Callable[..., Any], ...] = (
    service(Historian),
    service(HttpIngest),
    service(AssetModel),
)
STORE_STATUSES = frozenset({400, 503})  # InvalidPathError, QueryTooLargeError; StoreClosedError


@dataclass(frozen=True)
class Bound:
    """A bound a route checks at run time (answering 400), written into the schema."""

    method: str
    path: str
    param: str
    keyword: str  # "maximum" for a number, "maxItems" for a repeated parameter
    value: Callable[[PlantSettings], int]


def _limits(settings: PlantSettings) -> QueryLimits:
    return settings.section(QueryLimits)


BOUNDS = (
    Bound("GET", "/api/v1/values/latest", "limit", "maximum", lambda s: _limits(s).latest_max),
    Bound("GET", "/api/v1/values/latest", "tag", "maxItems", lambda s: _limits(s).latest_max),
    Bound("GET", "/api/v1/tags", "limit", "maximum", lambda s: _limits(s).list_max),
    Bound("GET", "/api/v1/history/raw", "limit", "maximum", lambda s: _limits(s).raw_max),
    Bound("GET", "/api/v1/history/summary", "tag", "maxItems", lambda s: MAX_TAGS),
    Bound("GET", "/api/v1/history/interpolated", "tag", "maxItems", lambda s: MAX_TAGS),
)


def install(app: FastAPI, settings: PlantSettings) -> None:
    """Make `app.openapi()` return the truthful document (built once, on first use)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = truthful(app, original(), settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def truthful(app: FastAPI, document: dict[str, Any], settings: PlantSettings) -> dict[str, Any]:
    """`document` with every route's possible statuses and the settings' bounds added."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas[ERROR_SCHEMA] = {
        "title": ERROR_SCHEMA,
        "type": "object",
        "required": ["detail"],
        "properties": {
            "detail": {"title": "Detail", "description": "what is wrong and how to fix it"},
            "reason": {"title": "Reason", "type": "string", "description": "for 401 and 429"},
        },
    }
    for route in api_routes(app):
        if not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = document["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            by_status: dict[int, set[Body]] = {}
            for answer in answers(route, method):
                by_status.setdefault(answer.status, set()).add(answer.body)
            for status, bodies in sorted(by_status.items()):
                _declare(responses, status, bodies)
            if get_flat_params(route.dependant) or route.body_field is not None:
                _keep_validation_error(responses, schemas)
    for bound in BOUNDS:
        _write_bound(document, bound, settings)
    _forms_need_values(document)
    return document


def api_routes(app: FastAPI) -> Iterator[RouteContext]:
    """The app's API routes as served: with their routers' prefixes and dependencies."""
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context


def answers(route: RouteContext, method: str) -> set[Answer]:
    """Every status `route` can answer with, besides those FastAPI documents itself."""
    found: set[Answer] = set()
    for call in _calls(route.dependant):
        found |= _scan(_code_of(call))
    errors: set[int] = set()
    if route.dependant.path_params:
        errors.add(404)  # a path parameter names a record, which may not exist
    if route.body_field is not None:
        errors.add(400)  # FastAPI's "There was an error parsing the body" (not UTF-8, say)
    if route.body_field is not None or _reads_body(route.endpoint):
        errors.add(413)  # the BodyLimit middleware, before the route runs
    if any(call in _STORE_DEPENDENCIES for call in _calls(route.dependant)):
        errors |= STORE_STATUSES
    if (method, route.path_format) in THROTTLED:
        errors.add(429)
    found |= {Answer(s) for s in errors}
    found |= {Answer(s) for s in EXPLICIT.get((method, route.path_format or ""), ())}
    success = route.status_code or 200  # documented by FastAPI already
    return {a for a in found if a.status >= 400 or (a.body is Body.MODEL and a.status != success)}


def statuses(route: RouteContext, method: str) -> set[int]:
    return {a.status for a in answers(route, method)}


def _declare(responses: dict[str, Any], status: int, bodies: set[Body]) -> None:
    """Declare `status` with the bodies it is answered with, beside what is declared already."""
    if str(status) not in responses:
        responses[str(status)] = _response(status)
        if bodies == {Body.MODEL}:
            responses[str(status)]["description"] = MODEL_DESCRIPTION
    declared = responses[str(status)]
    if Body.OTHER in bodies:
        declared.pop("content", None)  # a body the code does not show: not constrained
        return
    schemas = [{"$ref": _REF}] if Body.ERROR in bodies else []
    if Body.MODEL in bodies:
        # The route's own model with another status (207 partial success, 503 failed health).
        success = next(r for code, r in sorted(responses.items()) if code.startswith("2"))
        schemas += [b.get("schema", {}) for b in success.get("content", {}).values()][:1]
    body = declared.setdefault("content", {}).setdefault("application/json", {})
    for schema in schemas:
        body["schema"] = _either(body.get("schema"), schema)


def _either(declared: dict[str, Any] | None, schema: dict[str, Any]) -> dict[str, Any]:
    if declared is None or declared == schema:
        return schema
    options = declared.get("anyOf", [declared])
    return {"anyOf": options if schema in options else [*options, schema]}


def _keep_validation_error(responses: dict[str, Any], schemas: dict[str, Any]) -> None:
    """FastAPI documents its own 422 (a request that does not match the schema) only when the
    route declares no 422 of its own; a route that does (ingest: no item was valid) answers
    both, so the document names both bodies."""
    if "HTTPValidationError" not in schemas or "422" not in responses:
        return
    validation = {"$ref": "#/components/schemas/HTTPValidationError"}
    body = responses["422"].setdefault("content", {}).setdefault("application/json", {})
    body["schema"] = _either(body.get("schema"), validation)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": DESCRIPTIONS.get(status, "an error: the detail says what is wrong"),
    }
    if status == 401:
        response["headers"] = {
            "WWW-Authenticate": {"description": "the scheme to sign in with", "required": False,
                                 "schema": {"type": "string"}},
        }  # fmt: skip
    elif status == 429:
        response["headers"] = {
            "Retry-After": {"description": "seconds to wait", "required": False,
                            "schema": {"type": "string"}},
        }  # fmt: skip
    return response


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def _forms_need_values(document: dict[str, Any]) -> None:
    """FastAPI reads an empty form field as a missing one (a 422 for a required field), so a
    required form string must have at least one character."""
    schemas = document.get("components", {}).get("schemas", {})
    for operations in document["paths"].values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            for media_type in _FORMS:
                ref = content.get(media_type, {}).get("schema", {}).get("$ref", "")
                form = schemas.get(ref.rpartition("/")[2], {})
                for name in form.get("required", []):
                    field = form["properties"][name]
                    if field.get("type") == "string":
                        field["minLength"] = max(1, field.get("minLength", 0))


def _write_bound(document: dict[str, Any], bound: Bound, settings: PlantSettings) -> None:
    operation = document["paths"].get(bound.path, {}).get(bound.method.lower())
    if operation is None:
        # Not served: its subsystem is not installed. (A renamed route is caught by
        # tests/api/test_openapi_truth.py, which checks every entry against the full app.)
        return
    for parameter in operation.get("parameters", []):
        if parameter["name"] == bound.param:
            schema = parameter["schema"]
            # `tag: list[str] | None` is an anyOf of the array and null: bound the array.
            target = next((s for s in schema.get("anyOf", []) if s.get("type") == "array"), schema)
            target[bound.keyword] = bound.value(settings)
            return
    raise LookupError(f"{bound.method} {bound.path} has no {bound.param!r}: update BOUNDS")


# Reading the code for the statuses it answers with.


def _code_of(call: Any) -> Any:
    """The function whose source describes what calling `call` does."""
    if inspect.isclass(call):
        return call.__init__
    if not inspect.isfunction(call) and not inspect.ismethod(call) and callable(call):
        return type(call).__call__  # an instance used as a dependency (a guard)
    return call


class Body(enum.Enum):
    """What an answer's body is."""

    ERROR = "error"  # {"detail": ...}: an HTTPException, Unauthorized, or a dict with "detail"
    MODEL = "model"  # the route's own response model (`response.status_code = 207`)
    OTHER = "other"  # a response built on the spot whose body the code does not show


class Answer(NamedTuple):
    """A status a piece of code answers with, and the body it answers with."""

    status: int
    body: Body = Body.ERROR


def _scan(function: Any) -> frozenset[Answer]:
    function = inspect.unwrap(function)
    if function in _scanned:
        return _scanned[function]
    if function in _stack:
        # Recursion: the frame below collects the statuses; the frames between it and here
        # miss them, so their (partial) answers must not be remembered.
        _partial.update(_stack[_stack.index(function) + 1 :])
        return frozenset()
    tree = _tree(function)
    if tree is None:
        return frozenset()
    _stack.append(function)
    try:
        found = _scan_tree(function, tree)
    finally:
        _stack.pop()
    if function in _partial:
        _partial.discard(function)
    else:
        _scanned[function] = found
    return found


_scanned: dict[Any, frozenset[Answer]] = {}
_stack: list[Any] = []
_partial: set[Any] = set()


def _scan_tree(function: Any, tree: ast.AST) -> frozenset[Answer]:
    scope: dict[str, Any] = getattr(function, "__globals__", {})
    found: set[Answer] = set()
    _visit(tree, scope, tree, found, caught=False)
    return frozenset(found)


def _visit(node: ast.AST, scope: dict[str, Any], tree: ast.AST, found: set[Answer], *,
           caught: bool) -> None:  # fmt: skip
    """Collect the answers under `node`. `caught`: inside a `try` whose handler swallows HTTP
    errors (as `health` does to make sign-in optional), so raised statuses do not escape."""
    if isinstance(node, ast.Try):
        swallowed = caught or any(_swallows(h, scope) for h in node.handlers)
        for inner in node.body:
            _visit(inner, scope, tree, found, caught=swallowed)
        for after in [*node.handlers, *node.orelse, *node.finalbody]:
            _visit(after, scope, tree, found, caught=caught)
        return
    if isinstance(node, ast.Call):
        for keyword in node.keywords:
            if keyword.arg == "status_code":  # a response built on the spot
                body = Body.ERROR if _has_detail(node) else Body.OTHER
                found |= {Answer(s, body) for s in _ints(keyword.value, tree)}
        if not caught:
            found |= {Answer(s) for s in _raised(node, scope, tree)}
            found |= _called(node, scope)
    elif isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Attribute) and t.attr == "status_code" for t in node.targets
    ):  # `response.status_code = 207`: the route's own model, with another status
        found |= {Answer(s, Body.MODEL) for s in _ints(node.value, tree)}
    for child in ast.iter_child_nodes(node):
        _visit(child, scope, tree, found, caught=caught)


def _has_detail(node: ast.Call) -> bool:
    """Whether the response built by `node` has a literal {"detail": ...} body."""
    content = node.args[0] if node.args else None
    content = next((k.value for k in node.keywords if k.arg == "content"), content)
    return isinstance(content, ast.Dict) and any(
        isinstance(k, ast.Constant) and k.value == "detail" for k in content.keys
    )


def _swallows(handler: ast.ExceptHandler, scope: dict[str, Any]) -> bool:
    """Whether `handler` catches an HTTP error and does not raise again."""
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    http_errors = (StarletteHTTPException, Unauthorized)
    catches = any(
        isinstance(n, ast.Name)
        and inspect.isclass(scope.get(n.id))
        and issubclass(scope[n.id], http_errors)
        for n in names
    )
    return catches and not any(isinstance(n, ast.Raise) for n in ast.walk(handler))


def _raised(node: ast.Call, scope: dict[str, Any], tree: ast.AST) -> set[int]:
    """The status of an HTTP error constructed by `node`, if it constructs one."""
    target = scope.get(node.func.id) if isinstance(node.func, ast.Name) else None
    if not inspect.isclass(target):
        return set()
    if issubclass(target, StarletteHTTPException):
        status = node.args[0] if node.args else None
        status = next((k.value for k in node.keywords if k.arg == "status_code"), status)
        return _ints(status, tree) if status is not None else set()
    if issubclass(target, Unauthorized):
        # The app's handler answers 429 for the reason "rate_limited", 401 for any other.
        reason = next((k.value for k in node.keywords if k.arg == "reason"), None)
        limited = isinstance(reason, ast.Constant) and reason.value == "rate_limited"
        return {429 if limited else 401}
    return set()


def _called(node: ast.Call, scope: dict[str, Any]) -> frozenset[Answer]:
    """The answers of a Kiln function or class that `node` calls."""
    target = scope.get(node.func.id) if isinstance(node.func, ast.Name) else None
    if target is None or not _is_ours(target) or _is_http_error(target):
        return frozenset()
    return _scan(_code_of(target))


def _is_http_error(target: Any) -> bool:
    return inspect.isclass(target) and issubclass(target, (StarletteHTTPException, Unauthorized))


def _is_ours(target: Any) -> bool:
    """A Kiln API function or class, whose code is read too (not a library's, nor a service's:
    services raise plain errors that `service_errors()` and the handlers turn into statuses)."""
    module = getattr(target, "__module__", "") or ""
    return module.startswith("kiln.api") and (inspect.isfunction(target) or inspect.isclass(target))


def _ints(node: ast.expr, tree: ast.AST) -> set[int]:
    """The statuses an expression can evaluate to: a constant, `status.HTTP_404_...`, either
    branch of `a if c else b`, or a local name assigned any of those."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return {node.value}
    if isinstance(node, ast.Attribute) and (match := _HTTP_STATUS.match(node.attr)):
        return {int(match.group(1))}
    if isinstance(node, ast.IfExp):
        return _ints(node.body, tree) | _ints(node.orelse, tree)
    if isinstance(node, ast.Name):
        found: set[int] = set()
        for assign in ast.walk(tree):
            if isinstance(assign, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == node.id for t in assign.targets
            ):
                found |= _ints(assign.value, tree)
        return found
    return set()


def _reads_body(endpoint: Callable[..., Any] | None) -> bool:
    """Whether the endpoint reads the raw body (`await request.body()`), which the document
    does not describe as a request body but the body limit still applies to."""
    tree = _tree(inspect.unwrap(endpoint)) if endpoint is not None else None
    calls = (n for n in ast.walk(tree) if isinstance(n, ast.Call)) if tree is not None else ()
    return any(
        isinstance(c.func, ast.Attribute) and c.func.attr in ("body", "stream", "form")
        for c in calls
    )


@functools.cache  # parsing is the slow part; the code does not change while running
def _tree(function: Any) -> ast.AST | None:
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return None  # built in, or generated: nothing to read
    return ast.parse(textwrap.dedent(source))
