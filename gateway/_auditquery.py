"""The read side of the access log: searches, statistics and raw entries.

Reads use their own SQLite connection (WAL lets them run beside the writer)
and run in a worker thread, so a large search never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ._auditlog import SignedCheckpoint, SqliteAccessLog
from ._merkle_store import SqliteNodeStore

__all__ = ["AccessQuery", "AuditReader", "LogProofs", "StoredRecord", "UsageStats"]

_T = TypeVar("_T")
# Columns a search may filter on by equality; fixed names, never caller input.
_FILTER_COLUMNS = (
    "consumer",
    "provider",
    "resource_code",
    "holder_id_hash",
    "matter_code",
    "outcome",
)


@dataclass(frozen=True, slots=True)
class AccessQuery:
    """Filters of a search; empty strings match everything. Times are ISO 8601 UTC."""

    consumer: str = ""
    provider: str = ""
    resource_code: str = ""
    holder_id_hash: str = ""
    matter_code: str = ""
    outcome: str = ""
    start_time: str = ""
    end_time: str = ""
    # Directory change events share the log; searches and stats of accesses skip them.
    include_directory_events: bool = False

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        values: list[Any] = []
        if not self.include_directory_events:
            clauses.append("method IS NOT 'DirectoryEvent'")
        for column in _FILTER_COLUMNS:
            value = getattr(self, column)
            if value:
                clauses.append(f"{column} = ?")
                values.append(value)
        if self.start_time:
            clauses.append("time >= ?")
            values.append(self.start_time)
        if self.end_time:
            clauses.append("time < ?")
            values.append(self.end_time)
        return (" AND ".join(clauses) or "1 = 1"), values


@dataclass(frozen=True, slots=True)
class StoredRecord:
    index: int
    leaf: bytes


def _stored(index: int, leaf: object) -> StoredRecord:
    # A leaf edited as TEXT (or anything but a BLOB) under the running gateway.
    if not isinstance(leaf, bytes):
        raise LookupError(f"entry {index} is not stored as bytes")
    return StoredRecord(int(index), leaf)


@dataclass(frozen=True, slots=True)
class UsageStats:
    total: int
    by_consumer: Sequence[tuple[str, int]]
    by_provider: Sequence[tuple[str, int]]
    by_resource: Sequence[tuple[str, int]]
    by_outcome: Sequence[tuple[str, int]]
    by_day: Sequence[tuple[str, int]]
    latency_p50_ms: float
    latency_p90_ms: float
    latency_p99_ms: float


class AuditReader:
    """Queries over the committed part of the access log."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # The writer created the file; read-only here, and only through `_run`.
            self._conn = sqlite3.connect(
                f"file:{self._path}?mode=ro", uri=True, check_same_thread=False
            )
            self._conn.execute("PRAGMA busy_timeout = 5000")
        return self._conn

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        def locked() -> _T:
            with self._lock:
                return work(self._connection())

        return await asyncio.to_thread(locked)

    async def close(self) -> None:
        def close() -> None:
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        await asyncio.to_thread(close)

    async def search(
        self, query: AccessQuery, after_index: int, limit: int, *, before_index: int = 2**63 - 1
    ) -> list[StoredRecord]:
        """Up to `limit` records matching `query` with after_index < index < before_index."""
        where, values = query.where()

        def work(conn: sqlite3.Connection) -> list[StoredRecord]:
            rows = conn.execute(
                f"SELECT idx, leaf FROM access_log WHERE idx > ? AND idx < ? AND {where} "
                "ORDER BY idx LIMIT ?",
                [after_index, before_index, *values, limit],
            )
            return [_stored(i, leaf) for i, leaf in rows]

        return await self._run(work)

    async def size(self) -> int:
        """Committed entries (one past the highest index)."""

        def work(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT max(idx) FROM access_log").fetchone()
            return 0 if row[0] is None else int(row[0]) + 1

        return await self._run(work)

    async def entries(self, start: int, end: int) -> list[StoredRecord]:
        def work(conn: sqlite3.Connection) -> list[StoredRecord]:
            rows = conn.execute(
                "SELECT idx, leaf FROM access_log WHERE idx >= ? AND idx < ? ORDER BY idx",
                (start, end),
            )
            return [_stored(i, leaf) for i, leaf in rows]

        return await self._run(work)

    async def entry(self, index: int) -> StoredRecord | None:
        found = await self.entries(index, index + 1)
        return found[0] if found else None

    async def last_directory_event_seq(self) -> int:
        """The highest directory event sequence number already in the log (0 if none)."""

        def work(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT leaf FROM access_log WHERE method = 'DirectoryEvent' "
                "ORDER BY idx DESC LIMIT 1"
            ).fetchone()
            return 0 if row is None else int(json.loads(row[0])["event"]["seq"])

        return await self._run(work)

    async def index_of_leaf_hash(self, leaf_hash: bytes) -> int | None:
        def work(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(
                "SELECT idx FROM access_log WHERE leaf_hash = ? ORDER BY idx LIMIT 1", (leaf_hash,)
            ).fetchone()
            return None if row is None else int(row[0])

        return await self._run(work)

    async def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return await self._run(
            lambda conn: SqliteNodeStore(conn, create_table=False).inclusion_proof(index, size)
        )

    async def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return await self._run(
            lambda conn: SqliteNodeStore(conn, create_table=False).consistency_proof(
                old_size, new_size
            )
        )

    async def root(self, size: int) -> bytes:
        """Root of the stored tree of the first `size` entries."""
        return await self._run(lambda conn: SqliteNodeStore(conn, create_table=False).root(size))

    async def usage_stats(self, query: AccessQuery) -> UsageStats:
        where, values = query.where()

        def work(conn: sqlite3.Connection) -> UsageStats:
            def grouped(expression: str) -> list[tuple[str, int]]:
                rows = conn.execute(
                    f"SELECT {expression} AS k, COUNT(*) FROM access_log WHERE {where} "
                    "GROUP BY k ORDER BY COUNT(*) DESC, k",
                    values,
                )
                return [(str(k or ""), int(n)) for k, n in rows]

            count = conn.execute(f"SELECT COUNT(*) FROM access_log WHERE {where}", values)
            total = int(count.fetchone()[0])

            # Refusals outside the exchange (directory, audit) have no latency: counted
            # as 0 ms they would drag every percentile down.
            timed_where = f"{where} AND latency_us IS NOT NULL"
            timed = int(
                conn.execute(
                    f"SELECT COUNT(*) FROM access_log WHERE {timed_where}", values
                ).fetchone()[0]
            )

            def percentile(q: float) -> float:
                if timed == 0:
                    return 0.0
                offset = min(timed - 1, int(q * timed))
                row = conn.execute(
                    f"SELECT latency_us FROM access_log WHERE {timed_where} "
                    "ORDER BY latency_us LIMIT 1 OFFSET ?",
                    [*values, offset],
                ).fetchone()
                return float(row[0]) / 1000.0

            outcome = "CASE WHEN outcome = 'DENIED' THEN 'DENIED:' || reason ELSE outcome END"
            return UsageStats(
                total=total,
                by_consumer=grouped("consumer"),
                by_provider=grouped("provider"),
                by_resource=grouped("resource_code"),
                by_outcome=grouped("outcome")
                + [row for row in grouped(outcome) if row[0].startswith("DENIED:")],
                by_day=grouped("substr(time, 1, 10)"),
                latency_p50_ms=percentile(0.50),
                latency_p90_ms=percentile(0.90),
                latency_p99_ms=percentile(0.99),
            )

        return await self._run(work)


class LogProofs:
    """Checkpoints from the writer, proofs from the read side (a `ProofSource`)."""

    def __init__(self, log: SqliteAccessLog, reader: AuditReader) -> None:
        self._log = log
        self._reader = reader

    @property
    def verifier_key(self) -> str:
        return self._log.verifier_key

    async def checkpoint(self, *, refresh: bool) -> SignedCheckpoint:
        latest = self._log.latest_checkpoint
        if refresh or latest is None:
            return await self._log.publish_checkpoint()
        return latest

    async def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return await self._reader.inclusion_proof(index, size)

    async def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return await self._reader.consistency_proof(old_size, new_size)

    async def root(self, size: int) -> bytes:
        return await self._reader.root(size)
