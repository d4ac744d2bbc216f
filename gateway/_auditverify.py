"""Offline verification of the access log, trusting nothing the operator says.

From the database file (or an export), recompute every leaf hash and the Merkle
tree; compare with the stored leaf hashes and level-0 nodes (which names the
first altered entry), and with every signed checkpoint: its signature under
the pinned key, and its root at its size. Roots matching at successive sizes
computed from one sequence of leaves is what consistency between checkpoints
means; a checkpoint larger than the log means the tail was cut.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._checkpoint import CheckpointError, NoteVerifier, open_signed_note
from ._merkle import MerkleFrontier, leaf_hash

__all__ = [
    "LogVerification",
    "read_export",
    "stored_checkpoints",
    "stored_verifier_key",
    "verify_entries",
    "verify_log_file",
]


# Stands for "the database has no level-0 node for this entry" (an export has None).
_NO_NODE: object = object()


@dataclass(frozen=True, slots=True)
class LogVerification:
    """Outcome of a verification; `first_bad_index` names the first bad entry."""

    ok: bool
    size: int
    checkpoints_checked: int
    first_bad_index: int | None = None
    problem: str = ""
    notes: Sequence[str] = field(default_factory=tuple)
    # The file could not be read as a log at all: unusable input, not a failed check.
    unreadable: bool = False


# (index, leaf, stored leaf hash, stored level-0 node) as read: a tampered file
# can hold any SQLite type where bytes belong, so nothing is assumed yet.
_Entry = tuple[int, object, object, object]


def verify_entries(
    entries: Iterable[_Entry],
    checkpoints: Sequence[str],
    verifier: NoteVerifier,
) -> LogVerification:
    """Check `(index, leaf, stored leaf hash, stored level-0 node)` rows in order.

    Stored hashes may be None (an export carries only leaves); then a changed
    entry is located only between the two checkpoints around it. A leaf or hash
    that is not bytes (e.g. edited as TEXT) is a changed entry.
    """
    opened: list[tuple[int, bytes, str]] = []
    for note in checkpoints:
        try:
            checkpoint = open_signed_note(note, [verifier])
        except CheckpointError as error:
            return LogVerification(False, 0, 0, None, f"checkpoint signature: {error}")
        opened.append((checkpoint.size, checkpoint.root_hash, note))
    opened.sort()
    pending = iter(opened)
    target = next(pending, None)
    frontier = MerkleFrontier()
    checked = 0
    previous_size = 0
    while target is not None and target[0] == 0:
        target = next(pending, None)
    for index, leaf, stored_hash, stored_node in entries:
        expected = frontier.size
        if index != expected:
            problem = f"entry {expected} is missing (the next entry is {index})"
            return LogVerification(False, expected, checked, expected, problem)
        if not isinstance(leaf, bytes):
            problem = f"entry {index}: leaf is stored as {_kind(leaf)}, not a BLOB: it was edited"
            return LogVerification(False, expected, checked, index, problem)
        computed = leaf_hash(leaf)
        if stored_node is _NO_NODE:
            return LogVerification(
                False, expected, checked, index, f"entry {index} has no leaf in the Merkle tree"
            )
        if stored_hash is not None and computed != stored_hash:
            return LogVerification(
                False,
                expected,
                checked,
                index,
                f"entry {index}: leaf bytes do not match its leaf hash",
            )
        if stored_node is not None and computed != stored_node:
            return LogVerification(
                False,
                expected,
                checked,
                index,
                f"entry {index}: leaf does not match the Merkle tree",
            )
        frontier.append(computed)
        while target is not None and target[0] == frontier.size:
            if frontier.root() != target[1]:
                return LogVerification(
                    False,
                    frontier.size,
                    checked,
                    previous_size,
                    f"root at size {target[0]} differs from the signed checkpoint: an entry in "
                    f"[{previous_size}, {target[0]}) was changed, reordered or removed",
                )
            checked += 1
            previous_size = target[0]
            target = next(pending, None)
    if target is not None:
        return LogVerification(
            False,
            frontier.size,
            checked,
            frontier.size,
            f"a signed checkpoint covers {target[0]} entries but the log ends at "
            f"{frontier.size}: the tail was truncated",
        )
    notes = () if checked else ("no checkpoint covers this log yet: only leaf hashes were checked",)
    return LogVerification(True, frontier.size, checked, None, "", notes)


def _kind(value: object) -> str:
    """The SQLite storage class a non-BLOB value came from."""
    kinds = {str: "TEXT", int: "INTEGER", float: "REAL"}
    return "NULL" if value is None else kinds.get(type(value), type(value).__name__)


def _database_rows(conn: sqlite3.Connection) -> Iterator[_Entry]:
    rows = conn.execute(
        "SELECT a.idx, a.leaf, a.leaf_hash, n.hash FROM access_log a "
        "LEFT JOIN merkle_nodes n ON n.level = 0 AND n.idx = a.idx ORDER BY a.idx"
    )
    for index, leaf, stored, node in rows:
        # A NULL leaf hash must not read as "not stored", which only an export may say.
        yield (
            int(index),
            leaf,
            b"" if stored is None else stored,
            _NO_NODE if node is None else node,
        )


def _tree_size(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT max(idx) FROM merkle_nodes WHERE level = 0").fetchone()
    return 0 if row is None or row[0] is None else int(row[0]) + 1


def _cut_tail(result: LogVerification, tree_size: int) -> LogVerification:
    """A database whose tree has leaves past its last entry lost its tail.

    Checkpoints catch a cut only up to the last signed size; the tree, written in
    the same transaction as every entry, knows the rest.
    """
    if not result.ok or tree_size <= result.size:
        return result
    return LogVerification(
        False,
        result.size,
        result.checkpoints_checked,
        result.size,
        f"the Merkle tree holds {tree_size} leaves but the log ends at {result.size}: "
        "the tail was truncated",
    )


def stored_checkpoints(conn: sqlite3.Connection) -> list[str]:
    return [str(note) for (note,) in conn.execute("SELECT note FROM checkpoints ORDER BY size")]


def stored_verifier_key(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM log_meta WHERE key = 'verifier_key'").fetchone()
    return None if row is None else str(row[0])


def verify_log_file(
    path: Path, verifier_key: str | None, extra_checkpoints: Sequence[str] = ()
) -> LogVerification:
    """Verify a gateway's audit database; the key defaults to the one it recorded."""
    if not path.is_file():
        return LogVerification(False, 0, 0, None, f"no such file: {path}", unreadable=True)
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        try:
            # One read transaction: what a live gateway commits meanwhile is in no part.
            conn.execute("BEGIN")
            key = verifier_key or stored_verifier_key(conn)
            notes = [*stored_checkpoints(conn), *extra_checkpoints]
            if key is None:
                return LogVerification(False, 0, 0, None, "no verifier key: pass --key")
            verifier = NoteVerifier.from_key(key)
            result = verify_entries(_database_rows(conn), notes, verifier)
            result = _cut_tail(result, _tree_size(conn))
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as error:
            return LogVerification(
                False, 0, 0, None, f"cannot read the log: {error}", unreadable=True
            )
    finally:
        conn.close()
    if verifier_key is None and result.ok:
        pinned = "the key was read from the database itself; pass --key to pin it"
        return LogVerification(
            True, result.size, result.checkpoints_checked, None, "", (*result.notes, pinned)
        )
    return result


_DECIMAL = re.compile(r"[0-9]{1,19}")


def read_export(lines: Iterable[str]) -> Iterator[_Entry]:
    """Entries of an export file: JSON lines `{"index": n, "leaf": base64}`.

    A line that is not such an object raises ValueError naming the line.
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            index, leaf = entry["index"], entry["leaf"]
            # protobuf's JSON form writes an int64 as a decimal string.
            if isinstance(index, str) and _DECIMAL.fullmatch(index):
                index = int(index)
            if type(index) is not int or not isinstance(leaf, str):
                raise TypeError("index must be a number and leaf a base64 string")
            if not 0 <= index < 2**63:
                raise ValueError(f"index {index} is outside 0 to 2**63 - 1")
            decoded = base64.b64decode(leaf, validate=True)
        except (ValueError, KeyError, TypeError) as error:
            detail = f"no {error}" if isinstance(error, KeyError) else str(error)
            raise ValueError(f"export line {number} is not an entry: {detail}") from None
        yield index, decoded, None, None
