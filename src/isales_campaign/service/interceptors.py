"""The gRPC server's interceptor: every unary and server-streaming call runs inside the
service's call chain (`call_chain`), which answers its failures; this module only adapts
grpcio's handlers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import grpc

from isales_campaign.service.call_chain import UNDECODABLE, CallChain
from isales_campaign.service.caller import no_certificate
from isales_campaign.service.errors import CallFailed

if TYPE_CHECKING:
    _Handler = grpc.RpcMethodHandler[Any, Any]
else:  # not subscriptable at run time
    _Handler = grpc.RpcMethodHandler


class RequestInterceptor(grpc.ServerInterceptor):
    def __init__(
        self,
        chain: CallChain,
        *,
        stream_pool: ThreadPoolExecutor | None = None,
        client_certificates: bool = True,
    ) -> None:
        """`stream_pool`: the threads that serve streaming calls (each holds one for as long
        as it lasts), instead of the server's. `client_certificates`: whether the server asks
        callers for one (if not, no call's connection is asked who presented one)."""
        self._chain = chain
        self._stream_pool = stream_pool
        self._client_certificates = client_certificates
        #: The wrapped handler of each method called so far (the servers' methods are fixed,
        #: so it stays small): a call then costs a lookup instead of a new handler.
        self._wrapped: dict[str, _Handler] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], _Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        wrapped = self._wrapped.get(handler_call_details.method)
        if wrapped is not None:
            return wrapped
        handler = continuation(handler_call_details)
        if handler is None:
            return handler
        if handler.unary_unary is not None:
            wrapped = self._wrap(handler_call_details.method, handler)
        elif handler.unary_stream is not None and not _non_blocking(handler.unary_stream):
            wrapped = self._wrap_stream(handler_call_details.method, handler)
        else:
            return handler
        return self._wrapped.setdefault(handler_call_details.method, wrapped)

    def _wrap(self, path: str, handler: _Handler) -> _Handler:
        inner = handler.unary_unary
        assert inner is not None
        chained = self._chain.method(path)
        certificates = self._client_certificates

        def behavior(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                return chained.serve(
                    request,
                    context.invocation_metadata(),
                    context.time_remaining(),
                    lambda request: inner(request, context),
                    # ServicerContext.code() exists since grpcio 1.38; the stubs lack it.
                    context.code,  # type: ignore[attr-defined]
                    (lambda: certificate_subject(context)) if certificates else no_certificate,
                )
            except CallFailed as failed:
                context.abort_with_status(failed.status)

        return grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=_lenient(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )

    def _wrap_stream(self, path: str, handler: _Handler) -> _Handler:
        inner = handler.unary_stream
        assert inner is not None
        chained = self._chain.method(path, "server_stream")
        certificates = self._client_certificates

        def behavior(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            try:
                yield from chained.stream(
                    request,
                    context.invocation_metadata(),
                    context.time_remaining(),
                    lambda request: inner(request, context),
                    context.add_callback,
                    (lambda: certificate_subject(context)) if certificates else no_certificate,
                )
            except CallFailed as failed:
                context.abort_with_status(failed.status)

        if self._stream_pool is not None:  # grpcio's per-method pool
            behavior.experimental_thread_pool = self._stream_pool  # type: ignore[attr-defined]
        return grpc.unary_stream_rpc_method_handler(
            behavior,
            request_deserializer=_lenient(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )


def _non_blocking(behavior: Callable[..., Any]) -> bool:
    """Whether a streaming method sends through a callback instead of holding a thread
    (grpcio's health Watch): it stays outside the chain, which reads a stream in a thread."""
    return bool(getattr(behavior, "experimental_non_blocking", False))


def _lenient(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any]:
    """A request deserializer that passes on a request that does not parse as UNDECODABLE
    (the call chain answers it)."""

    def lenient_deserialize(data: bytes) -> Any:
        try:
            return deserialize(data) if deserialize is not None else data
        except Exception:
            return UNDECODABLE

    return lenient_deserialize


def certificate_subject(context: grpc.ServicerContext) -> str:
    """The subject of the caller's client certificate (mTLS), "" without one."""
    subjects = context.auth_context().get("x509_subject") or ()
    return next((bytes(s).decode(errors="replace") for s in subjects), "")
