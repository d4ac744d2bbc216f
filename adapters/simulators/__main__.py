"""Run the five registry simulators in the foreground until interrupted.

    python -m govshare.adapters.simulators --base-port 18101

prints the base URL of each registry as one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys

from ._apps import REGISTRIES, SimulatorOptions, start_simulators
from ._data import generate_population


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m govshare.adapters.simulators")
    parser.add_argument("--seed", type=int, default=20261123, help="population seed")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--base-port",
        type=int,
        default=0,
        help=f"listen on consecutive ports in the order {', '.join(REGISTRIES)}; 0: free ports",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per answer")
    parser.add_argument("--failure-rate", type=float, default=0.0, help="share of HTTP 503s")
    return parser.parse_args(argv)


async def _serve(arguments: argparse.Namespace) -> None:
    population = generate_population(arguments.seed)
    ports = None
    if arguments.base_port:
        ports = {name: arguments.base_port + i for i, name in enumerate(REGISTRIES)}
    options = SimulatorOptions(latency=arguments.latency, failure_rate=arguments.failure_rate)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(signum, stop.set)
    async with await start_simulators(population, arguments.host, options, ports=ports) as sims:
        sys.stdout.write(json.dumps(sims.base_urls, indent=2) + "\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m govshare.adapters.simulators``."""
    asyncio.run(_serve(_arguments(argv)))


if __name__ == "__main__":
    main()
