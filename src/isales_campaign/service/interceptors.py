"""Server interceptors: the caller's request id follows every log line of a call."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

from isales_campaign.logs import current_request_id

REQUEST_ID_KEY = "x-request-id"
#: Request ids are echoed into logs: keep them short and printable.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


if TYPE_CHECKING:
    _ServerInterceptor = grpc.ServerInterceptor[Any, Any]
else:  # not subscriptable at run time
    _ServerInterceptor = grpc.ServerInterceptor


class RequestIdInterceptor(_ServerInterceptor):
    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        request_id = _request_id(handler_call_details.invocation_metadata)
        inner = handler.unary_unary

        def with_request_id(request: Any, context: grpc.ServicerContext) -> Any:
            token = current_request_id.set(request_id)
            try:
                return inner(request, context)
            finally:
                current_request_id.reset(token)

        return grpc.unary_unary_rpc_method_handler(
            with_request_id,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _request_id(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and _VALID_REQUEST_ID.match(value):
            return value
    return uuid.uuid4().hex
