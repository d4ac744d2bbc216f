"""Requests that cannot even be decoded (e.g. invalid UTF-8 in a string field)
are refused as REQUEST_INVALID, and logged, instead of surfacing as UNKNOWN
with a protobuf exception text."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from ._decisions import DecisionRecorder
from ._errors import GovshareError, Reason, to_grpc_status
from ._exchange_call import log_refused_before_handler
from ._identity import Principal, principal_from_auth_context

__all__ = ["UndecodableRequests"]

_UNDECODABLE = object()


class WrappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Wraps each method's handler once (`_wrap`), then reuses the wrapped handler:
    building handlers per call would cost every request."""

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None:
            return cached
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = wrapped
        return wrapped

    def _wrap(self, method: str, handler: Any) -> Any:
        raise NotImplementedError


class UndecodableRequests(WrappingInterceptor):
    """Decodes requests tolerantly: an undecodable one is refused and logged."""

    def __init__(self, decisions: DecisionRecorder, trust_domain: str) -> None:
        super().__init__()
        self._decisions = decisions
        self._trust_domain = trust_domain

    def _wrap(self, method: str, handler: Any) -> Any:
        if handler is None or handler.request_deserializer is None:
            return handler
        decode = handler.request_deserializer
        encode = handler.response_serializer

        def tolerant(data: bytes) -> Any:
            try:
                return decode(data)
            except Exception:
                return _UNDECODABLE

        if handler.unary_unary is not None:
            inner_unary = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                if request is _UNDECODABLE:
                    await self._refuse(method, context)
                return await inner_unary(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary,
                request_deserializer=tolerant,
                response_serializer=encode,
            )
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream
            if not inspect.isasyncgenfunction(inner_stream):
                # A handler that answers through context.write() (grpc's own health
                # Watch does) is a coroutine, not an async generator: await it.
                async def writing(
                    request: Any, context: grpc.aio.ServicerContext[Any, Any]
                ) -> None:
                    if request is _UNDECODABLE:
                        await self._refuse(method, context)
                    await inner_stream(request, context)

                return grpc.unary_stream_rpc_method_handler(
                    writing, request_deserializer=tolerant, response_serializer=encode
                )

            async def stream(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                if request is _UNDECODABLE:
                    await self._refuse(method, context)
                async for item in inner_stream(request, context):
                    yield item

            return grpc.unary_stream_rpc_method_handler(
                stream,
                request_deserializer=tolerant,
                response_serializer=encode,
            )
        return handler

    async def _refuse(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        caller: Principal | None
        try:
            caller = principal_from_auth_context(context.auth_context(), self._trust_domain)
            error = GovshareError(Reason.REQUEST_INVALID, "the request could not be decoded")
        except GovshareError as unknown:
            # Who is asking comes before what was asked (DESIGN: permission before
            # existence): a stranger learns nothing about the request's shape.
            caller, error = None, unknown
        name = method.rsplit(".", 1)[-1].replace("/", ".")
        await self._decisions.record_denial(name, caller, error)
        log_refused_before_handler(method, "" if caller is None else caller.label, error.reason)
        status = to_grpc_status(error)
        await context.abort(status.code, status.details, status.trailing_metadata)
