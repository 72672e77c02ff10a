"""The tamper-evident audit log (IEC 62443-4-2 CR 2.8 auditable events).

Every security-relevant event is recorded with time, actor, source, category, action, target
and result, in a hash chain keyed by the install secret (`chain`), with a head anchor file
(`head`) that shows deleted newest records. The database is bounded: when full, the oldest
records move to archive segments that stay part of the chain (`archive`). `verify` checks the
whole trail and names the record at fault; `kiln audit verify` runs it, and the running server
runs it at start and then incrementally on a schedule (`monitor`). The chain key may live apart
from the data directory (`key`, `move`), and verified heads may be published elsewhere
(`anchors`), so that holding the data directory is not enough to forge the history.
"""

from kiln.security.audit.errors import AuditError, AuditKeyError
from kiln.security.audit.export import export_csv, export_jsonl
from kiln.security.audit.record import REDACTED, AuditRecord, Category, Result
from kiln.security.audit.service import AuditLog
from kiln.security.audit.store import MAX_QUERY_LIMIT, AuditQuery, AuditStore
from kiln.security.audit.verify import VerifyResult, verify, verify_main

__all__ = [
    "MAX_QUERY_LIMIT",
    "REDACTED",
    "AuditError",
    "AuditKeyError",
    "AuditLog",
    "AuditQuery",
    "AuditRecord",
    "AuditStore",
    "Category",
    "Result",
    "VerifyResult",
    "export_csv",
    "export_jsonl",
    "verify",
    "verify_main",
]
