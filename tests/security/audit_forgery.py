"""What someone who holds a copy of the data directory, or the audit key, can do to the log:
change a record and recompute every MAC after it and the head anchor, so that the chain verifies
again with that key. Imported by the audit tests."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, select, update
from sqlalchemy.pool import NullPool

from kiln.security.audit.chain import ZERO_MAC, chain_key, record_mac
from kiln.security.audit.head import Head, head_path, write_head
from kiln.security.audit.schema import AUDIT_LOG


def rechain(url: str, secret: bytes, data_dir: Path, seq: int, **changes: object) -> None:
    """Apply `changes` to record `seq`, then re-sign it and every later record, and the anchor,
    with the chain key derived from `secret`."""
    key = chain_key(secret)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            rows = [
                dict(r)
                for r in conn.execute(select(AUDIT_LOG).order_by(AUDIT_LOG.c.seq)).mappings()
            ]
            prev = ZERO_MAC
            for row in rows:
                if row["seq"] >= seq:
                    if row["seq"] == seq:
                        row.update(changes)
                    row["prev_mac"] = prev
                    row["mac"] = record_mac(key, row, prev)
                    conn.execute(
                        update(AUDIT_LOG).where(AUDIT_LOG.c.seq == row["seq"]).values(**row)
                    )
                prev = row["mac"]
        write_head(head_path(data_dir), key, Head(rows[-1]["seq"], rows[-1]["mac"]))
    finally:
        engine.dispose()
