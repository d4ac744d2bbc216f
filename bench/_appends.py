"""Audit-log append throughput: 64 producers append then wait, group commit."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from govshare.gateway import SqliteAccessLog

_RECORD = {
    "time": "2026-11-23T10:00:00.000000Z",
    "method": "GetCertificate",
    "consumer": "11330100002482106W",
    "provider": "11330100002482102G",
    "resource_code": "101001/00001",
    "matter_code": "330100-BDC-0001",
    "purpose": "基准测试",
    "outcome": "ALLOWED",
    "reason": "",
    "fields_returned": ["citizen_id", "name", "sex", "birth_date", "address"],
    "holder_id_hash": "ab" * 32,
    "holder_id_masked": "3301**********0071",
    "evidence_digest": "cd" * 32,
    "latency_us": 1234,
}


async def measure_appends(total: int = 50_000, producers: int = 64) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        log = SqliteAccessLog(Path(folder) / "audit.db")
        await log.open()
        per_producer = total // producers

        async def produce(n: int) -> None:
            for i in range(per_producer):
                await log.append({**_RECORD, "request_id": f"{n}-{i}"}).wait()

        began = time.perf_counter()
        await asyncio.gather(*(produce(n) for n in range(producers)))
        elapsed = time.perf_counter() - began
        commits = log.commits
        await log.close()
    appended = per_producer * producers
    return {
        "appends": appended,
        "seconds": elapsed,
        "appends_per_s": appended / elapsed,
        "records_per_commit": appended / max(commits, 1),
    }
