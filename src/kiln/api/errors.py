"""Turning the security services' errors into HTTP answers, in one place.

The services raise plain exceptions with messages written for the caller (what is wrong and
how to fix it); routers run their calls inside `service_errors()` to map them to a status.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import HTTPException

from kiln.security.principal import AuthError, PermissionDenied
from kiln.security.store import Conflict


@contextmanager
def service_errors() -> Iterator[None]:
    """403 for a denied action, 404 for an unknown record, 409 for a taken name, 400 for an
    invalid value, 401 for a failed re-authentication (a wrong current password).

    An invalid value is a 400, as in the query routes: 422 is the answer FastAPI documents for
    a request that does not match the schema, with a list of errors as its `detail`."""
    try:
        yield
    except PermissionDenied as err:
        raise HTTPException(403, str(err)) from None
    except AuthError as err:
        raise HTTPException(401, str(err)) from None
    except Conflict as err:  # before ValueError: a Conflict is one
        raise HTTPException(409, str(err)) from None
    except LookupError as err:
        raise HTTPException(404, str(err).strip("'\"")) from None
    except ValueError as err:
        raise HTTPException(400, str(err)) from None


def json_safe(data: Any) -> Any:
    """`data` with every non-finite float made text ("NaN", "Infinity"), so that an answer that
    echoes a client's input stays valid JSON."""
    if isinstance(data, float) and not math.isfinite(data):
        return "NaN" if math.isnan(data) else ("Infinity" if data > 0 else "-Infinity")
    if isinstance(data, dict):
        return {k: json_safe(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [json_safe(v) for v in data]
    return data
