"""Durability: a gateway killed with SIGKILL under load loses no answered access."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import grpc
import yaml
from govshare.adapters.simulators import Population
from govshare.api.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from govshare.gateway import open_channel, verify_log_file
from support import Pki


def _start_gateway(config: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "govshare.gateway", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "listening on" in line, line
    return process, line.split("listening on ")[1].split()[0]


async def _load(
    address: str,
    pki: Pki,
    holders: list[str],
    answered: list[tuple[str, int]],
    enough: asyncio.Event,
) -> None:
    """Closed-loop load from 16 workers until the gateway goes away."""
    async with open_channel(address, pki.ca_certificate, pki.land_registry) as channel:
        stub = exchange_pb2_grpc.ExchangeServiceStub(channel)

        async def worker(n: int) -> None:
            for i in range(100_000):
                request_id = f"w{n}-{i}"
                try:
                    evidence = await stub.GetCertificate(
                        exchange_pb2.GetCertificateRequest(
                            certificate_type="identity_record",
                            holder=exchange_pb2.Holder(
                                id_type="111", id=holders[(n * 31 + i) % len(holders)]
                            ),
                            matter_code="330100-BDC-0001",
                            purpose="崩溃恢复测试",
                            request_id=request_id,
                        ),
                        timeout=5,
                    )
                except grpc.aio.AioRpcError:
                    return
                answered.append((request_id, evidence.log_index))
                if len(answered) >= 300:
                    enough.set()

        await asyncio.gather(*(worker(n) for n in range(16)))


class TestSigkillUnderLoad:
    async def test_every_answered_request_is_in_the_log_after_a_kill(
        self, tmp_path: Path, pki: Pki, simulators: dict[str, str], population: Population
    ) -> None:
        """After SIGKILL and restart, each OK answer's record is at its index and the log verifies."""
        config = tmp_path / "gateway.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "data_dir": str(tmp_path / "data"),
                    "pki_dir": str(pki.folder),
                    "listen": "127.0.0.1:0",
                    "registries": simulators,
                }
            )
        )
        process, address = _start_gateway(config)
        answered: list[tuple[str, int]] = []
        holders = [p.citizen_id for p in population.persons[:200]]
        enough = asyncio.Event()
        load = asyncio.create_task(_load(address, pki, holders, answered, enough))
        try:
            await asyncio.wait_for(enough.wait(), timeout=60)
            os.kill(process.pid, signal.SIGKILL)
            await asyncio.wait_for(load, timeout=30)
        finally:
            process.kill()
            process.wait()
            assert process.stdout is not None
            process.stdout.close()
        assert len(answered) >= 300
        restarted, address = _start_gateway(config)
        try:
            db = tmp_path / "data" / "audit.db"
            with sqlite3.connect(db) as conn:
                stored = {
                    int(i): json.loads(leaf)
                    for i, leaf in conn.execute("SELECT idx, leaf FROM access_log")
                }
        finally:
            restarted.send_signal(signal.SIGTERM)
            restarted.wait(timeout=30)
            assert restarted.stdout is not None
            restarted.stdout.close()
        missing = [
            (rid, index)
            for rid, index in answered
            if stored.get(index, {}).get("request_id") != rid
        ]
        assert not missing, (
            f"{len(missing)} answered requests have no log entry, e.g. {missing[:3]}"
        )
        assert sorted(stored) == list(range(len(stored)))
        assert verify_log_file(db, None).ok
