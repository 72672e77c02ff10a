"""`kiln audit move-key`: take up an existing log with a key kept outside the data directory.

Nothing is re-signed: the records keep the MACs the install secret's key gave them, and the
next record, signed with the new key, links to them. Only the head anchor, which vouches for
where the chain ends, is re-signed with the new key, once the whole log has verified with the
old one. From then on an anchor signed with the old key is refused (see `AuditStore`), so the
old key, which anyone holding the data directory has, no longer suffices to forge the history.
"""

from __future__ import annotations

from pathlib import Path

from kiln.security.audit.chain import chain_key
from kiln.security.audit.errors import AuditError
from kiln.security.audit.head import HeadInvalidError, head_path, read_head, write_head
from kiln.security.audit.key import AuditKeys
from kiln.security.audit.verify import verify


def move_key(url: str, data_dir: Path, keys: AuditKeys) -> str:
    """Re-sign the head anchor of the log at `url` with `keys.secret`; what was done, to print.

    Raises AuditError, saying why, when there is nothing to move, the anchor verifies with no
    key, or the log does not verify with the old key (a broken chain is not taken up).
    """
    if not keys.previous:
        raise AuditError(
            "the audit key is still the install secret in the data directory: set "
            "security.audit_key_file or KILN_AUDIT_KEY to the new key first"
        )
    path = head_path(data_dir)
    try:
        if read_head(path, chain_key(keys.secret)) is not None:
            return f"the audit log is already anchored with the key from {keys.source}"
    except HeadInvalidError:
        pass
    old = keys.previous[-1]
    try:
        anchor = read_head(path, chain_key(old))
    except HeadInvalidError as err:
        raise AuditError(
            f"{path} verifies with neither the old nor the new audit key; run `kiln audit "
            "verify` to see what is wrong"
        ) from err
    if anchor is None:
        if verify(url, old, data_dir, anchor_required=False).checked == 0:
            return "the audit log is empty: its first record will be signed with the new key"
        raise AuditError(
            f"there is no head anchor {path}, so the end of the log cannot be vouched for; "
            "run `kiln audit verify`"
        )
    result = verify(url, old, data_dir)
    if not result.ok:
        raise AuditError(
            "the audit log does not verify with the old key, so it is not taken up with the "
            f"new one: {result.problems[0]} (run `kiln audit verify` for all problems)"
        )
    write_head(path, chain_key(keys.secret), anchor)
    return (
        f"audit log taken up with the key from {keys.source}: records 1 to {anchor.seq} verified "
        "with the old key, and the head anchor is now signed with the new one. Back up the new "
        "key apart from the data directory"
    )
