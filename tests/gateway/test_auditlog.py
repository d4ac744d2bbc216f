from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
import rfc8785
from govshare.gateway._auditlog import (
    GENESIS,
    AccessLog,
    AccessLogError,
    SqliteAccessLog,
    leaf_hash,
    verify_hash_chain,
)


def record(i: int) -> dict[str, object]:
    return {
        "time": f"2025-01-01T00:00:{i % 60:02d}Z",
        "consumer": "spiffe://gov/dept/civil-affairs",
        "provider": "spiffe://gov/dept/public-security",
        "resource_code": "RES-001",
        "outcome": "ALLOWED" if i % 3 else "DENIED",
        "reason": None if i % 3 else "GRANT_REQUIRED",
        "request_id": f"req-{i}",
        "holder_id_hash": f"h{i:04d}",
        "fields": ["name", "birth_date"],
        "nested": {"b": 1, "a": True, "ç": "中文"},
    }


@contextmanager
def db(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        yield conn


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
async def log(path: Path) -> AsyncIterator[SqliteAccessLog]:
    log = SqliteAccessLog(path)
    await log.open()
    yield log
    await log.close()


async def fill(path: Path, n: int) -> None:
    log = SqliteAccessLog(path)
    await log.open()
    pending = [log.append(record(i)) for i in range(n)]
    await asyncio.gather(*(p.wait() for p in pending))
    await log.close()


class TestAppendIndices:
    """append() hands out contiguous 0-based indices in call order, synchronously."""

    async def test_indices_follow_call_order(self, log: SqliteAccessLog) -> None:
        """Indices are 0..n-1 in call order and size counts them before any commit."""
        pending = [log.append(record(i)) for i in range(10)]
        assert [p.index for p in pending] == list(range(10))
        assert log.size == 10
        await asyncio.gather(*(p.wait() for p in pending))

    async def test_implements_protocol(self, log: SqliteAccessLog) -> None:
        """SqliteAccessLog satisfies the AccessLog protocol."""
        typed: AccessLog = log
        assert typed.size == 0


class TestDurableRows:
    """Once wait() returns, the row is in the database with the canonical leaf and hashes."""

    async def test_rows_visible_to_another_connection(
        self, log: SqliteAccessLog, path: Path
    ) -> None:
        """Each awaited record is readable elsewhere with leaf, leaf hash and chain hash."""
        pending = [log.append(record(i)) for i in range(5)]
        for p in pending:
            await p.wait()
        with db(path) as conn:
            rows = conn.execute(
                "SELECT idx, leaf, leaf_hash, chain_hash FROM access_log ORDER BY idx"
            ).fetchall()
        head = GENESIS
        for i, (idx, leaf, lh, ch) in enumerate(rows):
            assert idx == i
            assert leaf == pending[i].leaf == rfc8785.dumps(record(i))
            assert lh == hashlib.sha256(b"\x00" + leaf).digest() == leaf_hash(leaf)
            head = hashlib.sha256(head + lh).digest()
            assert ch == head
        assert len(rows) == 5

    async def test_query_columns_extracted(self, log: SqliteAccessLog, path: Path) -> None:
        """Known record fields land in queryable columns; missing ones are NULL."""
        await log.append(record(0)).wait()
        await log.append({"request_id": "only-this"}).wait()
        with db(path) as conn:
            rows = conn.execute(
                "SELECT consumer, outcome, reason, request_id, holder_id_hash, created_at"
                " FROM access_log ORDER BY idx"
            ).fetchall()
        assert rows[0][:5] == (
            "spiffe://gov/dept/civil-affairs",
            "DENIED",
            "GRANT_REQUIRED",
            "req-0",
            "h0000",
        )
        assert rows[0][5].endswith("Z")
        assert rows[1][:5] == (None, None, None, "only-this", None)


class TestGroupCommit:
    """Concurrent appends share transactions."""

    async def test_many_concurrent_appends_batch(self, log: SqliteAccessLog, path: Path) -> None:
        """2,000 concurrent appends commit in fewer transactions than records."""

        async def one(i: int) -> int:
            p = log.append(record(i))
            await p.wait()
            return p.index

        indices = await asyncio.gather(*(one(i) for i in range(2000)))
        assert sorted(indices) == list(range(2000))
        assert 0 < log.commits < 2000
        assert 2000 / log.commits > 1
        assert verify_hash_chain(path).size == 2000

    async def test_max_batch_bounds_transaction_size(self, path: Path) -> None:
        """No transaction holds more than max_batch records."""
        log = SqliteAccessLog(path, max_batch=10)
        await log.open()
        pending = [log.append(record(i)) for i in range(100)]
        await asyncio.gather(*(p.wait() for p in pending))
        await log.close()
        assert log.commits >= 10


class TestReopen:
    """A reopened log continues the same chain."""

    async def test_reopen_continues_chain(self, path: Path) -> None:
        """Size and head are recovered, new indices follow on, and the chain verifies."""
        await fill(path, 7)
        log = SqliteAccessLog(path)
        await log.open()
        assert log.size == 7
        p = log.append(record(7))
        assert p.index == 7
        await p.wait()
        await log.close()
        result = verify_hash_chain(path)
        assert result.ok, result.problem
        assert result.size == 8
        assert result.first_bad_index is None

    async def test_empty_log_verifies(self, path: Path) -> None:
        """A freshly created log has size 0 and verifies with the zero head."""
        await fill(path, 0)
        result = verify_hash_chain(path)
        assert (result.ok, result.size, result.head) == (True, 0, GENESIS)


class TestTamperDetection:
    """verify_hash_chain names the first index where stored rows stop matching."""

    @pytest.fixture
    async def filled(self, path: Path) -> Path:
        await fill(path, 10)
        assert verify_hash_chain(path).ok
        return path

    def test_changed_leaf_byte(self, filled: Path) -> None:
        """Flipping one byte of a leaf fails at that leaf."""
        with db(filled) as conn:
            (leaf,) = conn.execute("SELECT leaf FROM access_log WHERE idx = 4").fetchone()
            forged = bytearray(leaf)
            forged[10] ^= 0x01
            conn.execute("UPDATE access_log SET leaf = ? WHERE idx = 4", (bytes(forged),))
        result = verify_hash_chain(filled)
        assert (result.ok, result.first_bad_index, result.size) == (False, 4, 4)
        assert "leaf 4" in result.problem

    def test_deleted_row(self, filled: Path) -> None:
        """Deleting a row fails at the missing index."""
        with db(filled) as conn:
            conn.execute("DELETE FROM access_log WHERE idx = 3")
        result = verify_hash_chain(filled)
        assert (result.ok, result.first_bad_index) == (False, 3)
        assert "missing" in result.problem

    def test_swapped_leaves(self, filled: Path) -> None:
        """Swapping two rows' leaves fails at the earlier row."""
        with db(filled) as conn:
            conn.execute(
                "UPDATE access_log SET leaf = CASE idx"
                " WHEN 2 THEN (SELECT leaf FROM access_log WHERE idx = 6)"
                " ELSE (SELECT leaf FROM access_log WHERE idx = 2) END WHERE idx IN (2, 6)"
            )
        result = verify_hash_chain(filled)
        assert (result.ok, result.first_bad_index) == (False, 2)

    def test_reordered_rows_with_their_hashes(self, filled: Path) -> None:
        """Moving whole rows (leaf and both hashes) to other indices breaks the chain."""
        with db(filled) as conn:
            conn.execute("UPDATE access_log SET idx = -1 WHERE idx = 5")
            conn.execute("UPDATE access_log SET idx = 5 WHERE idx = 8")
            conn.execute("UPDATE access_log SET idx = 8 WHERE idx = -1")
        result = verify_hash_chain(filled)
        assert (result.ok, result.first_bad_index) == (False, 5)
        assert "chain hash 5" in result.problem

    def test_stored_leaf_hash_changed(self, filled: Path) -> None:
        """A stored leaf hash that differs from the leaf fails at that row."""
        with db(filled) as conn:
            conn.execute("UPDATE access_log SET leaf_hash = zeroblob(32) WHERE idx = 0")
        assert verify_hash_chain(filled).first_bad_index == 0

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file is reported, not created."""
        missing = tmp_path / "nope.db"
        assert not verify_hash_chain(missing).ok
        assert not missing.exists()


class TestClose:
    """close() makes every pending append durable before returning."""

    async def test_close_flushes_pending(self, path: Path) -> None:
        """Appends not yet awaited are committed and resolved by close()."""
        log = SqliteAccessLog(path)
        await log.open()
        pending = [log.append(record(i)) for i in range(50)]
        await log.close()
        assert all(p.durable.done() and p.durable.exception() is None for p in pending)
        with db(path) as conn:
            assert conn.execute("SELECT count(*) FROM access_log").fetchone() == (50,)

    async def test_append_after_close_raises(self, path: Path) -> None:
        """A closed log refuses appends."""
        log = SqliteAccessLog(path)
        await log.open()
        await log.close()
        with pytest.raises(AccessLogError, match="closed"):
            log.append(record(0))

    def test_append_before_open_raises(self, path: Path) -> None:
        """A log that was never opened refuses appends."""
        with pytest.raises(AccessLogError, match="not open"):
            SqliteAccessLog(path).append(record(0))


class TestCommitFailure:
    """A failed commit fails its waiters and stops the log instead of leaving a gap."""

    async def test_dropped_table_fails_batch_and_later_appends(self, path: Path) -> None:
        """Pending futures get AccessLogError and later appends raise it."""
        log = SqliteAccessLog(path)
        await log.open()
        await log.append(record(0)).wait()
        with db(path) as conn:
            conn.execute("DROP TABLE access_log")
        pending = [log.append(record(i)) for i in range(1, 20)]
        results = await asyncio.gather(*(p.wait() for p in pending), return_exceptions=True)
        assert all(isinstance(r, AccessLogError) for r in results)
        assert "index 1" in str(results[0])
        with pytest.raises(AccessLogError, match="commit failed"):
            log.append(record(20))
        await log.close()

    async def test_cancelled_waiter_does_not_cancel_commit(self, log: SqliteAccessLog) -> None:
        """Cancelling one wait() leaves the durability future to resolve normally."""
        p = log.append(record(0))
        waiter = asyncio.ensure_future(p.wait())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await p.durable
        assert not p.durable.cancelled()


class TestOpenErrors:
    """open() reports an unusable location as AccessLogError."""

    async def test_missing_directory(self, tmp_path: Path) -> None:
        """A path in a missing directory fails with AccessLogError."""
        log = SqliteAccessLog(tmp_path / "no" / "such" / "audit.db")
        with pytest.raises(AccessLogError, match="cannot open"):
            await log.open()
