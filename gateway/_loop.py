"""Running the gateway's event loop: uvloop where it is installed.

Measured on the GetCertificate path (docs/performance.md): uvloop cuts the
gateway's CPU per request by about a fifth, because most of a request's cost is
event-loop work around grpc.aio and aiohttp, which uvloop does in C.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["EVENT_LOOPS", "run_with_event_loop"]

EVENT_LOOPS = ("uvloop", "asyncio")
_T = TypeVar("_T")


def run_with_event_loop(main: Coroutine[Any, Any, _T], event_loop: str = "uvloop") -> _T:
    """Run `main` on uvloop when asked for and installed, else on asyncio's loop."""
    if event_loop not in EVENT_LOOPS:
        main.close()
        raise ValueError(f"event_loop must be one of {', '.join(EVENT_LOOPS)}")
    if event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:  # not on this platform: the standard loop works the same
            return asyncio.run(main)
        return uvloop.run(main)
    return asyncio.run(main)
