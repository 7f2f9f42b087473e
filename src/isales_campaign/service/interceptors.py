"""The gRPC server's interceptor: every unary call runs inside the service's call chain
(`call_chain`), which answers its failures; this module only adapts grpcio's handlers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

from isales_campaign.service.call_chain import UNDECODABLE, CallChain
from isales_campaign.service.errors import CallFailed

if TYPE_CHECKING:
    _Handler = grpc.RpcMethodHandler[Any, Any]
else:  # not subscriptable at run time
    _Handler = grpc.RpcMethodHandler


class RequestInterceptor(grpc.ServerInterceptor):
    def __init__(self, chain: CallChain) -> None:
        self._chain = chain
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
        if handler is None or handler.unary_unary is None:
            return handler
        wrapped = self._wrap(handler_call_details.method, handler)
        return self._wrapped.setdefault(handler_call_details.method, wrapped)

    def _wrap(self, path: str, handler: _Handler) -> _Handler:
        inner = handler.unary_unary
        assert inner is not None
        deserialize = handler.request_deserializer
        chained = self._chain.method(path)

        def lenient_deserialize(data: bytes) -> Any:
            try:
                return deserialize(data) if deserialize is not None else data
            except Exception:
                return UNDECODABLE

        def behavior(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                return chained.serve(
                    request,
                    context.invocation_metadata(),
                    context.time_remaining(),
                    lambda request: inner(request, context),
                    # ServicerContext.code() exists since grpcio 1.38; the stubs lack it.
                    context.code,  # type: ignore[attr-defined]
                    lambda: certificate_subject(context),
                )
            except CallFailed as failed:
                context.abort_with_status(failed.status)

        return grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=lenient_deserialize,
            response_serializer=handler.response_serializer,
        )


def certificate_subject(context: grpc.ServicerContext) -> str:
    """The subject of the caller's client certificate (mTLS), "" without one."""
    subjects = context.auth_context().get("x509_subject") or ()
    return next((bytes(s).decode(errors="replace") for s in subjects), "")
