"""The audit log of a plant's settings: its key (`key`), schedule and anchors."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from kiln.core.platform import Platform
from kiln.security.audit.key import ENV_VAR, load_audit_keys
from kiln.security.audit.service import AuditLog
from kiln.security.secrets import SECRET_FILE_NAME, load_or_create_secret
from kiln.security.settings import SecuritySettings

_LOGGER = logging.getLogger(__name__)


class _InstallKeyedAuditLog(AuditLog):
    """An audit log keyed by the install secret beside the data, which a first start creates:
    created when the log starts, not when the platform is built, so that building one (for
    its API document, say) writes nothing."""

    async def start(self, platform: Platform) -> None:
        self._key = load_or_create_secret(self._data_dir)
        await super().start(platform)


def audit_log_from(
    sec: SecuritySettings,
    data_dir: Path,
    *,
    watch: bool = True,
    environ: Mapping[str, str] | None = None,
) -> AuditLog:
    """The `AuditLog` of a plant's security settings and data folder; without `watch`, no
    background verification (for a command line session). Raises AuditKeyConfigError for an
    unusable key setting."""
    env = os.environ if environ is None else environ
    url = sec.audit_url_in(data_dir)
    interval_s = sec.audit_verify_interval_s if watch else None
    if env.get(ENV_VAR) is None and sec.audit_key_file is None:
        if watch:
            log = _LOGGER.info if sec.audit_anchor_dir is not None else _LOGGER.warning
            log(
                "The audit chain key is derived from %s, in the data directory beside the log: "
                "whoever holds a copy of that directory can rewrite the log so that it "
                "verifies. Keep the key elsewhere (security.audit_key_file or %s) and/or "
                "publish anchors to another disk (security.audit_anchor_dir); see "
                "docs/security.md",
                data_dir / SECRET_FILE_NAME,
                ENV_VAR,
            )
        return _InstallKeyedAuditLog(
            url,
            b"",  # read (or made) at start
            data_dir=data_dir,
            max_records=sec.audit_max_records,
            verify_interval_s=interval_s,
            anchor_dir=sec.audit_anchor_dir,
        )
    keys = load_audit_keys(data_dir, sec.audit_key_file, environ=env)
    if watch:
        _LOGGER.info("Audit chain key from %s", keys.source)
    return AuditLog(
        url,
        keys.secret,
        data_dir=data_dir,
        max_records=sec.audit_max_records,
        previous_keys=keys.previous,
        verify_interval_s=interval_s,
        anchor_dir=sec.audit_anchor_dir,
    )
