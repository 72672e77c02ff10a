"""Settings and clients of the API tests (the fixtures are in conftest.py)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from kiln.api.settings import QueryLimits
from kiln.app.server import build_app
from kiln.app.settings import Settings
from kiln.model.definitions import AssetDef, AssetTypeDef, Level, TagDef
from kiln.model.settings import ModelSettings, NamespaceSettings
from kiln.security.passwords import PasswordHasherSettings

PUMP = AssetTypeDef(
    name="pump",
    tags=(
        TagDef(name="flow", unit="m3/h", low=0, high=100, description="outlet flow"),
        TagDef(name="running", data_type="bool"),
    ),
)


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    base = Settings(
        data_dir=data_dir,
        model=ModelSettings(
            types=[PUMP],
            assets=[
                AssetDef(path="acme", level=Level.ENTERPRISE),
                AssetDef(
                    path="acme/site1/utilities/water/cell1/p1", level=Level.ASSET, type="pump"
                ),
            ],
        ),
        namespace=NamespaceSettings(locked=["acme/site1/locked"]),
        limits=QueryLimits(raw_max=500, max_buckets=100),
    )
    return base.model_copy(update=overrides)


CHEAP_HASHING = PasswordHasherSettings.for_tests()


def make_app_client(settings: Settings) -> TestClient:
    """A client of an app with cheap password hashing (argon2's cost is for production)."""
    return TestClient(build_app(settings, password_settings=CHEAP_HASHING))


def constant_parquet(rows: int, path: str, ts_us: int) -> bytes:
    """`rows` identical points in zstd Parquet: a few hundred KiB that inflate to gigabytes
    (the row and memory bombs of the bulk tests)."""
    import io

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    chunk = pa.table({
        "path": pa.array([path] * 1_000_000),
        "ts": pa.array(np.full(1_000_000, ts_us, dtype=np.int64)),
        "value": pa.array(np.zeros(1_000_000)),
    })  # fmt: skip
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, chunk.schema, compression="zstd") as writer:
        for _ in range(rows // 1_000_000):
            writer.write_table(chunk)
    return sink.getvalue()
