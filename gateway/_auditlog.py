"""Durable, tamper-evident access log: a SHA-256 hash chain in SQLite with group commit.

A later issue swaps the chain for an RFC 6962 Merkle log behind the same `AccessLog`
interface; the stored leaf hash is already the RFC 6962 leaf hash so it can be reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, cast

import rfc8785

__all__ = [
    "GENESIS",
    "AccessLog",
    "AccessLogError",
    "ChainVerification",
    "PendingAppend",
    "SqliteAccessLog",
    "leaf_hash",
    "verify_hash_chain",
]

GENESIS: Final = bytes(32)
# Queryable copies of record fields; never hashed, the leaf stays the only truth.
_COLUMNS: Final = (
    "time",
    "consumer",
    "provider",
    "resource_code",
    "outcome",
    "reason",
    "request_id",
    "holder_id_hash",
)
_SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS access_log (
    idx INTEGER PRIMARY KEY,
    leaf BLOB NOT NULL,
    leaf_hash BLOB NOT NULL,
    chain_hash BLOB NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    {", ".join(_COLUMNS)}
);
CREATE INDEX IF NOT EXISTS access_log_time ON access_log(time);
CREATE INDEX IF NOT EXISTS access_log_consumer ON access_log(consumer, idx);
CREATE INDEX IF NOT EXISTS access_log_provider ON access_log(provider, idx);
CREATE INDEX IF NOT EXISTS access_log_resource ON access_log(resource_code, idx);
CREATE INDEX IF NOT EXISTS access_log_holder ON access_log(holder_id_hash, idx);
"""
_INSERT: Final = (
    f"INSERT INTO access_log (idx, leaf, leaf_hash, chain_hash, {', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join('?' * (4 + len(_COLUMNS)))})"
)


class AccessLogError(Exception):
    """The access log cannot accept or persist records."""


def leaf_hash(leaf: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || leaf)."""
    return hashlib.sha256(b"\x00" + leaf).digest()


@dataclass(frozen=True, slots=True)
class PendingAppend:
    """A record with its final index, durable once `durable` resolves."""

    index: int
    leaf: bytes
    durable: asyncio.Future[None]

    async def wait(self) -> None:
        # Shielded: a cancelled request must not cancel the commit bookkeeping.
        await asyncio.shield(self.durable)


class AccessLog(Protocol):
    async def open(self) -> None: ...
    def append(self, record: Mapping[str, object]) -> PendingAppend: ...
    async def close(self) -> None: ...
    @property
    def size(self) -> int: ...


_Item = tuple[int, bytes, tuple[object, ...], asyncio.Future[None]]


class SqliteAccessLog:
    """`AccessLog` on one SQLite file; one writer thread group-commits queued records."""

    def __init__(self, path: Path, *, max_batch: int = 1024) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._path = path
        self._max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._size = 0
        self._head = GENESIS
        self._opened = False
        self._closing = False
        self._failed: AccessLogError | None = None
        self.commits = 0  # transactions committed; for observability and tests

    @property
    def size(self) -> int:
        """Records appended so far (indices handed out), including ones not yet durable."""
        return self._size

    async def open(self) -> None:
        if self._opened:
            raise AccessLogError("access log already opened")
        self._opened = True
        try:
            conn, self._size, self._head = await asyncio.to_thread(self._prepare)
        except sqlite3.Error as exc:
            raise AccessLogError(f"cannot open access log {self._path}: {exc}") from exc
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._run, args=(conn,), name="govshare-access-log", daemon=True
        )
        self._thread.start()

    def _prepare(self) -> tuple[sqlite3.Connection, int, bytes]:
        # check_same_thread=False: created here, then used only by the writer thread.
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise AccessLogError(f"access log needs WAL journal mode, got {mode!r}")
            conn.execute("PRAGMA synchronous = FULL")
            conn.executescript(_SCHEMA)
            row = conn.execute(
                "SELECT idx, chain_hash FROM access_log ORDER BY idx DESC LIMIT 1"
            ).fetchone()
        except BaseException:
            conn.close()
            raise
        # Only the tail is read so opening stays O(1); verify_hash_chain checks the rest.
        return (conn, 0, GENESIS) if row is None else (conn, row[0] + 1, bytes(row[1]))

    def append(self, record: Mapping[str, object]) -> PendingAppend:
        """Queue `record`; its index is fixed now, durability follows via the returned future.

        Must be called from the event loop thread that opened the log, which makes index
        assignment race-free without a lock.
        """
        loop = self._loop
        if loop is None:
            raise AccessLogError("access log is not open")
        # rfc8785 only accepts a real dict, not any Mapping.
        leaf = rfc8785.dumps(cast("dict[str, Any]", dict(record)))
        columns = tuple(_column_value(record.get(c)) for c in _COLUMNS)
        future: asyncio.Future[None] = loop.create_future()
        with self._cond:
            # Checked under the lock so nothing can slip in after the writer has stopped.
            if (failed := self._failed) is not None:
                raise AccessLogError(*failed.args) from failed.__cause__
            if self._closing:
                raise AccessLogError("access log is closed")
            index = self._size
            self._size = index + 1
            self._queue.append((index, leaf, columns, future))
            self._cond.notify()
        return PendingAppend(index, leaf, future)

    async def close(self) -> None:
        """Commit everything queued, then stop. Commit failures go to the pending futures."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        thread = self._thread
        if thread is not None:
            # The writer schedules its last resolutions before it ends, and the loop runs
            # callbacks in order, so every pending future is settled when this returns.
            await asyncio.to_thread(thread.join)
            self._thread = None

    def _run(self, conn: sqlite3.Connection) -> None:
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._closing:
                        self._cond.wait()
                    if not self._queue:
                        return
                    n = min(len(self._queue), self._max_batch)
                    batch = [self._queue.popleft() for _ in range(n)]
                try:
                    self._commit(conn, batch)
                except Exception as exc:  # any failure stops the log: no gaps
                    self._fail(batch, exc)
                    return
                self._resolve(batch, None)
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[_Item]) -> None:
        head = self._head
        rows = []
        for index, leaf, columns, _ in batch:
            lh = leaf_hash(leaf)
            head = hashlib.sha256(head + lh).digest()
            rows.append((index, leaf, lh, head, *columns))
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_INSERT, rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._head = head
        self.commits += 1

    def _fail(self, batch: list[_Item], exc: Exception) -> None:
        first = batch[0][0]
        error = AccessLogError(f"access log commit failed at index {first}: {exc}")
        error.__cause__ = exc
        with self._cond:
            self._failed = error
            # Later records would leave a gap in the chain: fail them as well.
            batch.extend(self._queue)
            self._queue.clear()
        self._resolve(batch, error)

    def _resolve(self, batch: list[_Item], error: AccessLogError | None) -> None:
        futures = [item[3] for item in batch]
        assert self._loop is not None
        # RuntimeError: the event loop is already closed, so nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(_settle, futures, error)


def _settle(futures: list[asyncio.Future[None]], error: AccessLogError | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            # A fresh exception per waiter so tracebacks do not pile up on a shared one.
            exc = AccessLogError(*error.args)
            exc.__cause__ = error.__cause__
            future.set_exception(exc)


def _column_value(value: object) -> object:
    return value if isinstance(value, str | int | float) else None


@dataclass(frozen=True, slots=True)
class ChainVerification:
    """Outcome of `verify_hash_chain`; `head` is the last chain hash checked."""

    ok: bool
    size: int
    first_bad_index: int | None
    problem: str
    head: bytes = GENESIS


def verify_hash_chain(path: Path) -> ChainVerification:
    """Recompute every leaf hash and the chain from the stored leaves, streaming.

    A plain chain proves internal consistency only; an attacker who rewrites every
    later row is caught only by comparing `head` with one published earlier.
    """
    if not path.is_file():
        return ChainVerification(False, 0, None, f"no such file: {path}")
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        try:
            rows = conn.execute(
                "SELECT idx, leaf, leaf_hash, chain_hash FROM access_log ORDER BY idx"
            )
        except sqlite3.DatabaseError as exc:
            return ChainVerification(False, 0, None, f"cannot read access_log: {exc}")
        head = GENESIS
        expected = 0
        for idx, leaf, stored_leaf_hash, stored_chain_hash in rows:
            if idx != expected:
                problem = f"row {expected} is missing (next row is {idx})"
            elif not isinstance(leaf, bytes):
                problem = f"leaf {idx} is not a BLOB"
            elif (lh := leaf_hash(leaf)) != stored_leaf_hash:
                problem = f"leaf {idx} does not match its stored leaf hash"
            elif (chained := hashlib.sha256(head + lh).digest()) != stored_chain_hash:
                problem = f"chain hash {idx} does not match the chain recomputed from the leaves"
            else:
                head = chained
                expected += 1
                continue
            return ChainVerification(False, expected, expected, problem, head)
        return ChainVerification(True, expected, None, "", head)
    finally:
        conn.close()
