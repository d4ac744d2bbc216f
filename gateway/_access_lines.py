"""One structured access line per DirectoryService and AuditService call.

ExchangeService writes its own, richer line (`_exchange_call.log_access_line`:
resource, matter, masked holder, log index), so it is left alone here, as are
health checks and reflection, which load balancers and tools call every few
seconds. The line names the method, the caller, the gRPC status and the
latency — never a request field, so no holder id can reach it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, Final

import grpc

from ._errors import GovshareError
from ._identity import principal_from_auth_context
from ._interceptors import WrappingInterceptor

__all__ = ["AccessLines"]

_log = logging.getLogger("govshare.access")
_LOGGED_SERVICES: Final = (
    "/govshare.directory.v1.DirectoryService/",
    "/govshare.audit.v1.AuditService/",
)
_LINE_ENCODER: Final = json.JSONEncoder(ensure_ascii=False)


class AccessLines(WrappingInterceptor):
    """Writes the `govshare.access` line of every directory and audit call."""

    def __init__(self, trust_domain: str) -> None:
        super().__init__()
        self._trust_domain = trust_domain

    def _wrap(self, method: str, handler: Any) -> Any:
        if not method.startswith(_LOGGED_SERVICES):
            return handler
        name = method.lstrip("/").rsplit(".", 1)[-1].replace("/", ".")
        options = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        line = self._line
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                started, failure = time.perf_counter(), None
                try:
                    return await inner(request, context)
                except BaseException as error:
                    failure = error
                    raise
                finally:
                    line(name, context, started, failure)

            return grpc.unary_unary_rpc_method_handler(unary, **options)
        if handler.unary_stream is not None and inspect.isasyncgenfunction(handler.unary_stream):
            inner_stream = handler.unary_stream

            async def stream(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                started, failure = time.perf_counter(), None
                try:
                    async for item in inner_stream(request, context):
                        yield item
                except BaseException as error:
                    failure = error
                    raise
                finally:
                    line(name, context, started, failure)

            return grpc.unary_stream_rpc_method_handler(stream, **options)
        return handler

    def _line(
        self,
        method: str,
        context: grpc.aio.ServicerContext[Any, Any],
        started: float,
        failure: BaseException | None,
    ) -> None:
        if not _log.isEnabledFor(logging.INFO):
            return
        try:
            caller = principal_from_auth_context(context.auth_context(), self._trust_domain).label
        except GovshareError:
            caller = ""
        _log.info(
            _LINE_ENCODER.encode(
                {
                    "method": method,
                    "consumer": caller,
                    "code": _code_name(context.code(), failure),
                    "latency_ms": round((time.perf_counter() - started) * 1e3, 3),
                }
            )
        )


def _code_name(code: grpc.StatusCode | None, failure: BaseException | None) -> str:
    """The status the caller got: the one set by abort, else what the ending implies."""
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if failure is None:
        return "OK"
    # grpc answers a handler's own exception with UNKNOWN, a cancelled call with CANCELLED.
    return "CANCELLED" if isinstance(failure, asyncio.CancelledError) else "UNKNOWN"
