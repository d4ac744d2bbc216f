"""Offline verification of the access log, trusting nothing the operator says.

From the database file (or an export), recompute every leaf hash and the Merkle
tree; compare with every signed checkpoint: its signature under the pinned key,
and its root at its size. Roots matching at successive sizes computed from one
sequence of leaves is what consistency between checkpoints means; a checkpoint
larger than the log means the tail was cut.

A database also holds copies the gateway serves from without re-reading the
leaves: the stored leaf hashes, every perfect-subtree node of the tree (proofs
come from them) and the queryable columns (searches and statistics read them).
Each is recomputed from the leaves and compared, and no node may cover an entry
past the end of the log.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._auditlog import QUERY_COLUMNS, query_columns
from ._checkpoint import CheckpointError, NoteVerifier, open_signed_note
from ._merkle import MerkleFrontier, leaf_hash, node_hash

__all__ = [
    "LogVerification",
    "read_export",
    "stored_checkpoints",
    "stored_verifier_key",
    "verify_entries",
    "verify_log_file",
]


# What `_StoredNodes.get` answers for a node the database lacks: distinct from
# any value a tampered row could hold.
_NO_NODE: object = object()
# Levels a tree of at most 2**63 entries (SQLite's largest index) can have.
_LEVELS = 64
_decode_json = json.JSONDecoder().decode


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
# A database row: the same, then the queryable columns in `QUERY_COLUMNS` order. Rows
# come straight from the cursor (a NULL node is None), so the loop pays no
# per-row conversion.
_Row = tuple[Any, ...]


class _StoredNodes:
    """The database's interior Merkle nodes (level >= 1), in the order a frontier
    completes them: node (k, j) right after entry (j + 1) * 2**k - 1.

    One cursor per level, read in key order alongside the entries: O(log n) rows
    held at a time however long the log, and each node is read once.
    """

    __slots__ = ("_conn", "_cursors", "_next")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._cursors: list[Iterator[tuple[object, object]]] = []
        self._next: list[tuple[object, object] | None] = []

    def get(self, level: int, index: int) -> object:
        """Stored hash of node (level, index), or `_NO_NODE`; each level is asked for
        its nodes in increasing index order."""
        slot = level - 1
        if slot < len(self._next) and (row := self._next[slot]) is not None and row[0] == index:
            # Almost every call: the next stored row of the level is the node asked for.
            self._next[slot] = next(self._cursors[slot], None)
            return row[1]
        return self._seek(slot, index)

    def _seek(self, slot: int, index: int) -> object:
        while len(self._cursors) <= slot:
            # The level as a literal: one statement per level, never one shared
            # (and reset) by two open cursors.
            cursor = self._conn.execute(
                f"SELECT idx, hash FROM merkle_nodes WHERE level = {len(self._cursors) + 1} "
                "ORDER BY idx"
            )
            self._cursors.append(cursor)
            self._next.append(next(cursor, None))
        rows, row = self._cursors[slot], self._next[slot]
        # Rows before the one asked for were never asked for: a negative or non-integer
        # index (junk no proof reads) sorts there.
        while row is not None and not (type(row[0]) is int and row[0] >= index):
            row = next(rows, None)
        if row is None or row[0] != index:
            self._next[slot] = row
            return _NO_NODE
        self._next[slot] = next(rows, None)
        return row[1]

    def past_end(self, size: int) -> tuple[int, int, int] | None:
        """(level, index, leaves stored) of the lowest node covering an entry at or after
        `size`, or None; "leaves stored" is for level 0, whose nodes are the leaves.

        Node (k, j) covers entries up to (j + 1) * 2**k - 1, so it lies past the end
        exactly when j >= size >> k: one index seek per level finds any.
        """
        for level in range(_LEVELS):
            row = self._conn.execute(
                "SELECT idx FROM merkle_nodes WHERE level = ? AND idx >= ? "
                "AND typeof(idx) = 'integer' ORDER BY idx LIMIT 1",
                (level, size >> level),
            ).fetchone()
            if row is None:
                continue
            leaves = 0
            if level == 0:
                (last,) = self._conn.execute(
                    "SELECT max(idx) FROM merkle_nodes WHERE level = 0 AND typeof(idx) = 'integer'"
                ).fetchone()
                leaves = int(last) + 1
            return level, int(row[0]), leaves
        return None


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
    return _verify(entries, checkpoints, verifier, None)


def _verify(
    entries: Iterable[_Row],
    checkpoints: Sequence[str],
    verifier: NoteVerifier,
    nodes: _StoredNodes | None,
) -> LogVerification:
    """`verify_entries`; given `nodes` (a database), over `_Row`s whose interior
    nodes and queryable columns are checked too, and where a NULL level-0 node is
    a missing one rather than one an export does not carry.

    A stored node or column that disagrees with the leaves is a copy gone wrong only
    if the leaves are right, which the next signed checkpoint tells: so that finding
    waits for it. Should its root fail, the leaves changed (and the copies merely
    still say what the leaves said when they were signed): the checkpoint's failure
    is the one reported.
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
    # The frontier's right-edge subtree hashes, kept here rather than in a
    # MerkleFrontier because each node it completes is compared on the way.
    edge: list[bytes] = []
    size = 0
    checked = 0
    previous_size = 0
    stale: LogVerification | None = None  # the first copy found wrong, held for a checkpoint
    while target is not None and target[0] == 0:
        target = next(pending, None)
    for row in entries:
        index: int = row[0]
        leaf, stored_hash, stored_node = row[1], row[2], row[3]
        expected = size
        if index != expected:
            if index < expected:
                problem = (
                    f"entry {index} appears twice or out of order: entry {expected} was expected"
                )
            else:
                problem = f"entry {expected} is missing (the next entry is {index})"
            return LogVerification(False, expected, checked, expected, problem)
        if not isinstance(leaf, bytes):
            problem = f"entry {index}: leaf is stored as {_kind(leaf)}, not a BLOB: it was edited"
            return LogVerification(False, expected, checked, index, problem)
        computed = leaf_hash(leaf)
        if stored_node is None and nodes is not None:
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
        if (
            nodes is not None
            and stale is None
            and (wrong := _wrong_column(index, leaf, row[4:])) is not None
        ):
            stale = LogVerification(False, expected, checked, index, wrong)
        # MerkleFrontier.append, keeping each node it completes: each trailing 1 bit
        # of the old size is a subtree of equal height to merge with.
        h, n, level = computed, index, 0
        while n & 1:
            h = node_hash(edge.pop(), h)
            n >>= 1
            level += 1
            if nodes is not None and stale is None:
                stored = nodes.get(level, n)
                if stored != h:
                    stale = LogVerification(
                        False, expected, checked, n << level, _wrong_node(level, n, stored)
                    )
        edge.append(h)
        size += 1
        while target is not None and target[0] == size:
            if MerkleFrontier.from_nodes(size, edge).root() != target[1]:
                return LogVerification(
                    False,
                    size,
                    checked,
                    previous_size,
                    f"root at size {target[0]} differs from the signed checkpoint: an entry in "
                    f"[{previous_size}, {target[0]}) was changed, reordered or removed",
                )
            if stale is not None:
                return stale
            checked += 1
            previous_size = target[0]
            target = next(pending, None)
    if target is not None:
        return LogVerification(
            False,
            size,
            checked,
            size,
            f"a signed checkpoint covers {target[0]} entries but the log ends at "
            f"{size}: the tail was truncated",
        )
    if stale is not None:
        return stale
    if nodes is not None and (past := nodes.past_end(size)) is not None:
        return LogVerification(False, size, checked, size, _past_end(size, *past))
    notes: tuple[str, ...] = ()
    if not checked:
        notes = ("no checkpoint covers this log yet: only leaf hashes were checked",)
    elif previous_size < size:
        # Sound as far as they were checked, but nothing signed vouches for them yet;
        # an export carries no stored hashes, so for it nothing was checked at all.
        which = (
            f"entry {previous_size} is"
            if size - previous_size == 1
            else f"entries {previous_size} to {size - 1} are"
        )
        checked_by = (
            "only their leaf hashes were checked"
            if nodes is not None
            else "only the exporter vouches for them"
        )
        notes = (f"{which} not covered by a signed checkpoint yet: {checked_by}",)
    return LogVerification(True, size, checked, None, "", notes)


def _wrong_column(index: int, leaf: bytes, columns: tuple[object, ...]) -> str | None:
    """What is wrong with an entry's queryable columns, or None when each says what
    the writer derives from the leaf (the record it canonicalised)."""
    try:
        # Canonical JSON is UTF-8; decoding first skips json.loads' encoding sniffing.
        record = _decode_json(leaf.decode("utf-8"))
    except (ValueError, RecursionError):
        record = None
    if not isinstance(record, dict):
        return f"entry {index}: leaf is not a JSON object, so its columns cannot be checked"
    # The writer's own derivation, value by value; map() keeps the loop in C.
    wanted = query_columns(record)
    if wanted == columns:
        return None
    for name, stored, value in zip(QUERY_COLUMNS, columns, wanted, strict=True):
        if not _same_column(stored, value):
            return (
                f"entry {index}: column {name} holds {_shown(stored)} but the leaf says "
                f"{_shown(value)}: searches and statistics read the column"
            )
    return None


def _same_column(stored: object, wanted: object) -> bool:
    # JSON numbers are doubles: canonical JSON writes an integral float such as
    # 2.0**60 as digits that parse back as a (different) int, while the column
    # holds the float the writer had.
    if isinstance(stored, float) and isinstance(wanted, int):
        return stored == float(wanted)
    return stored == wanted


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _wrong_node(level: int, index: int, stored: object) -> str:
    first, last = index << level, ((index + 1) << level) - 1
    if stored is _NO_NODE:
        return (
            f"the Merkle tree has no node at level {level}, index {index} (entries {first} "
            f"to {last}): proofs that need it cannot be served"
        )
    return (
        f"the Merkle tree node at level {level}, index {index} (entries {first} to {last}) "
        "does not match those entries: proofs served from it would fail"
    )


def _past_end(size: int, level: int, index: int, leaves: int) -> str:
    """A database whose tree reaches past its last entry lost its tail.

    Checkpoints catch a cut only up to the last signed size; the tree, written in
    the same transaction as every entry, knows the rest.
    """
    if level == 0:
        return (
            f"the Merkle tree holds {leaves} leaves but the log ends at {size}: "
            "the tail was truncated"
        )
    first, last = index << level, ((index + 1) << level) - 1
    return (
        f"the Merkle tree node at level {level}, index {index} covers entries {first} to "
        f"{last} but the log ends at {size}: the tail was truncated"
    )


def _kind(value: object) -> str:
    """The SQLite storage class a non-BLOB value came from."""
    kinds = {str: "TEXT", int: "INTEGER", float: "REAL"}
    return "NULL" if value is None else kinds.get(type(value), type(value).__name__)


def _database_rows(conn: sqlite3.Connection) -> Iterable[_Row]:
    columns = ", ".join(f"a.{name}" for name in QUERY_COLUMNS)
    # coalesce: a NULL leaf hash must not read as "not stored", which only an export
    # may say. a.idx is the INTEGER PRIMARY KEY, so always an int.
    cursor: Iterable[_Row] = conn.execute(
        f"SELECT a.idx, a.leaf, coalesce(a.leaf_hash, x''), n.hash, {columns} "
        "FROM access_log a LEFT JOIN merkle_nodes n ON n.level = 0 AND n.idx = a.idx "
        "ORDER BY a.idx"
    )
    return cursor


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
            result = _verify(_database_rows(conn), notes, verifier, _StoredNodes(conn))
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
        # RecursionError: a deeply nested line; the CLI reports ValueError in one line.
        except (ValueError, KeyError, TypeError, RecursionError) as error:
            detail = f"no {error}" if isinstance(error, KeyError) else str(error)
            raise ValueError(f"export line {number} is not an entry: {detail}") from None
        yield index, decoded, None, None
