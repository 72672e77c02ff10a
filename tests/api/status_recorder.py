"""Every status the API tests see must be declared in the OpenAPI document (issue 12, finding 8).

`record_statuses` is a session fixture, used by every test of `tests/api` (conftest.py imports
it): it records (method, path, status) of each request made through a TestClient and, when
the session ends, fails if one of them is not in the document for its operation. So the
hand-written tests, with their deliberate refusals, hold the document to the truth beside the
generated requests of schemathesis (`test_api_fuzz.py`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import make_settings
from starlette.testclient import TestClient

from kiln.app.server import build_app

# A 405 is not an operation's answer (the path has no operation for that method): its
# `Allow` header is checked by test_openapi_truth.py instead.
NOT_AN_OPERATION = frozenset({405})


def templates(document: dict[str, Any]) -> list[tuple[re.Pattern[str], str]]:
    """A pattern for each path of the document, to find an URL's template."""
    found = []
    for path in document["paths"]:
        pattern = re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(path))
        found.append((re.compile(f"{pattern}$"), path))
    return found


def undeclared(
    document: dict[str, Any], seen: set[tuple[str, str, int]]
) -> list[tuple[str, str, int]]:
    paths = templates(document)
    problems = []
    for method, url_path, status in sorted(seen):
        template = next((t for pattern, t in paths if pattern.match(url_path)), None)
        if template is None or status in NOT_AN_OPERATION:
            continue  # not an API operation (pages, static files, /metrics)
        operation = document["paths"][template].get(method.lower())
        if operation is not None and str(status) not in operation["responses"]:
            problems.append((method, template, status))
    return problems


@pytest.fixture(scope="session", autouse=True)
def record_statuses() -> Iterator[set[tuple[str, str, int]]]:
    seen: set[tuple[str, str, int]] = set()
    request = TestClient.request

    def recorded(self: TestClient, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        response = request(self, method, url, *args, **kwargs)
        seen.add((method.upper(), response.request.url.path, response.status_code))
        return response

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TestClient, "request", recorded)
        yield seen
    document = build_app(make_settings(Path("unused"))).openapi()
    problems = sorted(set(undeclared(document, seen)))
    assert problems == [], "statuses answered but not in the OpenAPI document: " + ", ".join(
        f"{m} {p} -> {s}" for m, p, s in problems
    )
