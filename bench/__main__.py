"""`make bench`: the gateway against a bare mTLS gRPC echo, in one run.

Processes: the echo server and the gateway are pinned to CPU 0; the load
generator and the registry simulators to CPU 1 (on a 2-core machine the
simulators share a core with the load, which the report states). Each
scenario runs `--repeats` times; the report keeps the median of each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from importlib import metadata
from pathlib import Path
from typing import Any

from bench._appends import measure_appends
from bench._tlog import build_log, measure_tlog

_ROOT = Path(__file__).resolve().parent.parent
_SERVER_CPU = 0
_CLIENT_CPU = 1


class _Child:
    """A server child process that announced its address with READY."""

    def __init__(self, kind: str, args: dict[str, Any]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench._servers", kind, json.dumps(args)],
            cwd=_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("READY "):
            self.process.kill()
            raise RuntimeError(f"{kind} did not start: {line!r}")
        self.info: dict[str, Any] = json.loads(line[len("READY ") :])

    def stop(self) -> str:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        if not self.process.stdin.closed:
            self.process.stdin.close()
        out = self.process.stdout.read()
        self.process.wait(timeout=30)
        return out


def _load(args: dict[str, Any]) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", "bench._loadgen", "-"],
        input=json.dumps(args),
        cwd=_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=args["warmup"] + args["duration"] + 60,
    )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _machine() -> dict[str, Any]:
    versions = {}
    for name in ("grpcio", "protobuf", "aiohttp", "joserfc", "cryptography", "SQLAlchemy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu_model,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "versions": versions,
    }


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("rps", "p50_ms", "p99_ms", "server_cpu_us_per_request")
    merged: dict[str, Any] = {k: statistics.median(r[k] for r in runs) for k in keys}
    merged["errors"] = sum(r["errors"] for r in runs)
    merged["runs"] = len(runs)
    return merged


def _ratio(gateway: dict[str, Any], echo: dict[str, Any]) -> dict[str, Any]:
    """Throughput ratio and p99 difference of two medians; refused (None) when either
    side had failed calls, since a fast refusal is not a fast answer."""
    if gateway["errors"] or echo["errors"] or not echo["rps"]:
        return {"throughput_ratio": None, "p99_delta_ms": None}
    return {
        "throughput_ratio": gateway["rps"] / echo["rps"],
        "p99_delta_ms": gateway["p99_ms"] - echo["p99_ms"],
    }


def run(arguments: argparse.Namespace) -> dict[str, Any]:
    from govshare.adapters.simulators import generate_population
    from govshare.gateway import DevPki

    concurrencies = [int(c) for c in arguments.concurrency.split(",")]
    scenarios = [("echo", c) for c in concurrencies]
    # The bare echo on asyncio's own loop too: what grpc.aio gives without uvloop.
    scenarios += [("echo_asyncio", 16)]
    # And on grpc's synchronous (thread-pool) server: the "sync vs aio" option.
    scenarios += [("echo_sync", 16)]
    scenarios += [("get_certificate", c) for c in concurrencies]
    scenarios += [("query_record", 16), ("resolve_materials", 16)]
    population = generate_population()
    holders = [p.citizen_id for p in population.persons[:500]]
    # Holders every one of the five registries knows, so each material is a real lookup.
    complete = [
        p.citizen_id
        for p in population.persons
        if population.marital_status(p.citizen_id)
        and population.real_estate_of(p.citizen_id)
        and population.tax_proof(p.citizen_id)
    ]
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        pki = DevPki(Path(folder) / "pki")
        pki.init()
        client = pki.issue("dept", "11330100002482106W")
        common = {"pki_dir": str(pki.folder)}
        simulators = _Child("simulators", {**common, "cpu": _CLIENT_CPU})
        stack.callback(simulators.stop)
        echo = _Child("echo", {**common, "cpu": _SERVER_CPU})
        stack.callback(echo.stop)
        echo_asyncio = _Child("echo", {**common, "cpu": _SERVER_CPU, "event_loop": "asyncio"})
        stack.callback(echo_asyncio.stop)
        echo_sync = _Child("echo_sync", {**common, "cpu": _SERVER_CPU})
        stack.callback(echo_sync.stop)
        gateway_data = Path(folder) / "gateway"
        if arguments.gateway_log_size:
            gateway_data.mkdir()
            seconds = build_log(gateway_data / "audit.db", arguments.gateway_log_size)
            size = arguments.gateway_log_size
            print(f"  gateway starts on a log of {size:,} entries ({seconds:.0f} s to build)")
        gateway = _Child(
            "gateway",
            {
                **common,
                "cpu": _SERVER_CPU,
                "data_dir": str(gateway_data),
                "registries": simulators.info["base_urls"],
            },
        )
        # Stopped on any failure too, before the temporary folder it writes in goes;
        # the normal path stops it below first, to read its peak RSS.
        stack.callback(gateway.stop)
        for repeat in range(arguments.repeats):
            for method, concurrency in scenarios:
                target = {"echo": echo, "echo_asyncio": echo_asyncio, "echo_sync": echo_sync}.get(
                    method, gateway
                )
                result = _load(
                    {
                        **common,
                        "cpu": _CLIENT_CPU,
                        "address": target.info["address"],
                        "server_pid": target.process.pid,
                        "cert": str(client.certificate),
                        "key": str(client.private_key),
                        "method": "echo" if method.startswith("echo") else method,
                        "concurrency": concurrency,
                        "warmup": arguments.warmup,
                        "duration": arguments.duration,
                        "holders": complete if method == "resolve_materials" else holders,
                        "company": population.active_company().uscc,
                    }
                )
                results.setdefault(f"{method}@c{concurrency}", []).append(result)
                print(
                    f"  run {repeat + 1} {method:<16} c={concurrency:<3} "
                    f"{result['rps']:8.0f} req/s  p50 {result['p50_ms']:6.2f} ms  "
                    f"p99 {result['p99_ms']:6.2f} ms  "
                    f"server CPU {result['server_cpu_us_per_request']:5.0f} us/req  "
                    f"errors {result['errors']}",
                    flush=True,
                )
        out = gateway.stop()
        peak = next(
            (int(line.split()[1]) for line in out.splitlines() if line.startswith("PEAK_RSS_KIB")),
            0,
        )
    medians = {name: _median(runs) for name, runs in results.items()}
    ratios = {}
    for c in concurrencies:
        ratios[f"c{c}"] = _ratio(medians[f"get_certificate@c{c}"], medians[f"echo@c{c}"])
    if 16 in concurrencies:
        ratios["c16_vs_echo_on_asyncio"] = _ratio(
            medians["get_certificate@c16"], medians["echo_asyncio@c16"]
        )
    appends = asyncio.run(measure_appends())
    tlog = measure_tlog(arguments.tlog_size) if arguments.tlog_size else {}
    return {
        "when": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "settings": {
            "duration_s": arguments.duration,
            "warmup_s": arguments.warmup,
            "repeats": arguments.repeats,
            "pinning": "servers on CPU 0; load generator and registry simulators on CPU 1",
        },
        "scenarios": medians,
        "ratios": ratios,
        "gateway_peak_rss_mib": round(peak / 1024, 1),
        "gateway_log_entries_at_start": arguments.gateway_log_size,
        "audit_appends": appends,
        "transparency_log": tlog,
    }


def _markdown(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        f"# govshare benchmark — {report['when']}",
        "",
        f"Machine: {machine['cpu']} × {machine['cpus']} CPUs, {machine['platform']}, "
        f"Python {machine['python']}; "
        + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()),
        "",
        f"Settings: {report['settings']['duration_s']} s measured after "
        f"{report['settings']['warmup_s']} s warm-up, median of {report['settings']['repeats']} "
        f"runs; {report['settings']['pinning']}.",
        "",
        "| scenario | req/s | p50 ms | p99 ms | server CPU µs/request | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, m in report["scenarios"].items():
        lines.append(
            f"| {name} | {m['rps']:.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} "
            f"| {m['server_cpu_us_per_request']:.0f} | {m['errors']} |"
        )
    lines += [
        "",
        "Ratios: gateway against the uvloop echo at the same concurrency (like for like:"
        " the gateway runs on uvloop); the last row against the echo on asyncio's loop.",
        "",
        "| concurrency | GetCertificate / echo throughput | p99 gateway − echo |",
        "|---|---:|---:|",
    ]
    for name, r in report["ratios"].items():
        if r["throughput_ratio"] is None:
            lines.append(f"| {name} | n/a (calls failed) | n/a |")
        else:
            lines.append(f"| {name} | {r['throughput_ratio']:.2f} | {r['p99_delta_ms']:+.2f} ms |")
    appends = report["audit_appends"]
    lines += [
        "",
        f"Gateway peak RSS: {report['gateway_peak_rss_mib']} MiB (log of "
        f"{report['gateway_log_entries_at_start']:,} entries at start).",
        "",
        f"Audit log: {appends['appends_per_s']:.0f} durable appends/s "
        f"({appends['appends']} appends, 64 producers, "
        f"{appends['records_per_commit']:.0f} records per fsync'd commit).",
        "",
        *_tlog_lines(report.get("transparency_log") or {}),
        "ResolveMaterials (c=16) resolves six materials per call: five lookups in five "
        "registries, each signed and logged, and one to be submitted.",
    ]
    return "\n".join(lines) + "\n"


def _tlog_lines(tlog: dict[str, Any]) -> list[str]:
    if not tlog:
        return []
    return [
        f"Transparency log of {tlog['entries']:,} entries ({tlog['file_mib']:.0f} MiB, built in "
        f"{tlog['build_seconds']:.1f} s): inclusion proof median "
        f"{tlog['inclusion_proof_median_ms']:.3f} ms, p99 {tlog['inclusion_proof_p99_ms']:.3f} ms; "
        f"offline verification {tlog['verify_seconds']:.1f} s "
        f"({tlog['verify_entries_per_s']:,.0f} entries/s).",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--duration", type=float, default=2.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument(
        "--gateway-log-size",
        type=int,
        default=0,
        help="start the gateway on an audit log of this many entries (peak RSS with a big log)",
    )
    parser.add_argument(
        "--tlog-size",
        type=int,
        default=200_000,
        help="entries of the log built for proof and verification timings (0: skip)",
    )
    parser.add_argument("--out", type=Path, default=_ROOT / "bench" / "results")
    arguments = parser.parse_args()
    began = time.monotonic()
    report = run(arguments)
    report["total_seconds"] = round(time.monotonic() - began, 1)
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    markdown = _markdown(report)
    (arguments.out / "report.md").write_text(markdown)
    print()
    print(markdown)
    print(f"written to {arguments.out} in {report['total_seconds']} s")


if __name__ == "__main__":
    main()
