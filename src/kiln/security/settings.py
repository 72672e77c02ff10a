"""The security settings section (`security:` in the plant file): identities and the audit log."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from kiln.core.config import ConfigFile, DatabaseUrl, MadeDir
from kiln.core.settings import Section
from kiln.db.urls import require_postgres_driver, sqlite_url


class SecuritySettings(Section):
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

    def identity_url_in(self, data_dir: Path) -> str:
        """The identity database: `url`, or security.db in the data folder."""
        return self.url or sqlite_url(data_dir / "security.db")

    def audit_url_in(self, data_dir: Path) -> str:
        """The audit database: `audit_url`, or audit.db in the data folder."""
        return self.audit_url or sqlite_url(data_dir / "audit.db")

    @field_validator("url", "audit_url")
    @classmethod
    def _driver(cls, url: str | None) -> str | None:
        require_postgres_driver(url)
        return url
