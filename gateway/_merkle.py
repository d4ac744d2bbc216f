"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and verification over SHA-256.

Pure functions: proof *generation* asks a `get_subtree(start, end)` callback for the
Merkle tree hash (MTH) of `leaves[start:end]`, so the caller decides where hashes come
from (a node store, `_merkle_store`, answers each request from O(log n) stored nodes).
Every range the RFC 9162 algorithms request starts at a multiple of the next power of
two at or above its length, which is why aligned perfect subtrees are enough to answer
them; `perfect_subtrees` gives that decomposition.

Error convention: generators raise `ValueError` for impossible arguments (index outside
the tree, old size above new size). Verifiers never raise: any malformed or wrong input,
including impossible sizes, makes them return False, because they run on untrusted data.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleFrontier",
    "NodeKey",
    "consistency_proof",
    "consistency_proof_ranges",
    "inclusion_proof",
    "inclusion_proof_ranges",
    "leaf_hash",
    "node_hash",
    "perfect_subtrees",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "subtree_hash_from_nodes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
_MAX_SIZE: Final = (1 << 64) - 1  # tree sizes are uint64 on the wire (tlog-checkpoint)
_FRONTIER_HEADER: Final = struct.Struct(">Q")

NodeKey = tuple[int, int]
"""(level, index): the perfect subtree over leaves [index * 2**level, (index + 1) * 2**level)."""


def leaf_hash(leaf: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || leaf)."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below `n` (n >= 2): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Iterable[bytes]) -> bytes:
    """MTH of a whole list of leaf hashes in O(n) time and O(log n) memory (reference)."""
    frontier = MerkleFrontier()
    frontier.extend(hashes)
    return frontier.root()


def perfect_subtrees(start: int, end: int) -> list[NodeKey]:
    """The aligned perfect subtrees, left to right, whose hashes determine MTH(leaves[start:end]).

    O(log n) nodes when `start` is a multiple of the next power of two >= end - start,
    which holds for every range RFC 9162 proofs and roots request; other ranges are
    still answered correctly, down to single leaves where alignment forces it.
    """
    _check_range(start, end)
    keys: list[NodeKey] = []
    _collect(start, end, keys)
    return keys


def _collect(start: int, end: int, keys: list[NodeKey]) -> None:
    n = end - start
    # n a power of two and start a multiple of n: exactly one stored node.
    if n & (n - 1) == 0 and start & (n - 1) == 0:
        level = n.bit_length() - 1
        keys.append((level, start >> level))
        return
    k = _split(n)
    _collect(start, start + k, keys)
    _collect(start + k, end, keys)


def subtree_hash_from_nodes(start: int, end: int, nodes: Mapping[NodeKey, bytes]) -> bytes:
    """MTH(leaves[start:end]) from the hashes of `perfect_subtrees(start, end)`.

    Raises KeyError if `nodes` lacks one of them. An empty range hashes to EMPTY_ROOT.
    """
    if start == end:
        return EMPTY_ROOT
    _check_range(start, end)
    return _combine(start, end, nodes)


def _combine(start: int, end: int, nodes: Mapping[NodeKey, bytes]) -> bytes:
    # Mirrors _collect exactly, so it reads precisely the keys that one listed.
    n = end - start
    if n & (n - 1) == 0 and start & (n - 1) == 0:
        level = n.bit_length() - 1
        return nodes[(level, start >> level)]
    k = _split(n)
    return node_hash(_combine(start, start + k, nodes), _combine(start + k, end, nodes))


def _check_range(start: int, end: int) -> None:
    if not 0 <= start < end <= _MAX_SIZE:
        raise ValueError(f"invalid leaf range [{start}, {end})")


def inclusion_proof_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose MTHs form PATH(index, D[0:size]) (RFC 9162 §2.1.3.1), leaf first."""
    if not 0 <= index < size <= _MAX_SIZE:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    # Walking down from the root; the RFC's recursion emits the deepest sibling first.
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


def consistency_proof_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose MTHs form PROOF(old_size, D[0:new_size]) (RFC 9162 §2.1.4.1)."""
    if not 0 <= old_size <= new_size <= _MAX_SIZE:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    ranges: list[tuple[int, int]] = []
    if old_size in (0, new_size):
        return ranges
    lo, hi = 0, new_size
    # `complete` is SUBPROOF's b: true while the old tree's root is a node of this path.
    complete = True
    while True:
        if old_size == hi:
            if not complete:
                ranges.append((lo, hi))
            break
        k = _split(hi - lo)
        if old_size - lo <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            complete = False
    ranges.reverse()
    return ranges


def inclusion_proof(index: int, size: int, get_subtree: Callable[[int, int], bytes]) -> list[bytes]:
    """RFC 9162 inclusion proof for leaf `index` in the tree of the first `size` leaves."""
    return [get_subtree(start, end) for start, end in inclusion_proof_ranges(index, size)]


def consistency_proof(
    old_size: int, new_size: int, get_subtree: Callable[[int, int], bytes]
) -> list[bytes]:
    """RFC 9162 consistency proof between the trees of `old_size` and `new_size` leaves."""
    return [get_subtree(s, e) for s, e in consistency_proof_ranges(old_size, new_size)]


def _all_hashes(values: Iterable[bytes]) -> bool:
    return all(isinstance(v, bytes) and len(v) == HASH_SIZE for v in values)


def _inclusion_root(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes | None:
    # RFC 9162 §2.1.3.2, step by step; None wherever the RFC says "fail".
    if not 0 <= index < size <= _MAX_SIZE or not _all_hashes((leaf, *proof)):
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that `proof` leads to from `leaf_hash` at `index` in a tree of `size`.

    Raises ValueError if the proof cannot belong to such a tree (index >= size, wrong
    length, elements not 32 bytes): a root computed from it would mean nothing.
    """
    root = _inclusion_root(leaf_hash, index, size, proof)
    if root is None:
        raise ValueError(f"not an inclusion proof for index {index} in a tree of size {size}")
    return root


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """True iff `proof` shows `leaf_hash` at `index` in the tree of `size` with `root`."""
    computed = _inclusion_root(leaf_hash, index, size, proof)
    return computed is not None and computed == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True iff `proof` shows the tree (`old_size`, `old_root`) is a prefix of the new one.

    RFC 9162 §2.1.4.2. Trivial cases need an empty proof: equal sizes need equal roots,
    and an empty old tree needs `old_root` == EMPTY_ROOT (stricter than some libraries,
    which ignore the old root there).
    """
    if not 0 <= old_size <= new_size <= _MAX_SIZE or not _all_hashes((old_root, new_root)):
        return False
    if not _all_hashes(proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        # The old tree is a perfect subtree of the new one: its root is the path's start.
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


class MerkleFrontier:
    """Append-only compact range over leaves [0, size): the right-edge perfect subtree roots.

    Holds one hash per set bit of `size` (largest subtree first), so a writer keeps the
    current root in O(log n) memory and persists it with `to_bytes` to resume later.
    """

    __slots__ = ("_nodes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._nodes: list[bytes] = []

    @classmethod
    def from_nodes(cls, size: int, nodes: Sequence[bytes]) -> MerkleFrontier:
        """A frontier from `perfect_subtrees(0, size)`'s hashes, left to right."""
        if not 0 <= size <= _MAX_SIZE:
            raise ValueError(f"invalid tree size {size}")
        if len(nodes) != size.bit_count() or not _all_hashes(nodes):
            raise ValueError(f"a frontier of size {size} needs {size.bit_count()} 32-byte hashes")
        frontier = cls()
        frontier._size = size
        frontier._nodes = list(nodes)
        return frontier

    @classmethod
    def from_bytes(cls, data: bytes) -> MerkleFrontier:
        """Inverse of `to_bytes`; ValueError if `data` is not a well-formed frontier."""
        if len(data) < _FRONTIER_HEADER.size:
            raise ValueError("frontier data is truncated")
        (size,) = _FRONTIER_HEADER.unpack_from(data)
        body = data[_FRONTIER_HEADER.size :]
        if len(body) != size.bit_count() * HASH_SIZE:
            raise ValueError(f"frontier of size {size} has {len(body)} bytes of hashes")
        nodes = [body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)]
        return cls.from_nodes(size, nodes)

    def to_bytes(self) -> bytes:
        """8-byte big-endian size, then the subtree hashes, largest subtree first."""
        return _FRONTIER_HEADER.pack(self._size) + b"".join(self._nodes)

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def nodes(self) -> tuple[bytes, ...]:
        """The right-edge perfect subtree hashes, largest (leftmost) first."""
        return tuple(self._nodes)

    def append(self, leaf_hash: bytes) -> None:
        """Add the next leaf (its RFC 6962 leaf hash, not the leaf itself)."""
        if not isinstance(leaf_hash, bytes) or len(leaf_hash) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        if self._size == _MAX_SIZE:
            raise ValueError("the tree is full")
        nodes, h, n = self._nodes, leaf_hash, self._size
        # Each trailing 1 bit of the old size is a subtree of equal height to merge with.
        while n & 1:
            h = node_hash(nodes.pop(), h)
            n >>= 1
        nodes.append(h)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append each of `leaf_hashes` in order."""
        for h in leaf_hashes:
            self.append(h)

    def root(self) -> bytes:
        """MTH of all leaves appended so far; EMPTY_ROOT for an empty tree."""
        if not self._nodes:
            return EMPTY_ROOT
        nodes = self._nodes
        r = nodes[-1]
        for h in reversed(nodes[:-1]):
            r = node_hash(h, r)
        return r

    def copy(self) -> MerkleFrontier:
        """An independent frontier with the same state."""
        return MerkleFrontier.from_nodes(self._size, self._nodes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MerkleFrontier):
            return NotImplemented
        return self._size == other._size and self._nodes == other._nodes

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"MerkleFrontier(size={self._size}, root={self.root().hex()})"
