"""Closed-loop load generator: `python -m bench._loadgen ARGS_JSON` (or `-`: JSON on stdin).

`concurrency` workers share one mTLS channel and call back to back for
`warmup` + `duration` seconds; only calls finished after the warm-up count.
Prints one JSON line: requests, errors, seconds, rps, p50_ms, p99_ms.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import grpc

from bench._child import pin_to


def _channel(args: dict[str, Any]) -> grpc.aio.Channel:
    pki = Path(args["pki_dir"])
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(pki / "ca.crt").read_bytes(),
        private_key=Path(args["key"]).read_bytes(),
        certificate_chain=Path(args["cert"]).read_bytes(),
    )
    return grpc.aio.secure_channel(args["address"], credentials)


class IncompleteAnswer(Exception):
    """A call that answered without doing the scenario's whole work."""


def _caller(channel: grpc.aio.Channel, args: dict[str, Any]) -> Any:
    method = args["method"]
    if method == "echo":
        echo = channel.unary_unary("/bench.Echo/Echo")
        payload = b"x" * 120  # about the size of a GetCertificateRequest

        def call(_: int) -> Any:
            return echo(payload, timeout=10)

        return call
    from govshare.api.exchange.v1 import exchange_pb2, exchange_pb2_grpc

    stub = exchange_pb2_grpc.ExchangeServiceStub(channel)
    holders: list[str] = args["holders"]
    if method == "get_certificate":

        def call(i: int) -> Any:
            return stub.GetCertificate(
                exchange_pb2.GetCertificateRequest(
                    certificate_type="identity_record",
                    holder=exchange_pb2.Holder(id_type="111", id=holders[i % len(holders)]),
                    matter_code="330100-BDC-0001",
                    purpose="基准测试",
                ),
                timeout=10,
            )

        return call
    if method == "query_record":

        def call(i: int) -> Any:
            return stub.QueryRecord(
                exchange_pb2.QueryRecordRequest(
                    resource_code="101001/00001",
                    holder=exchange_pb2.Holder(id_type="111", id=holders[i % len(holders)]),
                    fields=["name", "birth_date"],
                    matter_code="330100-BDC-0001",
                    purpose="基准测试",
                ),
                timeout=10,
            )

        return call
    if method == "resolve_materials":
        company: str = args["company"]

        async def resolve(i: int) -> Any:
            reply = await stub.ResolveMaterials(
                exchange_pb2.ResolveMaterialsRequest(
                    matter_code="330100-BDC-0003",
                    applicants=[
                        exchange_pb2.Holder(id_type="111", id=holders[i % len(holders)]),
                        exchange_pb2.Holder(id_type="001", id=company),
                    ],
                    purpose="基准测试",
                ),
                timeout=10,
            )
            # An answer with a material the gateway could not fetch is not the work
            # the scenario measures: counted as an error, not as throughput.
            if any(r.outcome == exchange_pb2.MATERIAL_OUTCOME_UNAVAILABLE for r in reply.results):
                raise IncompleteAnswer("a material was UNAVAILABLE")
            return reply

        return resolve
    raise SystemExit(f"unknown method {method}")


def _process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of process `pid` so far (None where /proc is missing)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_READY_SECONDS = 30.0


async def _run(args: dict[str, Any]) -> dict[str, Any]:
    warmup, duration, concurrency = args["warmup"], args["duration"], args["concurrency"]
    latencies: list[float] = []
    errors = 0
    async with _channel(args) as channel:
        # Bounded: a server that never comes up fails the run instead of hanging it.
        await asyncio.wait_for(channel.channel_ready(), _READY_SECONDS)
        call = _caller(channel, args)
        start = time.perf_counter()
        measure_from = start + warmup
        stop_at = measure_from + duration

        async def worker(offset: int) -> None:
            nonlocal errors
            i = offset
            while True:
                began = time.perf_counter()
                if began >= stop_at:
                    return
                try:
                    await call(i)
                except (grpc.aio.AioRpcError, IncompleteAnswer):
                    # Counted in the window like answers, and never as throughput:
                    # a fast refusal must not pass for a fast answer.
                    if began >= measure_from:
                        errors += 1
                else:
                    if began >= measure_from:
                        latencies.append(time.perf_counter() - began)
                i += concurrency

        async def server_cpu() -> tuple[float | None, float | None]:
            # Read when the measured window opens and closes, like the latencies.
            await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
            first = _process_cpu_seconds(args.get("server_pid"))
            await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
            return first, _process_cpu_seconds(args.get("server_pid"))

        cpu_task = asyncio.create_task(server_cpu())
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        cpu_first, cpu_last = await cpu_task
    latencies.sort()
    server_cpu_us = (
        (cpu_last - cpu_first) / len(latencies) * 1e6
        if cpu_first is not None and cpu_last is not None and latencies
        else 0.0
    )

    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": duration,
        "rps": len(latencies) / duration,
        "p50_ms": percentile(latencies, 0.50) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        "server_cpu_us_per_request": server_cpu_us,
    }


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty): the smallest
    value with at least q of the values at or below it."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def main() -> None:
    # The arguments (holder ids among them) come on stdin: a failure's traceback
    # would otherwise print the whole command line.
    args = json.loads(sys.stdin.read() if sys.argv[1:] == ["-"] else sys.argv[1])
    pin_to(args.get("cpu"))
    print(json.dumps(asyncio.run(_run(args))), flush=True)


if __name__ == "__main__":
    main()
