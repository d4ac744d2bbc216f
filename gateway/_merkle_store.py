"""Stores of perfect-subtree hashes so Merkle roots and proofs never re-read the log.

Node (level k, index i) is the MTH of leaves [i * 2**k, (i + 1) * 2**k). A node is
written once, when its last leaf arrives, and never changes (the log is append-only),
so the same rows answer proofs for every past tree size as well as the current one.
Each range a proof asks for decomposes into O(log n) such nodes
(`_merkle.perfect_subtrees`); a proof costs one batched read of about 2·log2(n) rows.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Final

from ._merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MerkleFrontier,
    NodeKey,
    consistency_proof_ranges,
    inclusion_proof_ranges,
    node_hash,
    perfect_subtrees,
    subtree_hash_from_nodes,
)
from ._sqlite_batch import insert_rows

__all__ = ["MemoryNodeStore", "NodeStore", "SqliteNodeStore"]

_Row = tuple[int, int, bytes]


class NodeStore(ABC):
    """Append-only store of Merkle nodes; subclasses supply reads and writes of rows."""

    @property
    @abstractmethod
    def size(self) -> int:
        """Number of leaves stored (level-0 nodes)."""

    @abstractmethod
    def get_nodes(self, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        """Hashes of the nodes `keys`; LookupError if any is not stored."""

    @abstractmethod
    def _write_nodes(self, rows: list[_Row]) -> None:
        """Persist new (level, index, hash) rows, sorted by level then index."""

    def add_leaf_hashes(
        self,
        start_index: int,
        hashes: Sequence[bytes],
        *,
        right_edge: MerkleFrontier | None = None,
    ) -> None:
        """Append leaf hashes at `start_index` (must equal `size`) and every node they complete.

        Node (k, j) completes with leaf (j + 1) * 2**k - 1, so the new nodes on level k
        are j in [start >> k, end >> k). Their left children from before the batch are the
        old tree's right-edge subtrees: at most one per level, read in one batch up front,
        or taken from `right_edge`, the caller's frontier of the stored tree, which saves
        a writer that keeps one both reads (size and nodes) on every batch.
        """
        if right_edge is not None:
            if right_edge.size != start_index:
                raise ValueError(
                    f"leaves must be appended at {right_edge.size}, not at {start_index}"
                )
        elif start_index != self.size:
            raise ValueError(f"leaves must be appended at {self.size}, not at {start_index}")
        if not hashes:
            return
        if any(not isinstance(h, bytes) or len(h) != HASH_SIZE for h in hashes):
            raise ValueError("leaf hashes are 32 bytes each")
        end = start_index + len(hashes)
        wanted: list[NodeKey] = []
        level = 1
        while (start_index >> level) < (end >> level):
            below = start_index >> (level - 1)
            if below & 1:
                wanted.append((level - 1, below - 1))
            level += 1
        old: Mapping[NodeKey, bytes]
        if not wanted:
            old = {}
        elif right_edge is not None:
            # The frontier holds exactly the perfect subtrees of [0, start): every
            # wanted node is one of them.
            old = dict(zip(perfect_subtrees(0, start_index), right_edge.nodes, strict=True))
        else:
            old = self.get_nodes(wanted)

        rows: list[_Row] = [(0, start_index + i, h) for i, h in enumerate(hashes)]
        current: Sequence[bytes] = hashes
        first, level = start_index, 0
        while True:
            lo, hi = first >> 1, (first + len(current)) >> 1
            if lo >= hi:
                break
            parents: list[bytes] = []
            j = lo
            if 2 * lo < first:  # left child of the first new parent is an old node
                parents.append(node_hash(old[(level, 2 * lo)], current[0]))
                j += 1
            offset = 2 * j - first
            parents.extend(
                node_hash(current[i], current[i + 1])
                for i in range(offset, offset + 2 * (hi - j), 2)
            )
            level += 1
            rows.extend((level, lo + i, h) for i, h in enumerate(parents))
            current, first = parents, lo
        # Built level by level, index by index: already in the order _write_nodes expects.
        self._write_nodes(rows)

    def append_leaf_hashes(self, hashes: Iterable[bytes], *, batch: int = 65536) -> None:
        """Append `hashes` after the stored leaves, `batch` at a time (e.g. a backfill)."""
        chunk: list[bytes] = []
        for h in hashes:
            chunk.append(h)
            if len(chunk) == batch:
                self.add_leaf_hashes(self.size, chunk)
                chunk = []
        if chunk:
            self.add_leaf_hashes(self.size, chunk)

    def subtree_hashes(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """MTH of leaves[start:end] for each range, from one batched node read."""
        size = self.size
        keys: set[NodeKey] = set()
        for start, end in ranges:
            if not 0 <= start <= end <= size:
                raise ValueError(f"leaf range [{start}, {end}) is outside the {size} stored")
            if start < end:
                keys.update(perfect_subtrees(start, end))
        nodes = self.get_nodes(keys) if keys else {}
        return [subtree_hash_from_nodes(start, end, nodes) for start, end in ranges]

    def subtree_hash(self, start: int, end: int) -> bytes:
        """MTH of leaves[start:end]; usable as the `get_subtree` callback of `_merkle`."""
        return self.subtree_hashes([(start, end)])[0]

    def root(self, size: int | None = None) -> bytes:
        """Root of the tree of the first `size` leaves (default: all stored)."""
        size = self.size if size is None else size
        return EMPTY_ROOT if size == 0 else self.subtree_hash(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 inclusion proof of leaf `index` in the tree of `size` leaves."""
        size = self.size if size is None else size
        return self.subtree_hashes(inclusion_proof_ranges(index, size))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 consistency proof from `old_size` leaves to `new_size` (default: all)."""
        new_size = self.size if new_size is None else new_size
        return self.subtree_hashes(consistency_proof_ranges(old_size, new_size))

    def frontier(self, size: int | None = None) -> MerkleFrontier:
        """The compact range of the first `size` leaves, e.g. to resume a writer."""
        size = self.size if size is None else size
        if size == 0:
            return MerkleFrontier()
        if size > self.size:
            raise ValueError(f"tree size {size} exceeds the {self.size} leaves stored")
        keys = perfect_subtrees(0, size)
        nodes = self.get_nodes(keys)
        return MerkleFrontier.from_nodes(size, [nodes[k] for k in keys])


class MemoryNodeStore(NodeStore):
    """`NodeStore` in lists, one per level: for tests, tools and small logs."""

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = []

    @property
    def size(self) -> int:
        return len(self._levels[0]) if self._levels else 0

    def get_nodes(self, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        levels = self._levels
        found: dict[NodeKey, bytes] = {}
        for level, index in keys:
            if not (level < len(levels) and 0 <= index < len(levels[level])):
                raise LookupError(f"no Merkle node at level {level}, index {index}")
            found[(level, index)] = levels[level][index]
        return found

    def _write_nodes(self, rows: list[_Row]) -> None:
        levels = self._levels
        for level, index, h in rows:
            if level == len(levels):
                levels.append([])
            # Rows arrive sorted and contiguous per level, so append keeps index == position.
            assert index == len(levels[level]), (level, index)
            levels[level].append(h)


# WITHOUT ROWID: the (level, idx) key is the row's only identity, so the table is one
# B-tree keyed by it, roughly halving lookups and space compared with a rowid table.
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS merkle_nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID
"""
# 2 variables a key; 400 keys stays below SQLite's historic limit of 999 variables.
_KEYS_PER_QUERY: Final = 400


class SqliteNodeStore(NodeStore):
    """`NodeStore` in table `merkle_nodes` of a caller-owned SQLite connection.

    Never begins, commits or rolls back: writes join whatever transaction the caller has
    open, so leaves and their nodes commit (or vanish) together. `size` is read from the
    table each time rather than cached, so a rolled-back batch leaves no stale state.
    """

    def __init__(self, conn: sqlite3.Connection, *, create_table: bool = True) -> None:
        self._conn = conn
        if create_table:
            # execute, not executescript: executescript would COMMIT the caller's transaction.
            conn.execute(_SCHEMA)

    @property
    def size(self) -> int:
        row = self._conn.execute("SELECT max(idx) FROM merkle_nodes WHERE level = 0").fetchone()
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def get_nodes(self, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        ordered = sorted(set(keys))
        found: dict[NodeKey, bytes] = {}
        for i in range(0, len(ordered), _KEYS_PER_QUERY):
            chunk = ordered[i : i + _KEYS_PER_QUERY]
            placeholders = ",".join("(?,?)" for _ in chunk)
            # A join on constant rows, not `(level, idx) IN (VALUES ...)`: SQLite plans the
            # IN form as a full table scan. CROSS JOIN pins `k` as the outer loop, so each
            # key is one primary-key search.
            query = (
                f"WITH k(level, idx) AS (VALUES {placeholders}) "
                "SELECT n.level, n.idx, n.hash FROM k CROSS JOIN merkle_nodes AS n "
                "ON n.level = k.level AND n.idx = k.idx"
            )
            params = [v for key in chunk for v in key]
            for level, index, h in self._conn.execute(query, params):
                found[(level, index)] = bytes(h)
        if len(found) != len(ordered):
            missing = next(k for k in ordered if k not in found)
            raise LookupError(f"merkle_nodes has no node at level {missing[0]}, index {missing[1]}")
        return found

    def _write_nodes(self, rows: list[_Row]) -> None:
        # Plain INSERT: a node written twice means two writers, which must fail loudly.
        insert_rows(self._conn, "merkle_nodes", ("level", "idx", "hash"), rows)
