"""`make bench` end to end, briefly: every scenario runs against real processes and
the report holds each figure. Speed itself is never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run_python(*args: str) -> str:
    """Run `python args` from the project root (where `bench` imports); its stdout,
    or fail with its stderr."""
    completed = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


def _run_module(module: str, *args: str) -> str:
    """Run `python -m module args` from the project root."""
    return _run_python("-m", module, *args)


def test_a_short_bench_writes_a_complete_report(tmp_path: Path) -> None:
    """All scenarios answer without errors, and the report names machine, ratios,
    server CPU per request, peak RSS, audit appends and transparency-log timings."""
    short = ["--duration", "0.3", "--warmup", "0.1", "--repeats", "1", "--concurrency", "1,16"]
    _run_module("bench", *short, "--tlog-size", "2000", "--out", str(tmp_path))
    report = json.loads((tmp_path / "report.json").read_text())
    expected = {
        "echo@c1",
        "echo@c16",
        "echo_asyncio@c16",
        "echo_sync@c16",
        "get_certificate@c1",
        "get_certificate@c16",
        "query_record@c16",
        "resolve_materials@c16",
    }
    assert set(report["scenarios"]) == expected
    for name, figures in report["scenarios"].items():
        assert figures["errors"] == 0, name
        assert figures["rps"] > 0, name
        assert figures["p50_ms"] <= figures["p99_ms"], name
        assert figures["server_cpu_us_per_request"] > 0, name
    assert set(report["ratios"]) == {"c1", "c16", "c16_vs_echo_on_asyncio"}
    assert all(r["throughput_ratio"] > 0 for r in report["ratios"].values())
    assert report["gateway_peak_rss_mib"] > 0
    assert report["audit_appends"]["appends_per_s"] > 0
    assert report["transparency_log"]["entries"] == 2000
    assert report["machine"]["python"]
    markdown = (tmp_path / "report.md").read_text()
    assert "GetCertificate / echo throughput" in markdown
    assert "server CPU µs/request" in markdown


def test_instruction_counting_reports_instructions_per_call() -> None:
    """`bench.instructions` runs a gateway under callgrind, sends calls and reports a
    per-call instruction count from callgrind's own dump (valgrind is on every
    machine this project runs on)."""
    calls = ["--calls", "10", "--warmup", "5", "--concurrency", "2"]
    out = _run_module("bench.instructions", "empty-handler", *calls)
    name, count, *_ = out.split()
    assert name == "empty-handler"
    # An empty gRPC call through mTLS still runs well over 10^5 instructions.
    assert int(count.replace(",", "")) > 100_000


def test_percentiles_are_nearest_rank() -> None:
    """p99 of 1..100 is 99 and of 1..1000 is 990 (not one rank higher); p50 of 1..100 is 50."""
    script = (
        "from bench._loadgen import percentile; "
        "print(percentile(list(range(1, 101)), 0.99), percentile(list(range(1, 1001)), 0.99), "
        "percentile(list(range(1, 101)), 0.5), percentile([7.0], 0.99), percentile([], 0.5))"
    )
    assert _run_python("-c", script).split() == ["99", "990", "50", "7.0", "0.0"]


def test_failed_calls_are_errors_not_throughput() -> None:
    """Calls the server refuses (GetCertificate sent to the bare echo) count as errors in
    the measured window, and add nothing to requests, rps or the latencies."""
    script = """
import json
from bench.__main__ import _Child, _load
from govshare.gateway import DevPki
import tempfile, pathlib
with tempfile.TemporaryDirectory() as folder:
    pki = DevPki(pathlib.Path(folder) / "pki")
    pki.init()
    client = pki.issue("dept", "11330100002482106W")
    echo = _Child("echo", {"pki_dir": str(pki.folder)})
    try:
        result = _load({
            "pki_dir": str(pki.folder), "address": echo.info["address"],
            "server_pid": echo.process.pid, "cert": str(client.certificate),
            "key": str(client.private_key), "method": "get_certificate", "concurrency": 2,
            "warmup": 0.1, "duration": 0.3, "holders": ["330106198001010005"],
            "company": "11330100002482106W",
        })
    finally:
        echo.stop()
print(json.dumps(result))
"""
    result = json.loads(_run_python("-c", script).strip().splitlines()[-1])
    assert result["errors"] > 0
    assert (result["requests"], result["rps"], result["p99_ms"]) == (0, 0.0, 0.0)
