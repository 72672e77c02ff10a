"""Property-based tests of the whole HTTP API from its own OpenAPI document (schemathesis).

Schemathesis generates requests for every operation of `app.openapi()`, valid ones and, in
"all" mode, invalid ones too, and holds each answer to the document with its conformance
checks: no 5xx; the status is one the operation declares (`kiln.api.openapi_doc` derives them
from the code); content type, headers and body as declared; invalid input refused with a 4xx,
valid input never refused as invalid (422); a method the path does not take answered 405 with
an `Allow` header that names every method the path takes.

The requests run in this process, through Starlette's TestClient, so the app's lifespan (the
platform) is owned by the module fixture and stopped cleanly; schemathesis only generates the
cases and checks the answers. The admin calls every route but ingest; a device calls ingest.
The number of examples per operation is bounded, and the draw derandomized, so that the module
stays fast (under a minute) and the same on every run.
"""

from __future__ import annotations

from collections.abc import Iterator
from copy import deepcopy
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from httpx2 import InvalidURL
from hypothesis import reject, settings

from kiln.api.settings import QueryLimits
from kiln.app.server import build_app
from kiln.app.settings import Settings
from kiln.model.definitions import AssetDef, AssetTypeDef, Level, TagDef
from kiln.model.settings import ModelSettings, NamespaceSettings
from kiln.security.passwords import PasswordHasherSettings
from kiln.testing.auth import admin_headers, device_headers

INGEST = "/api/v1/ingest"
LOGOUT = "/api/v1/auth/logout"
MAX_EXAMPLES = 12
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,  # the first request of an operation warms caches; timing is not the point
    derandomize=True,  # the same cases on every run: CI must not flake on a new random draw
    database=None,  # nothing to replay: the run is deterministic anyway
)


class Api:
    """The app under test, signed in as the first administrator and as a device."""

    def __init__(self, client: TestClient, data_dir: Path) -> None:
        self.client = client
        self.admin = admin_headers(client, data_dir)
        self.device = device_headers(client, self.admin, "fuzz-gateway", "acme")

    def send(self, case: schemathesis.Case[Any], headers: dict[str, str]) -> Any:
        """Send `case` through the TestClient, translating schemathesis' `requests` arguments."""
        kwargs = case.as_transport_kwargs(base_url=str(self.client.base_url), headers=headers)
        request: dict[str, Any] = {
            "headers": kwargs.get("headers") or {},
            "params": kwargs.get("params") or None,
        }
        if kwargs.get("json") is not None:
            request["json"] = kwargs["json"]
        data = kwargs.get("data")
        if isinstance(data, (bytes, str)):
            request["content"] = data
        elif data is not None:
            request["data"] = data
        if kwargs.get("cookies"):
            raise AssertionError(f"no route takes cookie parameters, yet {case!r} sets some")
        self.client.cookies.clear()  # login routes set session cookies: keep each case alone
        try:
            return self.client.request(kwargs["method"], kwargs["url"], **request)
        except InvalidURL:
            # A drawn query longer than any URL can be (thousands of repeated list items):
            # the client refuses to build it, so no server could be asked. Not a case.
            reject()


def plant(data_dir: Path) -> Settings:
    pump = AssetTypeDef(name="pump", tags=(TagDef(name="flow", unit="m3/h", low=0, high=100),))
    return Settings(
        data_dir=data_dir,
        model=ModelSettings(
            types=[pump],
            assets=[
                AssetDef(path="acme", level=Level.ENTERPRISE),
                AssetDef(path="acme/site1/area/line/p1", level=Level.ASSET, type="pump"),
            ],
        ),
        namespace=NamespaceSettings(locked=["acme/site1/locked"]),
        limits=QueryLimits(raw_max=500, max_buckets=100),
    )


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    app = build_app(plant(data_dir), password_settings=PasswordHasherSettings.for_tests())
    with TestClient(app) as client:
        yield Api(client, data_dir)


def config(accepted: list[str]) -> schemathesis.Config:
    """The run's settings; `accepted`: the statuses a request the schema allows may get."""
    return schemathesis.Config.from_dict(
        {
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES},
            # Examples from the document, deterministic boundary cases (coverage) and generated
            # ones (fuzzing). Not stateful: links between operations are not documented.
            "phases": {"stateful": {"enabled": False}},
            # No 5xx, and every answer as documented: its status, content type, headers and
            # body; invalid input refused (4xx) and valid input not refused for being invalid;
            # a method the path does not take answered 405 with an Allow header naming every
            # method it does take.
            "checks": {
                "enabled": False,
                "not_a_server_error": {"enabled": True},
                "status_code_conformance": {"enabled": True},
                "content_type_conformance": {"enabled": True},
                "response_headers_conformance": {"enabled": True},
                "response_schema_conformance": {"enabled": True},
                "negative_data_rejection": {"enabled": True},
                "positive_data_acceptance": {"enabled": True, "expected-statuses": accepted},
                "unsupported_method": {"enabled": True},
                "allow_header_conformance": {"enabled": True},
            },
        }
    )


# A request the schema allows may still break a rule the schema cannot state (a tag that does
# not exist, a weak password, a scope outside the caller's): Kiln answers those 400 with the
# reason, and 422 only for a request that does not match the schema. So a valid request may
# get a 400, never a 422 (nor a 5xx).
ACCEPTED = ["2xx", "400", "401", "403", "404", "409", "413", "429"]
# Ingest rules are per item, not in the schema (a bad item is refused alone, with its reason,
# and the others kept): a batch of which no item is valid answers 422 with the reasons.
INGEST_ACCEPTED = [*ACCEPTED, "422"]

# The document is static: an app that is never started describes the one the fixture runs.
# (schemathesis.pytest.from_fixture would load it from the fixture, but it relies on a pytest
# internal, Node._nodeid, that pytest 9 removed.)
DOCUMENT = build_app(plant(Path("unused"))).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=config(ACCEPTED))
ingest_schema = schemathesis.openapi.from_dict(deepcopy(DOCUMENT), config=config(INGEST_ACCEPTED))


@schema.exclude(path=INGEST).parametrize()
@FUZZ
def test_api_as_admin(case: schemathesis.Case[Any], api: Api) -> None:
    # Logout takes no input, and with the admin's token it would end the session every later
    # case signs in with; a new session per case is no way out either, since the fuzzed failed
    # logins lock the test client's address out of signing in (as they should).
    headers = {} if case.path == LOGOUT else api.admin
    response = api.send(case, headers)
    case.validate_response(response)


@ingest_schema.include(path=INGEST).parametrize()
@FUZZ
def test_ingest_as_device(case: schemathesis.Case[Any], api: Api) -> None:
    response = api.send(case, api.device)
    case.validate_response(response)
