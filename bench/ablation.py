"""Where a GetCertificate's CPU goes, measured in place: `python -m bench.ablation`.

Microbenchmarks of one component in a loop undercount it: inside the serving
gateway, with grpc's and uvloop's work in between, the same code costs about
twice as much (cold caches, more loop iterations). So this starts the gateway
several times, each time with one part of the request path replaced by a
stand-in that answers at once, and reads the gateway's CPU per request under
the same c=16 load. The difference to the full gateway is that part's cost.

    full               the real gateway
    no-registry-call   the adapter answers a fixed record without HTTP
    no-signing         the evidence token is a fixed string
    no-audit-log       appends return an index and are durable at once
    no-access-line     the INFO access line per call is not written
    handler-only       all three above: identity, policy, records, grpc
    empty-handler      GetCertificate returns an empty Evidence (grpc alone)

Stand-ins exist only in this profiling tool; the gateway has no switch for them.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.__main__ import _ROOT, _Child, _load

VARIANTS = {
    "full": (),
    "no-registry-call": ("registry",),
    "no-signing": ("signing",),
    "no-audit-log": ("log",),
    "no-access-line": ("access_line",),
    "handler-only": ("registry", "signing", "log"),
    "empty-handler": ("handler",),
}


def _stub(parts: tuple[str, ...]) -> None:
    """Replace the named parts of the request path in this (gateway) process."""
    from govshare.adapters import HttpJsonAdapter, ProviderRecord
    from govshare.api.exchange.v1 import exchange_pb2
    from govshare.gateway import EvidenceSigner, ExchangeServicer, PendingAppend, SqliteAccessLog

    if "registry" in parts:
        record = ProviderRecord(
            fields={"citizen_id": "x", "name": "张三", "sex": "男", "birth_date": "1990-01-01"}
        )

        # The Adapter protocol fixes the keyword.
        async def lookup(self: Any, request: Any, *, timeout: float) -> ProviderRecord:  # noqa: ASYNC109
            return record

        HttpJsonAdapter.lookup = lookup  # type: ignore[method-assign]
    if "signing" in parts:
        EvidenceSigner.sign = lambda self, payload, **_: "a.b.c"  # type: ignore[method-assign]
    if "log" in parts:

        def append(self: Any, record: Any) -> PendingAppend:
            durable = self._loop.create_future()
            durable.set_result(None)
            self._size += 1
            return PendingAppend(self._size - 1, b"", durable)

        SqliteAccessLog.append = append  # type: ignore[method-assign]
    if "access_line" in parts:
        logging.getLogger("govshare.access").setLevel(logging.WARNING)
    if "handler" in parts:

        async def empty(self: Any, request: Any, context: Any) -> Any:
            return exchange_pb2.Evidence()

        ExchangeServicer.GetCertificate = empty  # type: ignore[method-assign]


def _child() -> None:
    """`python -m bench.ablation --child PARTS KIND ARGS`: a stubbed gateway server."""
    _stub(tuple(filter(None, sys.argv[2].split(","))))
    sys.argv = [sys.argv[0], *sys.argv[3:]]
    from bench._servers import main

    main()


def _measure(arguments: argparse.Namespace) -> None:
    from govshare.adapters.simulators import generate_population
    from govshare.gateway import DevPki

    population = generate_population()
    holders = [p.citizen_id for p in population.persons[:500]]
    with tempfile.TemporaryDirectory() as folder:
        pki = DevPki(Path(folder) / "pki")
        pki.init()
        client = pki.issue("dept", "11330100002482106W")
        common = {"pki_dir": str(pki.folder)}
        simulators = _Child("simulators", {**common, "cpu": 1})
        try:
            for n, name in enumerate(arguments.variants):
                args = {
                    **common,
                    "cpu": 0,
                    "data_dir": str(Path(folder) / f"gateway-{n}"),
                    "registries": simulators.info["base_urls"],
                }
                command = [sys.executable, "-m", "bench.ablation", "--child"]
                server = subprocess.Popen(
                    [*command, ",".join(VARIANTS[name]), "gateway", json.dumps(args)],
                    cwd=_ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                assert server.stdin is not None
                assert server.stdout is not None
                ready = json.loads(server.stdout.readline()[len("READY ") :])
                runs = [
                    _load(
                        {
                            **common,
                            "cpu": 1,
                            "address": ready["address"],
                            "server_pid": server.pid,
                            "cert": str(client.certificate),
                            "key": str(client.private_key),
                            "method": "get_certificate",
                            "concurrency": 16,
                            "warmup": 0.5,
                            "duration": arguments.duration,
                            "holders": holders,
                        }
                    )
                    for _ in range(arguments.repeats)
                ]
                server.stdin.close()
                server.stdout.read()
                server.wait(timeout=30)
                rps = statistics.median(r["rps"] for r in runs)
                cpu = statistics.median(r["server_cpu_us_per_request"] for r in runs)
                print(f"{name:<18} {rps:7.0f} req/s  {cpu:6.0f} µs CPU per request", flush=True)
        finally:
            simulators.stop()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child()
        return
    parser = argparse.ArgumentParser(prog="python -m bench.ablation", description=__doc__)
    parser.add_argument("variants", nargs="*", help=f"any of {', '.join(VARIANTS)} (default: all)")
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    unknown = [v for v in arguments.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants: {', '.join(unknown)}")
    arguments.variants = arguments.variants or list(VARIANTS)
    _measure(arguments)


if __name__ == "__main__":
    main()
