"""Instructions per GetCertificate, counted by callgrind: `python -m bench.instructions`.

Wall-clock and CPU-time figures on this shared machine move by up to 40 %
between runs, too much to see a change of a few per cent. Callgrind counts the
instructions a process executes instead: the same code, inputs and
environment give the same count whatever else the machine does. So this starts
the gateway (optionally with the stand-ins of `bench.ablation`) under
`valgrind --tool=callgrind`, sends a warm-up, zeroes the counters, sends
exactly `--calls` GetCertificate calls `--concurrency` at a time, dumps the
counters and divides: instructions per call, all of the gateway's threads
together. Kernel work (syscalls, loopback TCP) is not counted, and neither are
cache misses, so this complements the CPU-time figures, it does not replace
them. With `full` and `echo` both run it also prints their quotient, the
instruction counterpart of the bench's throughput ratio. Each variant runs
`--repeats` times; the spread between repeats is the noise floor
(timer-driven work such as the audit writer's commit grouping varies).

Needs valgrind (Debian package `valgrind`); about a minute per variant.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.__main__ import _ROOT
from bench._loadgen import _caller, _channel
from bench.ablation import VARIANTS

# The bare mTLS echo of `make bench`, for an instruction ratio from one run.
_ECHO = "echo"
_CHOICES = (*VARIANTS, _ECHO)


async def _calls(args: dict[str, Any], count: int, concurrency: int) -> int:
    """Send `count` calls, `concurrency` at a time; returns how many failed."""
    failures = 0
    async with _channel(args) as channel:
        await channel.channel_ready()
        call = _caller(channel, args)
        sent = iter(range(count))

        async def worker() -> None:
            nonlocal failures
            for i in sent:
                try:
                    await call(i)
                except Exception:
                    failures += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failures


def _control(option: str, pid: int) -> None:
    subprocess.run(
        ["callgrind_control", option, str(pid)], check=True, capture_output=True, timeout=120
    )


def _total_instructions(out_dir: Path, pid: int) -> int:
    """The Ir total of the last dump callgrind wrote for `pid`."""
    dumps = sorted(out_dir.glob(f"callgrind.{pid}.*"), key=lambda p: p.stat().st_mtime)
    for line in dumps[-1].read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dumps[-1]}")


def _count(
    variant: str,
    folder: Path,
    n: int,
    registries: dict[str, str],
    load: dict[str, Any],
    calls: int,
    warmup: int,
    keep: Path | None,
) -> int:
    out_dir = folder / f"callgrind-{n}"
    out_dir.mkdir()
    args = {
        "pki_dir": load["pki_dir"],
        "data_dir": str(folder / f"gateway-{n}"),
        "registries": registries,
    }
    if variant == _ECHO:
        server_command = ["bench._servers", "echo", json.dumps({"pki_dir": load["pki_dir"]})]
        load = {**load, "method": "echo"}
    else:
        parts = ",".join(VARIANTS[variant])
        server_command = ["bench.ablation", "--child", parts, "gateway", json.dumps(args)]
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out_dir}/callgrind.%p",
        "--dump-instr=no",
        "--dump-line=no",
        sys.executable,
        "-m",
        *server_command,
    ]
    server = subprocess.Popen(
        command,
        cwd=_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert server.stdin is not None
    assert server.stdout is not None
    try:
        ready = json.loads(server.stdout.readline()[len("READY ") :])
        target = {**load, "address": ready["address"]}
        warm_failures = asyncio.run(_calls(target, warmup, load["concurrency"]))
        _control("-z", server.pid)
        failures = asyncio.run(_calls(target, calls, load["concurrency"]))
        _control("-d", server.pid)
        if failures or warm_failures:
            raise RuntimeError(f"{variant}: {failures + warm_failures} calls failed")
        total = _total_instructions(out_dir, server.pid)
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            last = max(out_dir.glob(f"callgrind.{server.pid}.*"), key=lambda p: p.stat().st_mtime)
            shutil.copy(last, keep / f"callgrind.{variant}.{n}")
        return total // calls
    finally:
        server.stdin.close()
        server.stdout.read()
        server.wait(timeout=120)


def _measure(arguments: argparse.Namespace) -> None:
    from govshare.adapters.simulators import generate_population
    from govshare.gateway import DevPki

    from bench.__main__ import _Child

    population = generate_population()
    holders = [p.citizen_id for p in population.persons[:500]]
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        pki = DevPki(folder / "pki")
        pki.init()
        client = pki.issue("dept", "11330100002482106W")
        load = {
            "pki_dir": str(pki.folder),
            "cert": str(client.certificate),
            "key": str(client.private_key),
            "method": "get_certificate",
            "holders": holders,
            "concurrency": arguments.concurrency,
        }
        simulators = _Child("simulators", {"pki_dir": str(pki.folder)})
        try:
            n = 0
            medians: dict[str, int] = {}
            for variant in arguments.variants:
                counts = []
                for _ in range(arguments.repeats):
                    counts.append(
                        _count(
                            variant,
                            folder,
                            n,
                            simulators.info["base_urls"],
                            load,
                            arguments.calls,
                            arguments.warmup,
                            arguments.keep,
                        )
                    )
                    n += 1
                medians[variant] = int(statistics.median(counts))
                print(
                    f"{variant:<18} {medians[variant]:>10,} instructions per call"
                    f"  (runs: {', '.join(f'{c:,}' for c in counts)})",
                    flush=True,
                )
            if "full" in medians and _ECHO in medians:
                # Throughput ratios divide the other way: echo instructions / gateway's.
                print(f"echo / full        {medians[_ECHO] / medians['full']:.3f}")
        finally:
            simulators.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument(
        "variants", nargs="*", help=f"any of {', '.join(_CHOICES)} (default: full echo)"
    )
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=200, help="calls before counting")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--keep", type=Path, help="copy each run's callgrind dump here (for callgrind_annotate)"
    )
    arguments = parser.parse_args()
    unknown = [v for v in arguments.variants if v not in _CHOICES]
    if unknown:
        parser.error(f"unknown variants: {', '.join(unknown)}")
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        parser.error("needs valgrind and callgrind_control (Debian package valgrind)")
    arguments.variants = arguments.variants or ["full", _ECHO]
    _measure(arguments)


if __name__ == "__main__":
    main()
