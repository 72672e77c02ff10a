"""The plant configuration file (`kiln run --config plant.yaml`): one section per subsystem."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    field_validator,
    model_validator,
)

from kiln.connectors.base import ConnectorConfig
from kiln.connectors.registry import connector_model, validate_connector_config
from kiln.core.config import ConfigFile, DatabaseUrl, MadeDir, MadeFile, SubModel, load_config
from kiln.core.values import validate_path
from kiln.historian.compression import CompressionRule
from kiln.historian.pg_store import is_postgres_url, redact, require_postgres_driver
from kiln.historian.retention import RetentionRule
from kiln.historian.tiers import parse_widths
from kiln.model.definitions import AssetDef, AssetTypeDef
from kiln.sim.spec import FactorySpec


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HttpSettings(_Section):
    host: str = Field(default="127.0.0.1", description="address to bind; 0.0.0.0 exposes the API")
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    tls_cert: ConfigFile | None = Field(default=None, description="PEM certificate: serve HTTPS")
    tls_key: ConfigFile | None = Field(default=None, description="PEM private key of tls_cert")
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="origins (scheme://host[:port]) besides the server's own whose pages may "
        "open the live WebSocket with a session cookie: the public address behind a proxy",
    )

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
                raise ValueError(
                    f"allowed origin {origin!r} must be scheme://host[:port], "
                    "e.g. https://kiln.plant.example"
                )
        return value


class SimServeSettings(_Section):
    """The virtual factory's machines as real protocol servers, read through the connectors."""

    host: str = Field(default="127.0.0.1", description="address the simulated servers bind")
    modbus_port: int | None = Field(
        default=None, ge=0, le=65535, description="serve the fillers over Modbus TCP here"
    )
    opcua_port: int | None = Field(
        default=None, ge=0, le=65535, description="serve the CNCs over OPC UA here"
    )
    opcua_pki: MadeDir | None = Field(
        default=None,
        description="certificates of the simulated OPC UA server and of the connector that "
        "reads it (generated on first start): with it, Basic256Sha256 SignAndEncrypt; "
        "without, security policy None",
    )
    mqtt_url: str | None = Field(
        default=None, description="publish the conveyors as a Sparkplug B edge node to this broker"
    )
    connect: bool = Field(
        default=True, description="read them through Kiln's own connectors (the real path)"
    )


class SecuritySettings(_Section):
    url: DatabaseUrl | None = Field(
        default=None, description="identity database; default SQLite in data_dir"
    )
    audit_url: DatabaseUrl | None = Field(
        default=None, description="audit database; default SQLite"
    )
    audit_max_records: int = Field(default=1_000_000, ge=100)
    audit_verify_interval_s: float = Field(
        default=300.0, gt=0, description="how often the running server verifies new audit records"
    )
    audit_key_file: ConfigFile | None = Field(
        default=None,
        description="32-byte key of the audit chain, kept outside data_dir (default: derived "
        "from data_dir/secret.key; or set KILN_AUDIT_KEY)",
    )
    audit_anchor_dir: MadeDir | None = Field(
        default=None,
        description="directory on another disk or system where the verified chain head is "
        "published after each check; `kiln audit verify --anchors DIR` checks against it",
    )
    access_ttl_s: int = Field(default=900, gt=0, le=86_400, description="bearer token lifetime")
    refresh_ttl_s: int = Field(default=8 * 3600, gt=0, description="session lifetime")
    max_login_failures: int = Field(default=5, gt=0)
    lockout_s: float = Field(default=300.0, gt=0)

    @field_validator("url", "audit_url")
    @classmethod
    def _driver(cls, url: str | None) -> str | None:
        require_postgres_driver(url)
        return url


class HistorianSettings(_Section):
    backend: Literal["duckdb", "postgresql"] = Field(
        default="duckdb", description="duckdb (a file in data_dir) or postgresql (set url)"
    )
    path: MadeFile | None = Field(default=None, description="default: <data_dir>/history.duckdb")
    url: str | None = Field(
        default=None,
        description="postgresql://user:password@host/database: keep the history in PostgreSQL",
    )
    partition_days: int = Field(
        default=7, ge=1, le=366, description="PostgreSQL: days of points per partition"
    )
    max_batch_points: int = Field(default=200_000, gt=0, description="points per commit at most")
    queue_points: int = Field(
        default=1_000_000, gt=0, description="bus queue bound (blocks when full)"
    )
    compression: list[CompressionRule] = Field(
        default_factory=list,
        description="per tag or subtree: exception or swinging_door, deviation, max_time_s",
    )
    retention: list[RetentionRule] = Field(
        default_factory=list, description="per tag or subtree: raw_days of raw points to keep"
    )
    disk_limit_bytes: int | None = Field(
        default=None, gt=0, description="warn at 90 %, then drop the oldest day at a time"
    )
    housekeeping_s: float = Field(
        default=300.0, gt=0, description="how often retention and the disk limit are applied"
    )
    rollups: list[str] = Field(
        default=["1min", "1h"],
        description="rollup tiers, each a multiple of the one before: aggregates kept as data "
        "arrives and used by queries whose buckets lie on their grid ([] for none)",
    )
    rollup_s: float = Field(default=5.0, gt=0, description="how often rollups catch up")

    @field_validator("rollups")
    @classmethod
    def _tiers(cls, tiers: list[str]) -> list[str]:
        parse_widths(tiers)
        return tiers

    @model_validator(mode="after")
    def _backend(self) -> HistorianSettings:
        if self.url is not None:
            if not is_postgres_url(self.url):
                raise ValueError(
                    f"historian.url must be a PostgreSQL URL (postgresql://user@host/db), "
                    f"not {redact(self.url)!r}"
                )
            require_postgres_driver(self.url)
            self.backend = "postgresql"
        elif self.backend == "postgresql":
            raise ValueError("historian.backend postgresql needs historian.url")
        return self


class ModelSettings(_Section):
    url: DatabaseUrl | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite in data_dir"
    )
    types: list[AssetTypeDef] = []
    assets: list[AssetDef] = []

    @field_validator("url")
    @classmethod
    def _driver(cls, url: str | None) -> str | None:
        require_postgres_driver(url)
        return url


class NamespaceSettings(_Section):
    locked: list[str] = Field(
        default=[],
        description="subtrees where only configured tags exist: ingest of unknown paths is refused",
    )

    @field_validator("locked")
    @classmethod
    def _paths(cls, prefixes: list[str]) -> list[str]:
        for p in prefixes:
            if "/" in p:
                validate_path(p)
        return prefixes


class IngestSettings(_Section):
    max_items: int = Field(default=100_000, gt=0, description="values per request at most")
    ack_timeout_s: float = Field(default=30.0, gt=0, description="wait for durability at most")
    bulk_max_bytes: int = Field(
        default=512 * 1024 * 1024, gt=0, description="largest bulk (Arrow/Parquet) upload"
    )
    bulk_max_rows: int = Field(default=10_000_000, gt=0, description="rows per bulk upload")
    max_inflated_bytes: int = Field(
        default=128 * 1024 * 1024,
        gt=0,
        description="a compressed body (gzip, Parquet pages) may inflate to this much at most",
    )
    max_future_s: float = Field(
        default=600.0,
        ge=0,
        description="timestamps later than now plus this are refused (422), and never become "
        "a tag's latest value",
    )
    workers: int = Field(
        default=2, gt=0, le=64, description="threads that decode and parse ingest bodies"
    )


class LiveSettings(_Section):
    queue_points: int = Field(default=20_000, gt=0, description="per connection; oldest dropped")
    max_connections: int = Field(default=200, gt=0)


class QueryLimits(_Section):
    raw_default: int = Field(default=1_000, gt=0)
    raw_max: int = Field(default=100_000, gt=0)
    max_buckets: int = Field(default=10_000, gt=0)
    latest_max: int = Field(default=10_000, gt=0)
    list_max: int = Field(default=10_000, gt=0)


class Settings(_Section):
    """Everything a plant is configured with. Relative paths are relative to the config file
    (`kiln.core.config`: every path field's type says so, connectors' too)."""

    name: str = "Kiln"
    data_dir: MadeDir = Field(default=Path("kiln-data"), validate_default=True)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    http: HttpSettings = HttpSettings()
    historian: HistorianSettings = HistorianSettings()
    model: ModelSettings = ModelSettings()
    namespace: NamespaceSettings = NamespaceSettings()
    ingest: IngestSettings = IngestSettings()
    live: LiveSettings = LiveSettings()
    limits: QueryLimits = QueryLimits()
    security: SecuritySettings = SecuritySettings()
    sim: FactorySpec | None = Field(default=None, description="run the virtual factory in-process")
    sim_serve: SimServeSettings = SimServeSettings()
    connectors: list[
        Annotated[
            ConnectorConfig,
            PlainValidator(validate_connector_config),
            SubModel(connector_model),
        ]
    ] = Field(default_factory=list, description="devices and servers to read from (one entry each)")

    @property
    def historian_path(self) -> Path:
        return self.historian.path or self.data_dir / "history.duckdb"

    @property
    def model_url(self) -> str:
        return self.model.url or f"sqlite:///{self.data_dir / 'model.db'}"

    @property
    def identity_url(self) -> str:
        return self.security.url or f"sqlite:///{self.data_dir / 'security.db'}"

    @property
    def audit_url(self) -> str:
        return self.security.audit_url or f"sqlite:///{self.data_dir / 'audit.db'}"


def load_settings(path: Path, *, check_paths: bool = False) -> Settings:
    """The plant file's settings, relative paths anchored at its folder; with `check_paths`
    every path is checked as `kiln config check` does."""
    return load_config(path, Settings, check_paths=check_paths)
