from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
import rfc8785
from govshare.gateway import (
    EMPTY_ROOT,
    AccessLog,
    AccessLogError,
    NoteSigner,
    SqliteAccessLog,
    leaf_hash,
    load_or_create_note_signer,
    open_signed_note,
    root_from_leaf_hashes,
    verify_log_file,
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


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> NoteSigner:
    folder = tmp_path_factory.mktemp("note-key")
    return load_or_create_note_signer(folder / "note.pem", "test.local/access-log")


def verify(path: Path, signer: NoteSigner) -> object:
    return verify_log_file(path, signer.verifier_key())


@pytest.fixture
async def log(path: Path) -> AsyncIterator[SqliteAccessLog]:
    log = SqliteAccessLog(path)
    await log.open()
    yield log
    await log.close()


async def fill(path: Path, n: int, signer: NoteSigner | None = None) -> None:
    """Append n records; with a signer, publish a checkpoint after each half."""
    log = SqliteAccessLog(path, note_signer=signer, origin="test.local/access-log")
    await log.open()
    half = n // 2
    for chunk in (range(half), range(half, n)):
        pending = [log.append(record(i)) for i in chunk]
        await asyncio.gather(*(p.wait() for p in pending))
        if signer is not None and n:
            await log.publish_checkpoint()
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
        """Each awaited record is readable elsewhere with its leaf, leaf hash and tree node."""
        pending = [log.append(record(i)) for i in range(5)]
        for p in pending:
            await p.wait()
        with db(path) as conn:
            rows = conn.execute(
                "SELECT a.idx, a.leaf, a.leaf_hash, n.hash FROM access_log a JOIN merkle_nodes n"
                " ON n.level = 0 AND n.idx = a.idx ORDER BY a.idx"
            ).fetchall()
        for i, (idx, leaf, lh, node) in enumerate(rows):
            assert idx == i
            assert leaf == pending[i].leaf == rfc8785.dumps(record(i))
            assert lh == hashlib.sha256(b"\x00" + leaf).digest() == leaf_hash(leaf) == node
        assert len(rows) == 5
        assert log.committed == (5, root_from_leaf_hashes([r[2] for r in rows]))

    async def test_committed_root_follows_every_commit_and_a_reopen(self, path: Path) -> None:
        """The committed size and root match the leaves at each step, whether or not it
        was read in between (the root is computed when asked, then kept), and after a
        reopen of the same file."""
        hashes: list[bytes] = []
        log = SqliteAccessLog(path)
        await log.open()
        try:
            for batch in (1, 2, 5, 1, 8, 3):
                pending = [log.append(record(len(hashes) + i)) for i in range(batch)]
                for p in pending:
                    await p.wait()
                hashes.extend(leaf_hash(p.leaf) for p in pending)
                if batch != 5:  # one step goes unread: the next read must not be stale
                    assert log.committed == (len(hashes), root_from_leaf_hashes(hashes))
                    assert log.committed == (len(hashes), root_from_leaf_hashes(hashes))
        finally:
            await log.close()
        reopened = SqliteAccessLog(path)
        await reopened.open()
        try:
            assert reopened.committed == (len(hashes), root_from_leaf_hashes(hashes))
        finally:
            await reopened.close()

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
        assert log.committed[0] == 2000

    async def test_max_batch_bounds_transaction_size(self, path: Path) -> None:
        """No transaction holds more than max_batch records."""
        log = SqliteAccessLog(path, max_batch=10)
        await log.open()
        pending = [log.append(record(i)) for i in range(100)]
        await asyncio.gather(*(p.wait() for p in pending))
        await log.close()
        assert log.commits >= 10

    async def test_announced_records_trickling_in_share_a_commit(self, path: Path) -> None:
        """20 records announced with expect() and appended 5 ms apart wait for each other
        and share one commit (released by filling max_batch, long before the window
        ends); a record nobody announced before them committed alone."""
        log = SqliteAccessLog(path, commit_window=60, max_batch=20)
        await log.open()
        try:
            await log.append(record(0)).wait()
            assert log.commits == 1
            for _ in range(20):
                log.expect()
            pending = []
            for i in range(1, 21):
                pending.append(log.append(record(i)))
                # Paces the records so that a writer that did not wait for announced
                # records would wake and commit between them; the count does not
                # depend on how long the pause really lasts.
                await asyncio.sleep(0.005)
            # Only a guard against a hang: the window would hold them for a minute.
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in pending)), timeout=30)
            assert log.commits == 2
            assert log.committed[0] == 21
        finally:
            await log.close()

    async def test_a_lone_record_is_never_held_back(self, path: Path) -> None:
        """With nothing announced, a record commits at once even under a window of a
        minute: a single caller never waits for company that will not come."""
        log = SqliteAccessLog(path, commit_window=60)
        with pytest.raises(ValueError, match="commit_window"):
            SqliteAccessLog(path, commit_window=61)
        await log.open()
        try:
            for i in range(5):
                await asyncio.wait_for(log.append(record(i)).wait(), timeout=10)
            log.expect()
            log.withdraw()  # announced, then the request ended without a record
            await asyncio.wait_for(log.append(record(5)).wait(), timeout=10)
            assert log.commits == 6
        finally:
            await log.close()

    async def test_closing_does_not_wait_out_the_window(self, path: Path) -> None:
        """close() commits what is queued at once, however long the window."""
        log = SqliteAccessLog(path, commit_window=60)
        await log.open()
        await log.append(record(0)).wait()
        log.expect()
        log.expect()
        pending = log.append(record(1))  # lingers: one more record is announced
        await asyncio.wait_for(log.close(), timeout=10)
        await asyncio.wait_for(pending.wait(), timeout=1)
        assert log.committed[0] == 2


class TestReopen:
    """A reopened log continues the same tree."""

    async def test_reopen_continues_the_tree(self, path: Path, signer: NoteSigner) -> None:
        """Size and root are recovered, new indices follow on, and the log verifies."""
        await fill(path, 7, signer)
        log = SqliteAccessLog(path, note_signer=signer, origin="test.local/access-log")
        await log.open()
        assert log.size == 7
        assert log.latest_checkpoint is not None
        assert log.latest_checkpoint.size == 7
        p = log.append(record(7))
        assert p.index == 7
        await p.wait()
        checkpoint = await log.publish_checkpoint()
        await log.close()
        with db(path) as conn:
            hashes = [
                bytes(h) for (h,) in conn.execute("SELECT leaf_hash FROM access_log ORDER BY idx")
            ]
        assert checkpoint.root == root_from_leaf_hashes(hashes)
        result = verify(path, signer)
        assert result.ok, result.problem  # type: ignore[attr-defined]
        assert result.size == 8  # type: ignore[attr-defined]
        assert result.checkpoints_checked == 3  # type: ignore[attr-defined]

    async def test_empty_log_has_the_empty_root(self, path: Path) -> None:
        """A freshly created log has size 0 and the RFC 6962 empty root."""
        log = SqliteAccessLog(path)
        await log.open()
        assert log.committed == (0, EMPTY_ROOT)
        await log.close()


class TestReopenRefusesADamagedFile:
    """open() refuses a file whose entries, tree and signed checkpoints disagree."""

    async def _reopen(self, path: Path, signer: NoteSigner) -> None:
        log = SqliteAccessLog(path, note_signer=signer, origin="test.local/access-log")
        try:
            await log.open()
        finally:
            await log.close()

    async def test_a_file_rolled_back_behind_its_checkpoint(
        self, path: Path, signer: NoteSigner
    ) -> None:
        """A file holding fewer entries than its latest signed checkpoint does not open."""
        await fill(path, 10, signer)
        with db(path) as conn:
            conn.execute("DELETE FROM access_log WHERE idx >= 8")
            conn.execute("DELETE FROM merkle_nodes WHERE (idx + 1) * (1 << level) > 8")
        with pytest.raises(
            AccessLogError, match="holds 8 entries but its latest signed checkpoint"
        ):
            await self._reopen(path, signer)

    async def test_a_tree_that_no_longer_has_the_signed_root(
        self, path: Path, signer: NoteSigner
    ) -> None:
        """A tree whose root at the checkpoint's size differs from the signed one does not open."""
        await fill(path, 10, signer)
        with db(path) as conn:
            conn.execute(
                "UPDATE merkle_nodes SET hash = ? WHERE level = 1 AND idx = 4", (bytes(32),)
            )
        with pytest.raises(AccessLogError, match="first 10 entries no longer has the root"):
            await self._reopen(path, signer)

    async def test_a_deleted_last_entry(self, path: Path, signer: NoteSigner) -> None:
        """An entry missing from the end while its tree leaf stays does not open."""
        await fill(path, 10)
        with db(path) as conn:
            conn.execute("DELETE FROM access_log WHERE idx = 9")
        with pytest.raises(AccessLogError, match="holds 9 entries but its Merkle tree 10 leaves"):
            await self._reopen(path, signer)

    async def test_a_deleted_middle_entry(self, path: Path, signer: NoteSigner) -> None:
        """An entry missing from the middle does not open."""
        await fill(path, 10)
        with db(path) as conn:
            conn.execute("DELETE FROM access_log WHERE idx = 3")
        with pytest.raises(AccessLogError, match="1 were deleted"):
            await self._reopen(path, signer)

    async def test_a_cut_tail_that_left_a_tree_node_behind(
        self, path: Path, signer: NoteSigner
    ) -> None:
        """A last entry deleted with its leaf but not the node it completed does not open
        (appending would fail every commit that completes that node again)."""
        await fill(path, 6)
        with db(path) as conn:
            conn.execute("DELETE FROM access_log WHERE idx = 5")
            conn.execute("DELETE FROM merkle_nodes WHERE level = 0 AND idx = 5")
        with pytest.raises(AccessLogError, match="a Merkle tree node covers entries up to 5"):
            await self._reopen(path, signer)

    async def test_a_checkpoint_signed_under_another_key(
        self, path: Path, signer: NoteSigner, tmp_path: Path
    ) -> None:
        """A log whose checkpoints another key signed (a lost key file replaced) does not
        open: signing on would leave a log that verifies under neither key."""
        await fill(path, 4, signer)
        other = load_or_create_note_signer(tmp_path / "other.pem", "test.local/access-log")
        with pytest.raises(AccessLogError, match="restore the key file it was signed with"):
            await self._reopen(path, other)
        assert verify(path, signer).ok  # type: ignore[attr-defined]

    async def test_a_checkpoint_signed_for_another_origin(
        self, path: Path, signer: NoteSigner
    ) -> None:
        """Reopening a log under another origin (a changed trust domain) does not open."""
        await fill(path, 4, signer)
        log = SqliteAccessLog(path, note_signer=signer, origin="elsewhere.local/access-log")
        with pytest.raises(AccessLogError, match=r"origin 'elsewhere\.local/access-log'"):
            await log.open()
        await log.close()

    async def test_another_note_at_a_signed_size_is_refused_not_stored(
        self, path: Path, signer: NoteSigner
    ) -> None:
        """Publishing at a size that already has a stored note fails and keeps that note."""
        log = SqliteAccessLog(path, note_signer=signer, origin="test.local/access-log")
        await log.open()
        await asyncio.gather(*(log.append(record(i)).wait() for i in range(3)))
        with db(path) as conn:
            conn.execute(
                "INSERT INTO checkpoints (size, root, note) VALUES (3, ?, 'signed earlier')",
                (bytes(32),),
            )
        with pytest.raises(AccessLogError, match="checkpoint at size 3 failed"):
            await log.publish_checkpoint()
        await log.close()
        with db(path) as conn:
            stored = conn.execute("SELECT note FROM checkpoints WHERE size = 3").fetchone()
        assert stored == ("signed earlier",)


class TestCheckpoints:
    async def test_checkpoint_is_a_signed_note_over_size_and_root(
        self, path: Path, signer: NoteSigner
    ) -> None:
        """publish_checkpoint signs the committed size and root in the C2SP format."""
        log = SqliteAccessLog(path, note_signer=signer, origin="test.local/access-log")
        await log.open()
        await asyncio.gather(*(log.append(record(i)).wait() for i in range(33)))
        published = await log.publish_checkpoint()
        again = await log.publish_checkpoint()
        await log.close()
        opened = open_signed_note(published.note, [signer.verifier()])
        assert (opened.origin, opened.size, opened.root_hash) == (
            "test.local/access-log",
            33,
            published.root,
        )
        assert again == published  # nothing new: the same checkpoint, not a second one

    async def test_a_checkpoint_covers_everything_appended_before_it(
        self, path: Path, signer: NoteSigner
    ) -> None:
        """Records appended before the request are inside the checkpoint, even if not yet awaited."""
        log = SqliteAccessLog(path, note_signer=signer)
        await log.open()
        for i in range(50):
            log.append(record(i))
        checkpoint = await log.publish_checkpoint()
        await log.close()
        assert checkpoint.size == 50


class TestTamperDetection:
    """Offline verification names the first entry where the stored log stops matching."""

    @pytest.fixture
    async def filled(self, path: Path, signer: NoteSigner) -> Path:
        await fill(path, 10, signer)
        assert verify(path, signer).ok  # type: ignore[attr-defined]
        return path

    def test_changed_leaf_byte(self, filled: Path, signer: NoteSigner) -> None:
        """Flipping one byte of a leaf fails at that leaf."""
        with db(filled) as conn:
            (leaf,) = conn.execute("SELECT leaf FROM access_log WHERE idx = 4").fetchone()
            forged = bytearray(leaf)
            forged[10] ^= 0x01
            conn.execute("UPDATE access_log SET leaf = ? WHERE idx = 4", (bytes(forged),))
        result = verify(filled, signer)
        assert (result.ok, result.first_bad_index) == (False, 4)  # type: ignore[attr-defined]
        assert "entry 4" in result.problem  # type: ignore[attr-defined]

    def test_deleted_row(self, filled: Path, signer: NoteSigner) -> None:
        """Deleting a row fails at the missing index."""
        with db(filled) as conn:
            conn.execute("DELETE FROM access_log WHERE idx = 3")
        result = verify(filled, signer)
        assert (result.ok, result.first_bad_index) == (False, 3)  # type: ignore[attr-defined]
        assert "missing" in result.problem  # type: ignore[attr-defined]

    def test_reordered_rows(self, filled: Path, signer: NoteSigner) -> None:
        """Swapping two whole rows (leaf and leaf hash) fails at the earlier one."""
        with db(filled) as conn:
            conn.execute("UPDATE access_log SET idx = -1 WHERE idx = 5")
            conn.execute("UPDATE access_log SET idx = 5 WHERE idx = 8")
            conn.execute("UPDATE access_log SET idx = 8 WHERE idx = -1")
        result = verify(filled, signer)
        assert (result.ok, result.first_bad_index) == (False, 5)  # type: ignore[attr-defined]

    def test_truncated_tail(self, filled: Path, signer: NoteSigner) -> None:
        """Cutting the last entries fails: a signed checkpoint covers more than the log holds."""
        with db(filled) as conn:
            conn.execute("DELETE FROM access_log WHERE idx >= 8")
        result = verify(filled, signer)
        assert (result.ok, result.first_bad_index) == (False, 8)  # type: ignore[attr-defined]
        assert "truncated" in result.problem  # type: ignore[attr-defined]

    def test_consistent_rewrite_is_caught_by_the_signed_root(
        self, filled: Path, signer: NoteSigner
    ) -> None:
        """Rewriting a leaf with its leaf hash and tree node still fails at a signed checkpoint."""
        with db(filled) as conn:
            forged = rfc8785.dumps({**record(2), "outcome": "DENIED"})
            assert forged != rfc8785.dumps(record(2))
            lh = leaf_hash(forged)
            conn.execute(
                "UPDATE access_log SET leaf = ?, leaf_hash = ? WHERE idx = 2", (forged, lh)
            )
            conn.execute("UPDATE merkle_nodes SET hash = ? WHERE level = 0 AND idx = 2", (lh,))
        result = verify(filled, signer)
        assert not result.ok  # type: ignore[attr-defined]
        assert result.first_bad_index == 0  # type: ignore[attr-defined]
        assert "[0, 5)" in result.problem  # type: ignore[attr-defined]

    def test_a_leaf_edited_as_text(self, filled: Path, signer: NoteSigner) -> None:
        """A leaf stored as TEXT (as the sqlite3 shell writes it) fails at that entry."""
        with db(filled) as conn:
            conn.execute("UPDATE access_log SET leaf = '{\"forged\":1}' WHERE idx = 3")
        result = verify(filled, signer)
        assert (result.ok, result.first_bad_index) == (False, 3)  # type: ignore[attr-defined]
        assert "TEXT" in result.problem  # type: ignore[attr-defined]

    async def test_a_cut_tail_not_yet_checkpointed(self, filled: Path, signer: NoteSigner) -> None:
        """Deleting the last entries after the last checkpoint fails: the tree still has them."""
        log = SqliteAccessLog(filled, note_signer=signer, origin="test.local/access-log")
        await log.open()
        await asyncio.gather(*(log.append(record(i)).wait() for i in range(10, 12)))
        await log.close()
        with db(filled) as conn:
            conn.execute("DELETE FROM access_log WHERE idx = 11")
        result = verify(filled, signer)
        assert (result.ok, result.first_bad_index) == (False, 11)  # type: ignore[attr-defined]
        assert "tree holds 12 leaves" in result.problem  # type: ignore[attr-defined]

    def test_an_entry_without_its_tree_leaf(self, filled: Path, signer: NoteSigner) -> None:
        """An entry whose level-0 node was deleted fails at that entry."""
        with db(filled) as conn:
            conn.execute("DELETE FROM merkle_nodes WHERE level = 0 AND idx = 6")
        result = verify(filled, signer)
        assert (result.ok, result.first_bad_index) == (False, 6)  # type: ignore[attr-defined]
        assert "no leaf in the Merkle tree" in result.problem  # type: ignore[attr-defined]

    def test_a_checkpoint_signed_by_another_key_fails(self, filled: Path, tmp_path: Path) -> None:
        """Verifying against a different pinned key rejects the checkpoints."""
        other = load_or_create_note_signer(tmp_path / "other.pem", "test.local/access-log")
        result = verify_log_file(filled, other.verifier_key())
        assert not result.ok
        assert "checkpoint signature" in result.problem

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file is reported, not created."""
        missing = tmp_path / "nope.db"
        assert not verify_log_file(missing, None).ok
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
