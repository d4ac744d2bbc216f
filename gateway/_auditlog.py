"""Durable transparency log of access records: an RFC 6962 Merkle tree in SQLite.

One writer thread group-commits queued records: in one transaction it inserts the
leaves and every newly completed perfect-subtree hash (`merkle_nodes`), so proofs
never re-read the log. After each commit the in-memory frontier gives the new root;
checkpoints (C2SP signed notes over size and root) are signed and stored by the
same thread, on demand or at an interval driven by the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from ._checkpoint import Checkpoint, CheckpointError, NoteSigner, open_signed_note
from ._evidence import canonical_json
from ._merkle import EMPTY_ROOT, MerkleFrontier, leaf_hash
from ._merkle_store import SqliteNodeStore
from ._sqlite_batch import insert_rows

__all__ = [
    "QUERY_COLUMNS",
    "SCHEMA_VERSION",
    "AccessLog",
    "AccessLogError",
    "PendingAppend",
    "SignedCheckpoint",
    "SqliteAccessLog",
    "query_columns",
]

# Format 2: Merkle nodes and checkpoints (format 1 was the walking skeleton's chain).
SCHEMA_VERSION: Final = 2
# Queryable copies of record fields; never hashed, the leaf stays the only truth.
QUERY_COLUMNS: Final = (
    "time",
    "consumer",
    "provider",
    "resource_code",
    "outcome",
    "reason",
    "request_id",
    "holder_id_hash",
    "matter_code",
    "method",
    "latency_us",
)
_SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS access_log (
    idx INTEGER PRIMARY KEY,
    leaf BLOB NOT NULL,
    leaf_hash BLOB NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    {", ".join(QUERY_COLUMNS)}
);
CREATE INDEX IF NOT EXISTS access_log_time ON access_log(time);
CREATE INDEX IF NOT EXISTS access_log_consumer ON access_log(consumer, idx);
CREATE INDEX IF NOT EXISTS access_log_provider ON access_log(provider, idx);
CREATE INDEX IF NOT EXISTS access_log_resource ON access_log(resource_code, idx);
CREATE INDEX IF NOT EXISTS access_log_holder ON access_log(holder_id_hash, idx);
CREATE INDEX IF NOT EXISTS access_log_matter ON access_log(matter_code, idx);
CREATE INDEX IF NOT EXISTS access_log_leaf_hash ON access_log(leaf_hash);
CREATE INDEX IF NOT EXISTS access_log_method ON access_log(method, idx);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS log_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_INSERT_COLUMNS: Final = ("idx", "leaf", "leaf_hash", *QUERY_COLUMNS)
# Appending to a damaged log would bury the damage or sign a fork of what was signed.
_KEEP_FOR_AUDITORS: Final = (
    "keep the file for `govshare audit verify` and start the gateway on a new one"
)


class AccessLogError(Exception):
    """The access log cannot accept or persist records."""


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A published checkpoint: the signed note and what it says."""

    note: str
    origin: str
    size: int
    root: bytes


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
    def expect(self) -> None: ...
    def withdraw(self) -> None: ...
    def append(self, record: Mapping[str, object]) -> PendingAppend: ...
    async def close(self) -> None: ...
    @property
    def size(self) -> int: ...


_Item = tuple[int, bytes, tuple[object, ...], asyncio.Future[None]]


class SqliteAccessLog:
    """`AccessLog` on one SQLite file; one writer thread group-commits queued records."""

    def __init__(
        self,
        path: Path,
        *,
        max_batch: int = 1024,
        commit_window: float = 0.0,
        note_signer: NoteSigner | None = None,
        origin: str = "govshare.local/access-log",
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if not 0.0 <= commit_window <= 60.0:
            raise ValueError("commit_window must be between 0 and 60 seconds")
        self._path = path
        self._max_batch = max_batch
        self._commit_window = commit_window
        self._last_commit = 0.0
        self._expected = 0  # records announced by requests in progress
        self._signer = note_signer
        self._origin = origin
        self._nodes: SqliteNodeStore | None = None
        self._frontier = MerkleFrontier()
        # The durable tree's right edge, snapshot per commit; its root is computed
        # only when asked for (checkpoints), not on every commit (~10 hashes each).
        self._committed_edge: tuple[int, tuple[bytes, ...]] = (0, ())
        self._committed_root: tuple[int, bytes] = (0, EMPTY_ROOT)
        self._checkpoint: SignedCheckpoint | None = None
        self._checkpoint_waiters: list[asyncio.Future[SignedCheckpoint]] = []
        self._cond = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._size = 0
        self._opened = False
        self._closing = False
        self._failed: AccessLogError | None = None
        self._failure: asyncio.Future[AccessLogError] | None = None
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
            conn = await asyncio.to_thread(self._prepare)
        except sqlite3.Error as exc:
            raise AccessLogError(f"cannot open access log {self._path}: {exc}") from exc
        self._loop = asyncio.get_running_loop()
        self._failure = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(conn,), name="govshare-access-log", daemon=True
        )
        self._thread.start()

    def _prepare(self) -> sqlite3.Connection:
        # check_same_thread=False: created here, then used only by the writer thread.
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise AccessLogError(f"access log needs WAL journal mode, got {mode!r}")
            conn.execute("PRAGMA synchronous = FULL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE name = 'access_log'"
            ).fetchone()[0]
            if tables and version != SCHEMA_VERSION:
                raise AccessLogError(
                    f"{self._path} holds access log format {version}, this gateway needs "
                    f"{SCHEMA_VERSION}; keep the old file for its auditors and start a new one"
                )
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._nodes = SqliteNodeStore(conn)
            size = self._stored_size(conn, self._nodes)
            # O(log n) node reads rebuild the frontier: opening stays fast on big logs.
            self._frontier = self._nodes.frontier(size)
            self._committed_edge = (size, self._frontier.nodes)
            self._size = size
            self._checkpoint = self._latest_checkpoint(conn, self._nodes, size)
            if self._signer is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO log_meta (key, value) VALUES ('verifier_key', ?)",
                    (self._signer.verifier_key(),),
                )
        except LookupError as exc:
            conn.close()
            raise AccessLogError(
                f"{self._path}: the Merkle tree is missing nodes ({exc}); {_KEEP_FOR_AUDITORS}"
            ) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _stored_size(self, conn: sqlite3.Connection, nodes: SqliteNodeStore) -> int:
        """Entries in the file, after checking that leaves and tree agree.

        A writer resuming on a damaged file would either fail every commit (an
        index already in the tree) or sign a tree that forks from one it signed.
        """
        row = conn.execute("SELECT max(idx) FROM access_log").fetchone()
        size = 0 if row[0] is None else int(row[0]) + 1
        tree_size = nodes.size
        if size != tree_size:
            raise AccessLogError(
                f"{self._path} holds {size} entries but its Merkle tree {tree_size} leaves: "
                f"the file was altered or partly restored; {_KEEP_FOR_AUDITORS}"
            )
        # count(*) scans the smallest index (about 0.1 s per 200k entries from a cold
        # cache); it is the only way to see an entry deleted from the middle.
        count = int(conn.execute("SELECT count(*) FROM access_log").fetchone()[0])
        if count != size:
            raise AccessLogError(
                f"{self._path} holds {count} entries under indices 0 to {size - 1}: "
                f"{size - count} were deleted; {_KEEP_FOR_AUDITORS}"
            )
        # A node left over from a cut tail would fail every later commit that
        # completes it again; one index seek per level finds any.
        for level in range(1, 64):
            row = conn.execute(
                "SELECT max(idx) FROM merkle_nodes WHERE level = ?", (level,)
            ).fetchone()
            if row[0] is None:
                break
            if (int(row[0]) + 1) << level > size:
                raise AccessLogError(
                    f"{self._path} holds {size} entries but a Merkle tree node covers entries "
                    f"up to {((int(row[0]) + 1) << level) - 1}: its tail was cut; "
                    f"{_KEEP_FOR_AUDITORS}"
                )
        return size

    def _latest_checkpoint(
        self, conn: sqlite3.Connection, nodes: SqliteNodeStore, size: int
    ) -> SignedCheckpoint | None:
        """The latest stored checkpoint, checked against the tree it was signed over."""
        latest = conn.execute(
            "SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        if latest is None:
            return None
        checkpoint = SignedCheckpoint(latest[2], self._origin, int(latest[0]), bytes(latest[1]))
        if self._signer is not None:
            # Signing on under another key or origin would leave a log that verifies
            # under neither the pinned key nor the new one.
            try:
                open_signed_note(checkpoint.note, [self._signer.verifier()], origin=self._origin)
            except CheckpointError as error:
                raise AccessLogError(
                    f"{self._path}: its latest checkpoint does not verify under this "
                    f"gateway's checkpoint key and origin {self._origin!r} ({error}); restore "
                    f"the key file it was signed with, or {_KEEP_FOR_AUDITORS}"
                ) from None
        if checkpoint.size > size:
            raise AccessLogError(
                f"{self._path} holds {size} entries but its latest signed checkpoint covers "
                f"{checkpoint.size}: the file was restored from an older copy or its tail "
                f"was cut; {_KEEP_FOR_AUDITORS}"
            )
        if nodes.frontier(checkpoint.size).root() != checkpoint.root:
            raise AccessLogError(
                f"{self._path}: the tree of its first {checkpoint.size} entries no longer has "
                f"the root of the signed checkpoint at that size; {_KEEP_FOR_AUDITORS}"
            )
        return checkpoint

    @property
    def committed(self) -> tuple[int, bytes]:
        """Size and root hash of the durable part of the log."""
        with self._cond:
            size, nodes = self._committed_edge
            known = self._committed_root
        if known[0] == size:
            return known
        root = MerkleFrontier.from_nodes(size, nodes).root()
        with self._cond:
            if self._committed_root[0] < size:
                self._committed_root = (size, root)
        return size, root

    @property
    def latest_checkpoint(self) -> SignedCheckpoint | None:
        with self._cond:
            return self._checkpoint

    @property
    def verifier_key(self) -> str:
        """The note verifier key auditors pin (`name+hash+key`)."""
        if self._signer is None:
            raise AccessLogError("this access log signs no checkpoints")
        return self._signer.verifier_key()

    async def publish_checkpoint(self) -> SignedCheckpoint:
        """Sign and store a checkpoint over everything committed so far."""
        loop = self._loop
        if loop is None or self._signer is None:
            raise AccessLogError("access log is not open or has no checkpoint signer")
        future: asyncio.Future[SignedCheckpoint] = loop.create_future()
        with self._cond:
            if (failed := self._failed) is not None:
                raise AccessLogError(*failed.args) from failed.__cause__
            if self._closing:
                raise AccessLogError("access log is closed")
            self._checkpoint_waiters.append(future)
            self._cond.notify()
        return await asyncio.shield(future)

    @property
    def expected(self) -> int:
        """Records announced with `expect` and not yet appended or withdrawn."""
        with self._cond:
            return self._expected

    def expect(self) -> None:
        """Announce that a request in progress will append a record (loop thread only).

        Purely a hint for grouping commits: `append` consumes one announcement, and
        a request that ends without appending calls `withdraw`.
        """
        with self._cond:
            self._expected += 1

    def withdraw(self) -> None:
        """Take back one `expect` whose record will not come."""
        with self._cond:
            if self._expected > 0:
                self._expected -= 1

    def append(self, record: Mapping[str, object]) -> PendingAppend:
        """Queue `record`; its index is fixed now, durability follows via the returned future.

        Must be called from the event loop thread that opened the log, which makes index
        assignment race-free without a lock.
        """
        loop = self._loop
        if loop is None:
            raise AccessLogError("access log is not open")
        # rfc8785 only accepts a real dict, not any Mapping.
        leaf = canonical_json(record if type(record) is dict else dict(record))
        columns = query_columns(record)
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
            if self._expected > 0:
                self._expected -= 1
            # The writer waits on the condition only for a first record (or for
            # a full batch, which max_batch makes rare).
            if len(self._queue) in (1, self._max_batch):
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
                    while not self._queue and not self._checkpoint_waiters and not self._closing:
                        self._cond.wait()
                    if not self._queue and not self._checkpoint_waiters:
                        return
                    self._let_expected_records_join()
                    n = min(len(self._queue), self._max_batch)
                    batch = [self._queue.popleft() for _ in range(n)]
                    # A checkpoint waits until the queue is drained, so it covers
                    # everything appended before it was asked for.
                    waiters = [] if self._queue else self._take_checkpoint_waiters()
                if batch:
                    try:
                        self._commit(conn, batch)
                    except Exception as exc:  # any failure stops the log: no gaps
                        self._fail(batch, exc)
                        return
                    self._resolve(batch, None)
                if waiters:
                    self._publish(conn, waiters)
        finally:
            conn.close()

    def _let_expected_records_join(self) -> None:
        """Wait (under the lock) for records on their way, until `commit_window` after
        the previous commit began.

        Each commit costs the same fixed work (pages of nine B-trees written to the
        WAL, an fsync) whether it carries one record or a hundred. Under concurrent
        load records otherwise trickle in one commit each. Waiting only while
        requests have announced a record (`expect`) keeps a lone caller from ever
        waiting: it commits at once.
        """
        if self._expected == 0:
            return
        deadline = self._last_commit + self._commit_window
        while self._queue and len(self._queue) < self._max_batch and not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._cond.wait(remaining)

    def _take_checkpoint_waiters(self) -> list[asyncio.Future[SignedCheckpoint]]:
        waiters, self._checkpoint_waiters = self._checkpoint_waiters, []
        return waiters

    def _commit(self, conn: sqlite3.Connection, batch: list[_Item]) -> None:
        assert self._nodes is not None
        start = batch[0][0]
        hashes = [leaf_hash(leaf) for _, leaf, _, _ in batch]
        rows = [
            (index, leaf, lh, *columns)
            for (index, leaf, columns, _), lh in zip(batch, hashes, strict=True)
        ]
        self._last_commit = time.monotonic()
        conn.execute("BEGIN IMMEDIATE")
        try:
            insert_rows(conn, "access_log", _INSERT_COLUMNS, rows)
            self._nodes.add_leaf_hashes(start, hashes, right_edge=self._frontier)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._frontier.extend(hashes)
        with self._cond:
            self._committed_edge = (self._frontier.size, self._frontier.nodes)
        self.commits += 1

    def _publish(
        self, conn: sqlite3.Connection, waiters: list[asyncio.Future[SignedCheckpoint]]
    ) -> None:
        assert self._signer is not None
        size, root = self.committed
        current = self.latest_checkpoint
        outcome: SignedCheckpoint | AccessLogError
        try:
            if current is None or current.size != size:
                note = self._signer.sign(Checkpoint(self._origin, size, root).body())
                # Plain INSERT: another note at a signed size is a fork, never a replacement.
                conn.execute(
                    "INSERT INTO checkpoints (size, root, note) VALUES (?, ?, ?)",
                    (size, root, note),
                )
                current = SignedCheckpoint(note, self._origin, size, root)
                with self._cond:
                    self._checkpoint = current
            outcome = current
        except Exception as exc:
            outcome = AccessLogError(f"checkpoint at size {size} failed: {exc}")
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(_settle_checkpoints, waiters, outcome)

    async def failure(self) -> AccessLogError:
        """Wait until a commit has failed, after which every append fails too."""
        if self._failure is None:
            raise AccessLogError("access log is not open")
        return await asyncio.shield(self._failure)

    def _fail(self, batch: list[_Item], exc: Exception) -> None:
        first = batch[0][0]
        error = AccessLogError(f"access log commit failed at index {first}: {exc}")
        error.__cause__ = exc
        with self._cond:
            self._failed = error
            # Later records would leave a gap in the tree: fail them as well.
            batch.extend(self._queue)
            self._queue.clear()
            waiters = self._take_checkpoint_waiters()
        self._resolve(batch, error)
        assert self._loop is not None
        assert self._failure is not None
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(_settle_failure, self._failure, error)
        if waiters:
            assert self._loop is not None
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(_settle_checkpoints, waiters, error)

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


def _settle_failure(failure: asyncio.Future[AccessLogError], error: AccessLogError) -> None:
    if not failure.done():
        failure.set_result(error)


def _settle_checkpoints(
    waiters: list[asyncio.Future[SignedCheckpoint]],
    outcome: SignedCheckpoint | AccessLogError,
) -> None:
    for future in waiters:
        if future.done():
            continue
        if isinstance(outcome, AccessLogError):
            future.set_exception(AccessLogError(*outcome.args))
        else:
            future.set_result(outcome)


def query_columns(record: Mapping[str, object]) -> tuple[object, ...]:
    """The queryable copies of `record`'s fields, in `QUERY_COLUMNS` order, as the
    writer stores them (and `audit verify` recomputes them): scalars as they are,
    anything else NULL."""
    return tuple(map(_column_value, map(record.get, QUERY_COLUMNS)))


def _column_value(value: object) -> object:
    return value if isinstance(value, str | int | float) else None
