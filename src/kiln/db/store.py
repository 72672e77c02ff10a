"""The life cycle every relational store of an engine shares: opened (its database created and
migrated to head) before use, closed at the end, opened again if need be, and a clear error
when used while closed. A store subclasses `MigratedStore` and names what it is and how it
migrates; the tables and queries stay its own."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from sqlalchemy import Connection, Engine

from kiln.core.clock import Clock, SystemClock
from kiln.db.engines import FOREIGN_KEYS, SYNCHRONOUS_FULL, WAL, open_migrated


class MigratedStore:
    """`what` names the store in errors; `upgrade` migrates a connection to head;
    `sqlite_pragmas` are set on every SQLite connection (foreign keys, WAL, full sync)."""

    what: ClassVar[str]
    sqlite_pragmas: ClassVar[Sequence[str]] = (FOREIGN_KEYS, WAL, SYNCHRONOUS_FULL)

    def __init__(self, url: str, *, clock: Clock | None = None) -> None:
        self.url = url
        self._clock: Clock = clock or SystemClock()
        self._engine: Engine | None = None

    @staticmethod
    def upgrade(conn: Connection) -> None:
        raise NotImplementedError

    def open(self) -> None:
        """Create the engine and migrate to head; a no-op when open."""
        if self._engine is not None:
            return
        upgrade: Callable[[Connection], None] = type(self).upgrade
        self._engine = open_migrated(
            self.url, what=self.what, upgrade=upgrade, sqlite_pragmas=self.sqlite_pragmas
        )

    def close(self) -> None:
        """Release the database connections; a no-op when not open."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError(
                f"the {self.what} is not open: call {type(self).__name__}.open() first"
            )
        return self._engine
