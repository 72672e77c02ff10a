"""History as DataFrames in a notebook, read from a running Kiln over its API.

    from kiln.historian.notebook import History
    h = History("http://127.0.0.1:8000", token="...")        # a user's token or API key
    h.summary(["acme/plant1/line1/oven/temp"], start="-7d", interval="1h", agg="twa,max")
    h.interpolated(["acme/plant1/line1/oven/temp"], start="-1h", interval="1m")
    h.raw("acme/plant1/line1/oven/temp", start="-15m")

Each call asks for the result as Parquet (`format=parquet`) and returns a Polars DataFrame, or a
pandas one with `History(..., frames="pandas")`. Needs `pip install 'kiln[analysis]'` (httpx,
Polars, pandas). Errors of the API come back as `HistoryError` with the server's explanation.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import pyarrow.parquet as pq

from kiln.core.errors import KilnError
from kiln.historian.frames import to_pandas, to_polars

if TYPE_CHECKING:
    import httpx


class HistoryError(KilnError):
    """The API refused a history request; the message is its explanation."""


class History:
    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        frames: Literal["polars", "pandas"] = "polars",
        client: httpx.Client | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        """`client` replaces the connection made from `url` (tests, custom TLS)."""
        if client is None:
            if url is None:
                raise ValueError("give the Kiln address, e.g. History('http://127.0.0.1:8000')")
            try:
                import httpx
            except ImportError:
                raise ImportError("History needs httpx: pip install 'kiln[analysis]'") from None
            client = httpx.Client(base_url=url, timeout=timeout_s)
        if token is not None:
            client.headers["Authorization"] = f"Bearer {token}"
        self._client = client
        self._frames = frames

    def summary(
        self,
        tags: Sequence[str],
        *,
        start: str = "-1h",
        end: str = "now",
        interval: str = "1m",
        agg: str = "twa",
        tz: str = "UTC",
        total_unit: str = "s",
    ) -> Any:
        """Aggregates per bucket: columns tag, ts and one per aggregate."""
        return self._get("summary", {
            "tag": list(tags), "start": start, "end": end, "interval": interval, "agg": agg,
            "tz": tz, "total_unit": total_unit,
        })  # fmt: skip

    def interpolated(
        self,
        tags: Sequence[str],
        *,
        start: str = "-1h",
        end: str = "now",
        interval: str = "1m",
        tz: str = "UTC",
    ) -> Any:
        """Values at start and every interval: columns tag, ts, value."""
        return self._get(
            "interpolated",
            {"tag": list(tags), "start": start, "end": end, "interval": interval, "tz": tz},
        )

    def raw(
        self, tag: str, *, start: str = "-1h", end: str = "now", limit: int | None = None
    ) -> Any:
        """Stored values: columns ts, value, quality, quality_code, received."""
        params: dict[str, Any] = {"tag": tag, "start": start, "end": end}
        if limit is not None:
            params["limit"] = limit
        return self._get("raw", params)

    def _get(self, what: str, params: dict[str, Any]) -> Any:
        r = self._client.get(f"/api/v1/history/{what}", params={**params, "format": "parquet"})
        if r.status_code != 200:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise HistoryError(f"history/{what}: {r.status_code} {detail}")
        table = pq.read_table(io.BytesIO(r.content))
        return to_pandas(table) if self._frames == "pandas" else to_polars(table)
