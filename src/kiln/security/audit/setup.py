"""The audit log of a plant's settings: its key (`key`), schedule and anchors."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from kiln.security.audit.key import ENV_VAR, load_audit_keys
from kiln.security.audit.service import AuditLog
from kiln.settings import Settings

_LOGGER = logging.getLogger(__name__)


def audit_log_from(
    settings: Settings, *, watch: bool = True, environ: Mapping[str, str] | None = None
) -> AuditLog:
    """The `AuditLog` for `settings`; without `watch`, no background verification (for a
    command line session). Raises AuditKeyConfigError for an unusable key setting."""
    sec = settings.security
    keys = load_audit_keys(settings.data_dir, sec.audit_key_file, environ=environ)
    if not watch:
        pass  # the server says where the key lives; a command need not repeat it
    elif keys.beside_data:
        log = _LOGGER.info if sec.audit_anchor_dir is not None else _LOGGER.warning
        log(
            "The audit chain key is derived from %s, in the data directory beside the log: "
            "whoever holds a copy of that directory can rewrite the log so that it verifies. "
            "Keep the key elsewhere (security.audit_key_file or %s) and/or publish anchors "
            "to another disk (security.audit_anchor_dir); see docs/security.md",
            keys.source,
            ENV_VAR,
        )
    else:
        _LOGGER.info("Audit chain key from %s", keys.source)
    return AuditLog(
        settings.audit_url,
        keys.secret,
        data_dir=settings.data_dir,
        max_records=sec.audit_max_records,
        previous_keys=keys.previous,
        verify_interval_s=sec.audit_verify_interval_s if watch else None,
        anchor_dir=sec.audit_anchor_dir,
    )
