"""Helpers for the benchmark's child processes: CPU pinning and the READY line."""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def pin_to(cpu: int | None) -> None:
    """Pin this process to one CPU when the machine has it (Linux only)."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return
    available = os.sched_getaffinity(0)
    if cpu in available and len(available) > 1:
        os.sched_setaffinity(0, {cpu})


def announce(payload: dict[str, Any]) -> None:
    """Tell the parent we are ready, on one line of stdout."""
    sys.stdout.write("READY " + json.dumps(payload) + "\n")
    sys.stdout.flush()


def peak_rss_kib() -> int:
    """VmHWM of this process, in KiB (0 where /proc is missing)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
