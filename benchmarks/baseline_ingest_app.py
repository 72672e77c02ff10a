"""The floor under Kiln's HTTP ingest: FastAPI parsing the same body into the same model, then
answering, with no validation of items, no bus, no historian, no durability."""

from __future__ import annotations

from fastapi import FastAPI

from kiln.api.schemas import IngestIn

app = FastAPI()


@app.post("/api/v1/ingest")
async def ingest(body: IngestIn) -> dict[str, int]:
    return {"accepted": len(body.values)}
