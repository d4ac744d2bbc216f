"""grpc.health.v1 for the gateway: the library's servicer, with watches that end
once shutdown has told them NOT_SERVING.

The library's `Watch` stays open until the server cancels it, so while a load
balancer watches, `server.stop(grace)` always waits out the whole grace even
when no call is left. Here a watch that has delivered NOT_SERVING after
`enter_graceful_shutdown` ends normally, and the stop ends with the last call.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final

from grpc_health.v1 import health, health_pb2

# Used by the server only; nothing here is part of the package surface.
__all__: list[str] = []

# How long a draining watch waits to see NOT_SERVING written before it ends anyway.
_LAST_WORD_SECONDS: Final = 1.0


class DrainingHealthServicer(health.aio.HealthServicer):  # type: ignore[misc]
    """`health.aio.HealthServicer` whose watches end after shutdown's NOT_SERVING."""

    def __init__(self) -> None:
        super().__init__()
        self._draining = asyncio.Event()

    async def enter_graceful_shutdown(self) -> None:
        await super().enter_graceful_shutdown()
        self._draining.set()

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: Any) -> None:
        told = asyncio.Event()
        watch = asyncio.ensure_future(super().Watch(request, _Noting(context, told)))
        draining = asyncio.ensure_future(self._draining.wait())
        try:
            await asyncio.wait({watch, draining}, return_when=asyncio.FIRST_COMPLETED)
            if watch.done():
                return watch.result()  # type: ignore[no-any-return]
            # Shutting down: let the watcher read NOT_SERVING, then end its stream.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(told.wait(), _LAST_WORD_SECONDS)
            return None
        finally:
            draining.cancel()
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch


class _Noting:
    """The servicer context, noting when NOT_SERVING has been written to the watcher."""

    def __init__(self, context: Any, told: asyncio.Event) -> None:
        self._context = context
        self._told = told

    async def write(self, response: health_pb2.HealthCheckResponse) -> None:
        await self._context.write(response)
        if response.status == health_pb2.HealthCheckResponse.NOT_SERVING:
            self._told.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)
