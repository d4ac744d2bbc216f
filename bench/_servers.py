"""Server processes for the benchmark: `python -m bench._servers KIND ARGS_JSON`.

KIND is `echo` (a bare grpc.aio unary echo with the same mTLS setup, the
reference), `echo_sync` (the same on grpc's thread-pool server), `simulators`
(the five registries) or `gateway`. Each pins itself, prints READY with its
address, and runs until stdin closes; the gateway then prints its peak RSS.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from govshare.gateway import configure_logging, run_with_event_loop

from bench._child import announce, peak_rss_kib, pin_to

# As many as the load's concurrency at c=16: no call waits for a worker.
_SYNC_WORKERS = 16


async def _stdin_closed() -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


def _server_credentials(pki_dir: Path) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [((pki_dir / "server.key").read_bytes(), (pki_dir / "server.crt").read_bytes())],
        root_certificates=(pki_dir / "ca.crt").read_bytes(),
        require_client_auth=True,
    )


async def _echo(args: dict[str, Any]) -> None:
    async def echo(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        return request

    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port("127.0.0.1:0", _server_credentials(Path(args["pki_dir"])))
    await server.start()
    announce({"address": f"127.0.0.1:{port}"})
    await _stdin_closed()
    await server.stop(None)


def _echo_sync(args: dict[str, Any]) -> None:
    """The same echo on grpc's synchronous server (a thread pool): the issue's
    "sync vs aio server" option, measured as a reference beside the aio echo."""

    def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
        return request

    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=_SYNC_WORKERS),
        options=[("grpc.so_reuseport", 0)],
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port("127.0.0.1:0", _server_credentials(Path(args["pki_dir"])))
    server.start()
    announce({"address": f"127.0.0.1:{port}"})
    sys.stdin.read()
    server.stop(None)


async def _simulators(args: dict[str, Any]) -> None:
    from govshare.adapters.simulators import generate_population, start_simulators

    async with await start_simulators(generate_population()) as simulators:
        announce({"base_urls": dict(simulators.base_urls)})
        await _stdin_closed()


def _log_like_serve(data_dir: Path) -> None:
    """As `govshare serve` runs: one INFO line per access, here into a file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    configure_logging(logging.INFO, data_dir / "gateway.log")


async def _gateway(args: dict[str, Any]) -> None:
    from govshare.gateway import Gateway, GatewayConfig

    config = GatewayConfig(
        data_dir=Path(args["data_dir"]),
        pki_dir=Path(args["pki_dir"]),
        listen="127.0.0.1:0",
        registries=args["registries"],
    )
    async with Gateway(config) as gateway:
        announce({"address": gateway.address})
        await _stdin_closed()
    sys.stdout.write("PEAK_RSS_KIB " + str(peak_rss_kib()) + "\n")
    sys.stdout.flush()


def main() -> None:
    kind, raw = sys.argv[1], sys.argv[2]
    args = json.loads(raw)
    pin_to(args.get("cpu"))
    if kind == "gateway":
        _log_like_serve(Path(args["data_dir"]))
    if kind == "echo_sync":
        _echo_sync(args)
        return
    runner = {"echo": _echo, "simulators": _simulators, "gateway": _gateway}[kind]
    # Every server runs on the loop the gateway uses in production, the echo too,
    # so the ratio compares like with like.
    run_with_event_loop(runner(args), args.get("event_loop", "uvloop"))


if __name__ == "__main__":
    main()
