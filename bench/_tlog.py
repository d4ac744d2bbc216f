"""Transparency-log figures: proof time and offline verification on a big log.

The log is built with the writer's own schema and node store in bulk (the
writer's group commit runs ~10k appends/s, so a 1M log through it would take
minutes); then one checkpoint is signed through the real `SqliteAccessLog`.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import rfc8785
from govshare.gateway import (
    QUERY_COLUMNS,
    SqliteAccessLog,
    SqliteNodeStore,
    leaf_hash,
    load_or_create_note_signer,
    query_columns,
    verify_log_file,
)

_BATCH = 50_000


def _record(index: int) -> dict[str, object]:
    return {
        "time": "2026-11-23T10:00:00.000000Z",
        "consumer": "11330100002482106W",
        "resource_code": "101001/00001",
        "outcome": "ALLOWED",
        "request_id": f"bench-{index}",
        "holder_id_hash": f"{index:064x}",
    }


def _build(path: Path, size: int) -> float:
    began = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    nodes = SqliteNodeStore(conn)
    for start in range(0, size, _BATCH):
        records = [_record(i) for i in range(start, min(size, start + _BATCH))]
        leaves = [rfc8785.dumps(record) for record in records]
        hashes = [leaf_hash(leaf) for leaf in leaves]
        conn.execute("BEGIN")
        # Every queryable column, derived as the writer does: `audit verify` checks them.
        conn.executemany(
            f"INSERT INTO access_log (idx, leaf, leaf_hash, {', '.join(QUERY_COLUMNS)}) "
            f"VALUES ({', '.join('?' * (3 + len(QUERY_COLUMNS)))})",
            [
                (start + i, leaf, h, *query_columns(record))
                for i, (record, leaf, h) in enumerate(zip(records, leaves, hashes, strict=True))
            ],
        )
        nodes.add_leaf_hashes(start, hashes)
        conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - began


async def _prepare_schema(path: Path) -> None:
    log = SqliteAccessLog(path)
    await log.open()
    await log.close()


async def _checkpoint(path: Path, key: Path) -> str:
    signer = load_or_create_note_signer(key, "bench.local/access-log")
    log = SqliteAccessLog(path, note_signer=signer, origin="bench.local/access-log")
    began = time.perf_counter()
    await log.open()
    opened = time.perf_counter() - began
    await log.publish_checkpoint()
    await log.close()
    print(f"  reopen of the big log: {opened * 1e3:.1f} ms", flush=True)
    return signer.verifier_key()


def build_log(path: Path, size: int) -> float:
    """A log of `size` entries in the gateway's own format, built in bulk; seconds taken."""
    asyncio.run(_prepare_schema(path))
    return _build(path, size)


def measure_tlog(size: int = 1_000_000, proofs: int = 2_000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "audit.db"
        asyncio.run(_prepare_schema(path))
        build_s = _build(path, size)
        key = asyncio.run(_checkpoint(path, Path(folder) / "note.pem"))
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        store = SqliteNodeStore(conn, create_table=False)
        rng = random.Random(7)
        timings = []
        for _ in range(proofs):
            index = rng.randrange(size)
            began = time.perf_counter()
            store.inclusion_proof(index, size)
            timings.append(time.perf_counter() - began)
        conn.close()
        timings.sort()
        began = time.perf_counter()
        result = verify_log_file(path, key)
        verify_s = time.perf_counter() - began
        if not result.ok:
            raise RuntimeError(f"bench log failed verification: {result.problem}")
        file_mib = path.stat().st_size / 2**20
    return {
        "entries": size,
        "build_seconds": build_s,
        "inclusion_proof_median_ms": statistics.median(timings) * 1e3,
        "inclusion_proof_p99_ms": timings[int(0.99 * len(timings))] * 1e3,
        "verify_seconds": verify_s,
        "verify_entries_per_s": size / verify_s,
        "file_mib": file_mib,
    }


if __name__ == "__main__":
    print(measure_tlog())
