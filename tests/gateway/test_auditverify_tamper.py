"""`audit verify` checks every copy the gateway serves from, not only the leaves.

A database holds, besides the signed leaves, the Merkle tree's interior nodes
(inclusion and consistency proofs are built from them) and queryable columns
(searches and statistics read them). Changing either, or leaving tree nodes
behind a cut tail, must fail verification; exports get precise messages and
entries no checkpoint covers are pointed out.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from govshare.gateway import (
    LogVerification,
    NoteSigner,
    SqliteAccessLog,
    load_or_create_note_signer,
    main,
    read_export,
    verify_log_file,
)

ORIGIN = "test.local/access-log"


def record(i: int) -> dict[str, object]:
    """A record with every queryable column, as the gateway writes them."""
    return {
        "time": f"2026-01-01T00:00:{i % 60:02d}.000000Z",
        "consumer": "91330100MA2CFQ1X1A",
        "provider": "11330000002482106W",
        "resource_code": "RES-001",
        "outcome": "ALLOWED" if i % 3 else "DENIED",
        "reason": None if i % 3 else "GRANT_REQUIRED",
        "request_id": f"req-{i}",
        "holder_id_hash": f"h{i:04d}",
        "matter_code": "330100-BDC-0001",
        "method": "/govshare.exchange.v1.ExchangeService/GetCertificate",
        "latency_us": 1000 + i,
        "fields": ["name", "birth_date"],
    }


@contextmanager
def db(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        yield conn


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> NoteSigner:
    return load_or_create_note_signer(tmp_path_factory.mktemp("note-key") / "note.pem", ORIGIN)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


async def build(
    path: Path,
    signer: NoteSigner,
    signed: int,
    unsigned: int = 0,
    records: Mapping[int, dict[str, object]] | None = None,
) -> None:
    """Append `signed` records and publish a checkpoint, then `unsigned` more records."""
    log = SqliteAccessLog(path, note_signer=signer, origin=ORIGIN)
    await log.open()
    chosen = records or {}
    await asyncio.gather(*(log.append(chosen.get(i, record(i))).wait() for i in range(signed)))
    await log.publish_checkpoint()
    later = range(signed, signed + unsigned)
    await asyncio.gather(*(log.append(chosen.get(i, record(i))).wait() for i in later))
    await log.close()


def verify(path: Path, signer: NoteSigner) -> LogVerification:
    return verify_log_file(path, signer.verifier_key())


def cli_verify(path: Path, signer: NoteSigner, capsys: pytest.CaptureFixture[str]) -> str:
    """Run `govshare audit verify --db` and return its output, with the exit status first."""
    capsys.readouterr()
    code = main(["audit", "verify", "--db", str(path), "--key", signer.verifier_key()])
    return f"{code}\n{capsys.readouterr().out}"


class TestInteriorNodes:
    """Every stored perfect-subtree node is recomputed from the leaves and compared."""

    @pytest.mark.parametrize(("level", "index"), [(1, 0), (2, 1), (3, 1), (4, 0)])
    async def test_a_changed_node_fails_at_the_first_entry_it_covers(
        self, path: Path, signer: NoteSigner, level: int, index: int
    ) -> None:
        """A node off the checkpoint's frontier (its root still matches) that no longer
        matches its entries fails, naming the node and the first entry below it."""
        await build(path, signer, 16)
        with db(path) as conn:
            conn.execute(
                "UPDATE merkle_nodes SET hash = zeroblob(32) WHERE level = ? AND idx = ?",
                (level, index),
            )
        result = verify(path, signer)
        assert (result.ok, result.first_bad_index) == (False, index << level)
        assert f"node at level {level}, index {index}" in result.problem
        assert "does not match" in result.problem

    async def test_the_highest_node_of_a_larger_log_is_compared(
        self, path: Path, signer: NoteSigner
    ) -> None:
        """Nodes on high levels are read and compared too: (9, 0) covers entries 0-511."""
        await build(path, signer, 1000)
        assert verify(path, signer).ok
        with db(path) as conn:
            conn.execute("UPDATE merkle_nodes SET hash = zeroblob(32) WHERE level = 9 AND idx = 0")
        result = verify(path, signer)
        assert (result.ok, result.first_bad_index) == (False, 0)
        assert "level 9, index 0 (entries 0 to 511)" in result.problem

    async def test_a_deleted_node_fails(self, path: Path, signer: NoteSigner) -> None:
        """A node missing from the tree (proofs needing it cannot be served) fails."""
        await build(path, signer, 16)
        with db(path) as conn:
            conn.execute("DELETE FROM merkle_nodes WHERE level = 1 AND idx = 3")
        result = verify(path, signer)
        assert (result.ok, result.first_bad_index) == (False, 6)
        assert "no node at level 1, index 3 (entries 6 to 7)" in result.problem

    async def test_a_changed_node_after_the_last_checkpoint_fails(
        self, path: Path, signer: NoteSigner
    ) -> None:
        """A node over entries no checkpoint covers yet is compared as well."""
        await build(path, signer, 10, unsigned=6)
        with db(path) as conn:
            conn.execute("UPDATE merkle_nodes SET hash = zeroblob(32) WHERE level = 2 AND idx = 2")
        result = verify(path, signer)
        assert (result.ok, result.first_bad_index) == (False, 8)
        assert "level 2, index 2 (entries 8 to 11)" in result.problem

    async def test_the_command_fails_on_a_changed_node(
        self, path: Path, signer: NoteSigner, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`govshare audit verify --db` exits 1 and names the node's first entry."""
        await build(path, signer, 16)
        with db(path) as conn:
            conn.execute("UPDATE merkle_nodes SET hash = zeroblob(32) WHERE level = 2 AND idx = 1")
        out = cli_verify(path, signer, capsys)
        assert out.startswith("1\nFAILED at index 4: the Merkle tree node at level 2, index 1")


class TestTreePastTheLog:
    """A tree node covering an entry the log no longer holds means its tail was cut."""

    async def test_a_parent_node_left_by_a_cut_last_entry_fails(
        self, path: Path, signer: NoteSigner
    ) -> None:
        """The last entry deleted with its leaf node, not the node (1, 2) it completed."""
        await build(path, signer, 5, unsigned=1)
        with db(path) as conn:
            conn.execute("DELETE FROM access_log WHERE idx = 5")
            conn.execute("DELETE FROM merkle_nodes WHERE level = 0 AND idx = 5")
        result = verify(path, signer)
        assert (result.ok, result.first_bad_index) == (False, 5)
        assert result.problem == (
            "the Merkle tree node at level 1, index 2 covers entries 4 to 5 but the log "
            "ends at 5: the tail was truncated"
        )

    async def test_the_lowest_node_left_on_a_higher_level_is_named(
        self, path: Path, signer: NoteSigner, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Entries 4-7 cut with their nodes on levels 0 and 1: (2, 1) and (3, 0) remain."""
        await build(path, signer, 4, unsigned=4)
        with db(path) as conn:
            conn.execute("DELETE FROM access_log WHERE idx >= 4")
            conn.execute("DELETE FROM merkle_nodes WHERE level = 0 AND idx >= 4")
            conn.execute("DELETE FROM merkle_nodes WHERE level = 1 AND idx >= 2")
        out = cli_verify(path, signer, capsys)
        assert out.startswith("1\nFAILED at index 4: the Merkle tree node at level 2, index 1")
        assert "the tail was truncated" in out


class TestColumns:
    """Each queryable column must say what the writer derives from the signed leaf."""

    @pytest.mark.parametrize(
        ("column", "value"),
        [
            ("consumer", "someone-else"),
            ("holder_id_hash", ""),
            ("outcome", None),
            ("time", "2020-01-01T00:00:00.000000Z"),
            ("latency_us", "1007"),  # the same digits as TEXT: `latency_us >= ?` skips it
            ("reason", "GRANT_REQUIRED"),
        ],
    )
    async def test_a_rewritten_column_fails_naming_entry_and_column(
        self, path: Path, signer: NoteSigner, column: str, value: object
    ) -> None:
        """A column changed while its leaf stays fails at that entry, naming the column."""
        await build(path, signer, 10)
        with db(path) as conn:
            conn.execute(f"UPDATE access_log SET {column} = ? WHERE idx = 7", (value,))
        result = verify(path, signer)
        assert (result.ok, result.first_bad_index) == (False, 7)
        assert result.problem.startswith(f"entry 7: column {column} holds {value!r}")

    async def test_columns_are_compared_as_the_writer_derives_them(
        self, path: Path, signer: NoteSigner
    ) -> None:
        """Values the writer turns into something else (a list into NULL, a float whose
        canonical JSON reads back as an int) verify; changing what it stored fails."""
        awkward = {
            **record(3),
            "consumer": ["not", "a", "scalar"],
            "latency_us": 2.0**60,
            "outcome": True,
            "provider": "省大数据局",
        }
        del awkward["matter_code"]
        await build(path, signer, 6, records={3: awkward})
        assert verify(path, signer).ok
        with db(path) as conn:
            conn.execute("UPDATE access_log SET consumer = 'not' WHERE idx = 3")
        result = verify(path, signer)
        assert (result.ok, result.first_bad_index) == (False, 3)
        assert "column consumer holds 'not' but the leaf says None" in result.problem

    async def test_the_command_fails_on_a_rewritten_column(
        self, path: Path, signer: NoteSigner, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`govshare audit verify --db` exits 1 on a column that hides a record from
        searches by consumer."""
        await build(path, signer, 4)
        with db(path) as conn:
            conn.execute("UPDATE access_log SET consumer = 'someone-else' WHERE idx = 1")
        out = cli_verify(path, signer, capsys)
        assert out.startswith("1\nFAILED at index 1: entry 1: column consumer holds")


class TestUncoveredEntries:
    """Entries after the last signed checkpoint pass, with a note saying so."""

    @pytest.mark.parametrize(
        ("unsigned", "which"), [(3, "entries 10 to 12 are"), (1, "entry 10 is")]
    )
    async def test_entries_no_checkpoint_covers_are_noted(
        self,
        path: Path,
        signer: NoteSigner,
        capsys: pytest.CaptureFixture[str],
        unsigned: int,
        which: str,
    ) -> None:
        """The log verifies, and the command prints which entries nothing signed covers."""
        await build(path, signer, 10, unsigned=unsigned)
        note = (
            f"{which} not covered by a signed checkpoint yet: only their leaf hashes were checked"
        )
        result = verify(path, signer)
        assert (result.ok, result.checkpoints_checked) == (True, 1)
        assert note in result.notes
        out = cli_verify(path, signer, capsys)
        assert out.startswith(f"0\nnote: {note}\n")

    async def test_an_export_line_past_the_checkpoints_is_noted(
        self, path: Path, signer: NoteSigner, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A line appended to an export passes (nothing contradicts it) but is pointed out."""
        await build(path, signer, 12)
        args = export(path, signer, path.parent / "export")
        entries = path.parent / "export" / "entries.jsonl"
        forged = {"index": 12, "leaf": base64.b64encode(b'{"forged":true}').decode()}
        entries.write_text(entries.read_text() + json.dumps(forged) + "\n")
        capsys.readouterr()
        assert main(args) == 0
        assert (
            "note: entry 12 is not covered by a signed checkpoint yet: only the exporter "
            "vouches for them\n" in capsys.readouterr().out
        )


def export(path: Path, signer: NoteSigner, out: Path) -> list[str]:
    """Export the log; return the `audit verify` arguments that check the export."""
    assert main(["audit", "export", "--db", str(path), "--out", str(out)]) == 0
    return [
        "audit",
        "verify",
        "--export",
        str(out / "entries.jsonl"),
        "--checkpoints",
        str(out / "checkpoints.json"),
        "--key",
        signer.verifier_key(),
    ]


class TestExportInput:
    async def test_a_duplicated_line_is_reported_as_such_not_as_missing(
        self, path: Path, signer: NoteSigner, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Entry 4 twice: the message says it appears twice or out of order."""
        await build(path, signer, 12)
        args = export(path, signer, path.parent / "export")
        entries = path.parent / "export" / "entries.jsonl"
        lines = entries.read_text().splitlines()
        lines.insert(5, lines[4])
        entries.write_text("\n".join(lines) + "\n")
        capsys.readouterr()
        assert main(args) == 1
        out = capsys.readouterr().out
        assert out == (
            "FAILED at index 5: entry 4 appears twice or out of order: entry 5 was expected\n"
        )

    def test_a_deeply_nested_line_is_a_value_error_naming_the_line(self) -> None:
        """A line nested past the parser's recursion limit is refused like any bad line."""
        with pytest.raises(ValueError, match=r"^export line 2 is not an entry: "):
            list(read_export(["\n", "[" * 100_000 + "\n"]))

    async def test_the_command_reports_a_deeply_nested_line_in_one_line(
        self, path: Path, signer: NoteSigner, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`audit verify --export` exits 2 and names the line (not a generic message)."""
        await build(path, signer, 3)
        args = export(path, signer, path.parent / "export")
        (path.parent / "export" / "entries.jsonl").write_text("[" * 100_000 + "\n")
        capsys.readouterr()
        assert main(args) == 2
        out = capsys.readouterr().out
        assert out.startswith("INVALID: export line 1 is not an entry: ")
        assert out.count("\n") == 1
