from __future__ import annotations

import hashlib
import random
import sqlite3
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import closing

import pytest
from govshare.gateway._auditlog import leaf_hash as auditlog_leaf_hash
from govshare.gateway._merkle import (
    EMPTY_ROOT,
    MerkleFrontier,
    NodeKey,
    consistency_proof,
    consistency_proof_ranges,
    inclusion_proof,
    inclusion_proof_ranges,
    leaf_hash,
    node_hash,
    perfect_subtrees,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from govshare.gateway._merkle_store import MemoryNodeStore, NodeStore, SqliteNodeStore


def dh(text: str) -> bytes:
    return bytes.fromhex(text)


# The RFC 6962 test tree of Certificate Transparency, from transparency-dev/merkle
# proof/verify_test.go (commit 02194e9afb6c1d95b5381350007963aa70fff472): its eight
# leaves, the roots of the trees of sizes 1..8, and known proofs. The Go file numbers
# leaves from 1 in `inclusionProofs`; the indices below are 0-based.
LEAVES = [
    dh(x)
    for x in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    dh("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    dh("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    dh("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    dh("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    dh("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    dh("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    dh("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    dh("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]
INCLUSION_VECTORS: list[tuple[int, int, list[bytes]]] = [
    (0, 1, []),
    (
        0,
        8,
        [
            dh("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            dh("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            dh("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            dh("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            dh("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            dh("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [dh("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            dh("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            dh("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            dh("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]
CONSISTENCY_VECTORS: list[tuple[int, int, list[bytes]]] = [
    (1, 1, []),
    (
        1,
        8,
        [
            dh("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            dh("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            dh("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            dh("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            dh("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            dh("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            dh("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            dh("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            dh("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            dh("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            dh("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]
VECTOR_HASHES = [leaf_hash(leaf) for leaf in LEAVES]

EXHAUSTIVE = 64
HASHES = [leaf_hash(f"record {i}".encode()) for i in range(5000)]


def reference(hashes: Sequence[bytes]) -> Callable[[int, int], bytes]:
    """`get_subtree` straight from the definition of MTH, for checking everything else."""
    return lambda start, end: root_from_leaf_hashes(hashes[start:end])


def flipped(proof: Sequence[bytes], i: int, bit: int = 3) -> list[bytes]:
    changed = list(proof)
    changed[i] = bytes([changed[i][0] ^ (1 << bit)]) + changed[i][1:]
    return changed


def fill(store: NodeStore, hashes: Sequence[bytes], seed: int) -> NodeStore:
    """Append `hashes` in batches of random sizes, as a group-committing writer would."""
    rnd = random.Random(seed)
    while store.size < len(hashes):
        n = rnd.choice([1, 1, 2, 3, 7, 16, 33, 100])
        store.add_leaf_hashes(store.size, hashes[store.size : store.size + n])
    return store


@pytest.fixture(scope="module")
def sqlite_conn() -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(":memory:")) as conn:
        yield conn


@pytest.fixture(scope="module", params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, sqlite_conn: sqlite3.Connection) -> NodeStore:
    """A store holding all of HASHES, filled in random batches."""
    if request.param == "memory":
        return fill(MemoryNodeStore(), HASHES, seed=1)
    return fill(SqliteNodeStore(sqlite_conn), HASHES, seed=2)


@pytest.fixture(params=["memory", "sqlite"])
def empty_store(request: pytest.FixtureRequest) -> Iterator[NodeStore]:
    if request.param == "memory":
        yield MemoryNodeStore()
    else:
        with closing(sqlite3.connect(":memory:")) as conn:
            yield SqliteNodeStore(conn)


class TestHashing:
    def test_leaf_and_node_hash_domains(self) -> None:
        """Leaves hash with prefix 0x00, interior nodes with 0x01, the empty tree to SHA-256('')."""
        assert leaf_hash(b"ab") == hashlib.sha256(b"\x00ab").digest()
        assert (
            node_hash(b"a" * 32, b"b" * 32)
            == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
        )
        assert (
            EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )
        assert root_from_leaf_hashes([]) == EMPTY_ROOT

    def test_same_leaf_hash_as_the_access_log(self) -> None:
        """The leaf hashes the access log already stores are this tree's leaf hashes."""
        assert all(leaf_hash(leaf) == auditlog_leaf_hash(leaf) for leaf in LEAVES)


class TestKnownVectors:
    def test_roots(self, empty_store: NodeStore) -> None:
        """The reference, the frontier and the stores give CT's roots for sizes 1..8."""
        frontier = MerkleFrontier()
        empty_store.add_leaf_hashes(0, VECTOR_HASHES)
        for size, root in enumerate(ROOTS, start=1):
            frontier.append(VECTOR_HASHES[size - 1])
            assert root_from_leaf_hashes(VECTOR_HASHES[:size]) == root
            assert frontier.root() == root
            assert empty_store.root(size) == root

    @pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
    def test_inclusion_proofs(self, index: int, size: int, proof: list[bytes]) -> None:
        """Generated inclusion proofs equal the known ones, which verify against the known roots."""
        assert inclusion_proof(index, size, reference(VECTOR_HASHES)) == proof
        assert verify_inclusion(VECTOR_HASHES[index], index, size, proof, ROOTS[size - 1])
        assert (
            root_from_inclusion_proof(VECTOR_HASHES[index], index, size, proof) == ROOTS[size - 1]
        )

    @pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS)
    def test_consistency_proofs(self, old: int, new: int, proof: list[bytes]) -> None:
        """Generated consistency proofs equal the known ones, which verify against the known roots."""
        assert consistency_proof(old, new, reference(VECTOR_HASHES)) == proof
        assert verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)


class TestExhaustiveProofs:
    def test_inclusion_every_index_up_to_64(self, store: NodeStore) -> None:
        """For sizes 1..64 and every index, store proofs equal the reference and verify."""
        for size in range(1, EXHAUSTIVE + 1):
            root = root_from_leaf_hashes(HASHES[:size])
            assert store.root(size) == root
            for index in range(size):
                proof = inclusion_proof(index, size, reference(HASHES))
                assert store.inclusion_proof(index, size) == proof
                assert verify_inclusion(HASHES[index], index, size, proof, root)

    def test_consistency_every_old_size_up_to_64(self, store: NodeStore) -> None:
        """For sizes 1..64 and every old size, store proofs equal the reference and verify."""
        roots = [root_from_leaf_hashes(HASHES[:n]) for n in range(EXHAUSTIVE + 1)]
        for new in range(1, EXHAUSTIVE + 1):
            for old in range(new + 1):
                proof = consistency_proof(old, new, reference(HASHES))
                assert store.consistency_proof(old, new) == proof
                assert verify_consistency(old, new, roots[old], roots[new], proof)

    def test_random_larger_trees(self, store: NodeStore) -> None:
        """Seeded sizes in 1000..5000: a few indices and old sizes each, reference == store, verifying."""
        rnd = random.Random(6962)
        for size in [1000, 1024, 1025, 4095, 5000, *rnd.sample(range(1000, 5001), 5)]:
            root = root_from_leaf_hashes(HASHES[:size])
            assert store.root(size) == root
            for index in [0, size - 1, *rnd.sample(range(size), 3)]:
                proof = store.inclusion_proof(index, size)
                assert proof == inclusion_proof(index, size, reference(HASHES))
                assert verify_inclusion(HASHES[index], index, size, proof, root)
            for old in [1, size - 1, *rnd.sample(range(size), 3)]:
                proof = store.consistency_proof(old, size)
                assert proof == consistency_proof(old, size, reference(HASHES))
                assert verify_consistency(old, size, store.root(old), root, proof)


class TestVerifiersReject:
    def test_tampered_inclusion_proofs(self) -> None:
        """Sizes 1..64: any flipped bit, wrong index, size, leaf or root, or changed length fails."""
        for size in range(1, EXHAUSTIVE + 1):
            root = root_from_leaf_hashes(HASHES[:size])
            for index in range(size):
                leaf = HASHES[index]
                proof = inclusion_proof(index, size, reference(HASHES))
                for i in range(len(proof)):
                    assert not verify_inclusion(leaf, index, size, flipped(proof, i), root)
                for other in {index - 1, index + 1, index ^ 2} - {index}:
                    assert not verify_inclusion(leaf, other, size, proof, root)
                # Not size ± 1: neighbouring sizes can share the path's shape, so the same
                # hashes legitimately verify; the root then stands for the other size.
                for other_size in {size * 2, size // 2} - {size}:
                    assert not verify_inclusion(leaf, index, other_size, proof, root)
                assert not verify_inclusion(HASHES[index + 1], index, size, proof, root)
                assert not verify_inclusion(leaf, index, size, proof, EMPTY_ROOT)
                assert not verify_inclusion(leaf, index, size, [*proof, root], root)
                assert not verify_inclusion(leaf, index, size, [root, *proof], root)
                if proof:
                    assert not verify_inclusion(leaf, index, size, proof[:-1], root)

    def test_tampered_consistency_proofs(self) -> None:
        """Sizes 1..64: any flipped bit, wrong sizes or roots, or changed length fails."""
        roots = [root_from_leaf_hashes(HASHES[:n]) for n in range(EXHAUSTIVE + 2)]
        for new in range(2, EXHAUSTIVE + 1):
            for old in range(1, new):
                proof = consistency_proof(old, new, reference(HASHES))
                r1, r2 = roots[old], roots[new]
                for i in range(len(proof)):
                    assert not verify_consistency(old, new, r1, r2, flipped(proof, i, bit=4))
                for o in {old - 1, old + 1, old ^ 2} - {old}:
                    assert not verify_consistency(o, new, r1, r2, proof)
                for n in {new * 2, new // 2} - {new}:  # as transparency-dev's corruptions
                    assert not verify_consistency(old, n, r1, r2, proof)
                assert not verify_consistency(old, new, r2, r1, proof)
                assert not verify_consistency(old, new, roots[old - 1], r2, proof)
                assert not verify_consistency(old, new, r1, roots[new + 1], proof)
                assert not verify_consistency(old, new, r1, r2, [])
                assert not verify_consistency(old, new, r1, r2, proof[:-1])
                assert not verify_consistency(old, new, r1, r2, [*proof, r2])
                assert not verify_consistency(old, new, r1, r2, [proof[0], *proof])

    def test_consistency_trivial_cases(self) -> None:
        """Equal sizes need equal roots and no proof; an empty old tree needs EMPTY_ROOT; no time travel."""
        r1, r2 = ROOTS[0], ROOTS[1]
        assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
        assert verify_consistency(0, 5, EMPTY_ROOT, ROOTS[4], [])
        assert verify_consistency(3, 3, ROOTS[2], ROOTS[2], [])
        assert not verify_consistency(3, 3, r1, r2, [])
        assert not verify_consistency(3, 3, ROOTS[2], ROOTS[2], [EMPTY_ROOT])
        assert not verify_consistency(0, 5, r1, ROOTS[4], [])
        assert not verify_consistency(0, 5, EMPTY_ROOT, ROOTS[4], [EMPTY_ROOT])
        assert not verify_consistency(2, 1, r2, r1, [])
        assert not verify_consistency(-1, 1, r1, r1, [])

    def test_malformed_inputs_return_false(self) -> None:
        """Impossible sizes and hashes of the wrong length give False, never an exception."""
        proof = INCLUSION_VECTORS[1][2]
        leaf = VECTOR_HASHES[0]
        assert not verify_inclusion(leaf, 8, 8, proof, ROOTS[7])
        assert not verify_inclusion(leaf, -1, 8, proof, ROOTS[7])
        assert not verify_inclusion(leaf, 0, 0, [], EMPTY_ROOT)
        assert not verify_inclusion(leaf[:31], 0, 8, proof, ROOTS[7])
        assert not verify_inclusion(leaf, 0, 8, [*proof[:2], proof[2] + b"\x00"], ROOTS[7])
        assert not verify_inclusion(leaf, 0, 1 << 64, proof, ROOTS[7])
        assert not verify_consistency(1, 8, ROOTS[0][:16], ROOTS[7], proof)
        assert not verify_consistency(1, 8, ROOTS[0], ROOTS[7], [b"", *proof[1:]])


class TestGeneratorArguments:
    def test_impossible_arguments_raise(self) -> None:
        """Proof generators and root_from_inclusion_proof raise ValueError for impossible arguments."""
        get = reference(VECTOR_HASHES)
        for index, size in [(8, 8), (-1, 8), (0, 0)]:
            with pytest.raises(ValueError, match="not in a tree"):
                inclusion_proof(index, size, get)
        for old, new in [(5, 4), (-1, 4)]:
            with pytest.raises(ValueError, match="no consistency proof"):
                consistency_proof(old, new, get)
        with pytest.raises(ValueError, match="not an inclusion proof"):
            root_from_inclusion_proof(VECTOR_HASHES[0], 0, 8, INCLUSION_VECTORS[1][2][:2])

    def test_store_refuses_sizes_beyond_its_leaves(self, store: NodeStore) -> None:
        """A store asked about leaves it does not hold raises ValueError."""
        with pytest.raises(ValueError, match="outside"):
            store.inclusion_proof(0, len(HASHES) + 1)
        with pytest.raises(ValueError, match="outside"):
            store.consistency_proof(1, len(HASHES) + 1)
        with pytest.raises(ValueError, match="exceeds"):
            store.frontier(len(HASHES) + 1)


class TestSubtreeDecomposition:
    def test_proof_ranges_are_aligned(self) -> None:
        """Every range a proof requests starts at a multiple of the next power of two >= its length."""
        for new in range(1, 130):
            ranges = [r for i in range(new) for r in inclusion_proof_ranges(i, new)]
            ranges += [r for old in range(new + 1) for r in consistency_proof_ranges(old, new)]
            for start, end in ranges:
                span = 1 << (end - start - 1).bit_length()
                assert start % span == 0, (start, end)

    def test_proofs_read_logarithmically_many_nodes(self) -> None:
        """An inclusion or consistency proof reads at most 2·log2(n) + 2 stored nodes."""
        reads: list[int] = []

        class Counting(MemoryNodeStore):
            def get_nodes(self, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
                reads.append(len(keys))
                return super().get_nodes(keys)

        counting = fill(Counting(), HASHES, seed=3)
        rnd = random.Random(9)
        for size in rnd.sample(range(2, len(HASHES) + 1), 40):
            reads.clear()
            counting.inclusion_proof(rnd.randrange(size), size)
            counting.consistency_proof(rnd.randrange(1, size), size)
            assert len(reads) == 2
            assert max(reads) <= 2 * size.bit_length() + 2

    def test_any_range_hashes_correctly(self, store: NodeStore) -> None:
        """subtree_hash is MTH of the range even for unaligned ranges proofs never ask for."""
        for start in range(40):
            for end in range(start + 1, 41):
                assert store.subtree_hash(start, end) == root_from_leaf_hashes(HASHES[start:end])
                keys = perfect_subtrees(start, end)
                assert sum(1 << level for level, _ in keys) == end - start


class TestMerkleFrontier:
    def test_root_matches_reference(self) -> None:
        """After each of 200 appends the frontier root equals the reference root."""
        frontier = MerkleFrontier()
        assert frontier.root() == EMPTY_ROOT
        for size in range(1, 201):
            frontier.append(HASHES[size - 1])
            assert frontier.size == size
            assert len(frontier.nodes) == size.bit_count()
            assert frontier.root() == root_from_leaf_hashes(HASHES[:size])

    def test_serialise_and_resume(self) -> None:
        """A frontier restored from bytes at any size continues to the same roots."""
        frontier = MerkleFrontier()
        for size in range(200):
            data = frontier.to_bytes()
            assert len(data) == 8 + 32 * size.bit_count()
            resumed = MerkleFrontier.from_bytes(data)
            assert resumed == frontier
            resumed.extend(HASHES[size : size + 5])
            assert resumed.root() == root_from_leaf_hashes(HASHES[: size + 5])
            frontier.append(HASHES[size])

    def test_copy_is_independent(self) -> None:
        """Appending to a copy leaves the original unchanged."""
        frontier = MerkleFrontier()
        frontier.extend(HASHES[:5])
        twin = frontier.copy()
        twin.append(HASHES[5])
        assert (frontier.size, twin.size) == (5, 6)

    @pytest.mark.parametrize(
        "data",
        [
            b"",
            b"\x00" * 7,
            (3).to_bytes(8, "big") + b"\x00" * 32,
            (1).to_bytes(8, "big") + b"\x00" * 33,
        ],
    )
    def test_rejects_malformed_bytes(self, data: bytes) -> None:
        """Truncated data or a hash count not matching the size is a ValueError."""
        with pytest.raises(ValueError, match="frontier"):
            MerkleFrontier.from_bytes(data)

    def test_rejects_bad_leaf_hash(self) -> None:
        """Only 32-byte leaf hashes can be appended."""
        with pytest.raises(ValueError, match="32 bytes"):
            MerkleFrontier().append(b"short")

    def test_store_rebuilds_frontier(self, store: NodeStore) -> None:
        """A store hands a writer the frontier of any stored size, equal to the incremental one."""
        frontier = MerkleFrontier()
        for size in range(300):
            assert store.frontier(size) == frontier
            frontier.append(HASHES[size])


class TestNodeStores:
    def test_batching_does_not_change_the_nodes(self, empty_store: NodeStore) -> None:
        """One batch or many, the store holds 2n - popcount(n) nodes and the same roots."""
        one = MemoryNodeStore()
        one.add_leaf_hashes(0, HASHES[:777])
        fill(empty_store, HASHES[:777], seed=4)
        keys = [(level, i) for level in range(10) for i in range(777 >> level)]
        assert len(keys) == 2 * 777 - (777).bit_count()
        assert empty_store.get_nodes(keys) == one.get_nodes(keys)
        assert empty_store.root() == one.root() == root_from_leaf_hashes(HASHES[:777])

    def test_append_only_at_the_end(self, empty_store: NodeStore) -> None:
        """Leaves must be added at the current size, as 32-byte hashes."""
        empty_store.add_leaf_hashes(0, HASHES[:3])
        for start in (0, 2, 4):
            with pytest.raises(ValueError, match="appended at 3"):
                empty_store.add_leaf_hashes(start, HASHES[3:5])
        with pytest.raises(ValueError, match="32 bytes"):
            empty_store.add_leaf_hashes(3, [b"short"])
        empty_store.add_leaf_hashes(3, [])
        assert empty_store.size == 3

    def test_right_edge_from_a_frontier_gives_the_same_nodes(self, empty_store: NodeStore) -> None:
        """A writer's frontier stands in for the store's reads of size and right edge."""
        rnd = random.Random(7)
        frontier = MerkleFrontier()
        while frontier.size < 777:
            end = min(777, frontier.size + rnd.choice([1, 2, 3, 7, 16, 33]))
            batch = HASHES[frontier.size : end]
            empty_store.add_leaf_hashes(frontier.size, batch, right_edge=frontier)
            frontier.extend(batch)
        keys = [(level, i) for level in range(10) for i in range(777 >> level)]
        reference = MemoryNodeStore()
        reference.add_leaf_hashes(0, HASHES[:777])
        assert empty_store.get_nodes(keys) == reference.get_nodes(keys)
        assert empty_store.size == 777

    def test_right_edge_of_another_size_is_refused(self, empty_store: NodeStore) -> None:
        """A frontier that does not end where the batch starts is a writer bug: refused."""
        empty_store.add_leaf_hashes(0, HASHES[:3])
        stale = MerkleFrontier()
        stale.extend(HASHES[:2])
        with pytest.raises(ValueError, match="appended at 2, not at 3"):
            empty_store.add_leaf_hashes(3, HASHES[3:5], right_edge=stale)
        assert empty_store.size == 3

    def test_missing_nodes_raise_lookup_error(self, empty_store: NodeStore) -> None:
        """Asking for a node that is not stored is a LookupError, not a wrong hash."""
        empty_store.add_leaf_hashes(0, HASHES[:3])
        with pytest.raises(LookupError):
            empty_store.get_nodes([(1, 1)])

    def test_empty_store(self, empty_store: NodeStore) -> None:
        """An empty store has size 0, the empty root and an empty frontier."""
        assert empty_store.size == 0
        assert empty_store.root() == EMPTY_ROOT
        assert empty_store.frontier() == MerkleFrontier()

    def test_append_many_in_batches(self, empty_store: NodeStore) -> None:
        """append_leaf_hashes backfills in batches with the same result."""
        empty_store.append_leaf_hashes(iter(HASHES[:1000]), batch=64)
        assert empty_store.size == 1000
        assert empty_store.root() == root_from_leaf_hashes(HASHES[:1000])

    def test_sqlite_joins_the_callers_transaction(self) -> None:
        """The SQLite store never commits: the caller's rollback removes its nodes, commit keeps them."""
        with closing(sqlite3.connect(":memory:", isolation_level=None)) as conn:
            store = SqliteNodeStore(conn)
            conn.execute("BEGIN")
            store.add_leaf_hashes(0, HASHES[:10])
            assert conn.in_transaction
            conn.execute("ROLLBACK")
            assert store.size == 0
            conn.execute("BEGIN")
            store.add_leaf_hashes(0, HASHES[:10])
            conn.execute("COMMIT")
            assert store.size == 10
            assert conn.execute("SELECT count(*) FROM merkle_nodes").fetchone() == (2 * 10 - 2,)

    def test_sqlite_reads_use_the_primary_key(self) -> None:
        """The store's node lookups are primary-key searches, never table scans."""
        with closing(sqlite3.connect(":memory:")) as conn:
            store = SqliteNodeStore(conn)
            store.add_leaf_hashes(0, HASHES[:100])
            statements: list[str] = []
            conn.set_trace_callback(statements.append)
            store.inclusion_proof(37, 99)
            conn.set_trace_callback(None)
            details = [
                row[-1]
                for sql in statements
                for row in conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
            ]
        assert any("merkle_nodes" in d and "PRIMARY KEY" in d for d in details)
        assert not [
            d
            for d in details
            if d.startswith("SCAN") and "CONSTANT ROWS" not in d and "SCAN k" not in d
        ]
