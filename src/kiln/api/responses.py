"""JSON responses serialized once.

A route that returns a Pydantic model has FastAPI validate it against `response_model` again
and then serialize it: for a summary of 100 tags or the latest values of 1,000, that second
pass costs as much as the query. Routes whose models are built from trusted data return
`json_of(model)` instead; `response_model` still documents the shape in OpenAPI.
"""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel


def json_of(model: BaseModel) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")
