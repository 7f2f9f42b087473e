"""One pipeline for every operation of the route table, and one way to fail.

Order of checks (cheap before costly; nothing reaches CampaignService unless every check
passed), each failing as the kind of answer named (see `answers`): ambiguous framing
(malformed request, in the protocol) -> body too large, body too slow -> media type (when
there is a body) -> auth-v2 (authentication failed) -> 02000007 vdnId / campaignId ->
access key of another VDN (authentication failed) -> 02000007 a query parameter given twice
-> the operation.

Every failure, the pipeline's and the operations', is raised as a `LegacyError` built by
`answers` (or a gRPC error of the backend) and answered by the handlers registered in `app`,
in the envelope.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import grpc
from google.protobuf.descriptor import Descriptor
from starlette.requests import Request
from starlette.responses import Response

from isales_campaign.config import Settings
from isales_campaign.gateway import answers
from isales_campaign.gateway.auth import SignedRequest, authenticate
from isales_campaign.gateway.backend import Backend
from isales_campaign.gateway.backend import Request as ServiceRequest
from isales_campaign.gateway.backend import Response as ServiceResponse
from isales_campaign.gateway.body import is_json_utf8, read_body
from isales_campaign.gateway.errors import AuthFailure, BodyTooLarge, LegacyError
from isales_campaign.ids import MAX_CAMPAIGN_ID, MAX_VDN_ID, MIN_VDN_ID, is_vdn_id

log = logging.getLogger("isales_campaign.gateway")


@dataclass(frozen=True, slots=True)
class Call:
    """A request that passed the pipeline: authentic, of the caller's own VDN."""

    request: Request
    backend: Backend
    vdn_id: int
    #: None on the paths that name no campaign.
    campaign_id: int | None
    body: bytes
    #: The verified signature: 64 hex digits that only this request has.
    signature: str

    @property
    def request_id(self) -> str:
        request_id: str = self.request.state.request_id
        return request_id

    @property
    def query(self) -> Mapping[str, str]:
        return self.request.query_params

    def known_campaign_id(self) -> int:
        assert self.campaign_id is not None, "the route names no campaign"
        return self.campaign_id

    async def invoke(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[ServiceRequest, ServiceResponse],
        request: ServiceRequest,
    ) -> ServiceResponse:
        """Call a method of the service for this request: with its request id, and the access
        key it was signed with (the service records who made a change)."""
        access_key: str = self.request.state.access_key
        return await self.backend.call(method, request, self.request_id, access_key)


@dataclass(frozen=True, slots=True)
class Answer:
    """A success: the envelope with `returnObject`, or with fields beside its keys."""

    return_object: dict[str, Any] | None = None
    top_level: dict[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


Endpoint = Callable[[Call], Awaitable[Answer]]


@dataclass(frozen=True, slots=True)
class QueryParameter:
    """A query parameter as the OpenAPI document describes it, and the request field it
    sets (its proto path), if any: a violation of that field names the parameter."""

    schema: Mapping[str, Any]
    #: May name the schema's keywords, `{maximum}`, those from the contract included.
    description: str
    field: str = ""
    #: Whether the value goes to `field` as it is given, so that the field's rules in the
    #: contract are the parameter's: the OpenAPI document adds them to `schema`.
    contract: bool = False


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation (the vendor's, or an extension): where it is served, what it takes,
    what serves it."""

    operation_id: str
    method: str
    path: str
    summary: str
    endpoint: Endpoint
    #: The message of the gRPC request `endpoint` sends.
    request: Descriptor
    body: Literal["required", "optional", "none"] = "none"
    #: Whether it changes campaigns (a timeout then leaves the outcome unknown).
    changes: bool = False
    #: Whether the same signed request sent again is answered as the first was (add).
    idempotent: bool = False
    #: Request fields that travel in the path or in headers: proto path -> legacy name.
    parameters: Mapping[str, str] = field(default_factory=dict)
    #: Its query parameters by name.
    query: Mapping[str, QueryParameter] = field(default_factory=dict)
    #: What `returnObject` (or the top level) holds on success, for the OpenAPI document.
    success: str = ""
    #: The JSON Schema of what a success holds beside the envelope's keys, when the OpenAPI
    #: document states it.
    answer_schema: Mapping[str, Any] | None = None
    #: This gateway's own operation, which the vendor's API does not have.
    extension: bool = False

    def legacy_names(self) -> dict[str, str]:
        """Proto path -> legacy name of every request field that is not in the body."""
        names = dict(self.parameters)
        names.update((q.field, name) for name, q in self.query.items() if q.field)
        return names


class Pipeline:
    def __init__(self, settings: Settings, backend: Backend) -> None:
        self._settings = settings
        self._backend = backend

    def handler(self, operation: Operation) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            request.state.operation = operation
            call = await self._admit(request)
            answer = await operation.endpoint(call)
            return answers.success(request, answer.return_object, answer.top_level, answer.headers)

        return handle

    async def _admit(self, request: Request) -> Call:
        limit = self._settings.max_body_bytes
        seconds = self._settings.http_read_timeout_seconds
        try:
            async with asyncio.timeout(seconds):
                body = await read_body(request, limit)
        except BodyTooLarge:
            raise answers.body_too_large(limit) from None
        except TimeoutError:
            raise answers.body_too_slow(seconds) from None
        if body and not is_json_utf8(request.headers.get("content-type")):
            raise answers.unsupported_media_type()
        signed = SignedRequest(
            request.method,
            request.scope.get("raw_path") or request.url.path.encode(),
            request.scope.get("query_string", b""),
            request.headers,
            body,
        )
        try:
            caller = await authenticate(
                signed,
                self._backend,
                max_skew_seconds=self._settings.auth_max_skew_seconds,
                request_id=request.state.request_id,
            )
        except AuthFailure as failure:
            raise unauthorized(request, failure) from None
        request.state.access_key = caller.access_key
        vdn_id = _number(request.path_params["vdnId"])
        if vdn_id is None or not is_vdn_id(vdn_id):
            raise answers.invalid("vdnId", f"must be an integer from {MIN_VDN_ID} to {MAX_VDN_ID}")
        raw_id = request.path_params.get("campaignId")
        campaign_id = None if raw_id is None else _number(raw_id)
        if raw_id is not None and not (campaign_id and 0 < campaign_id <= MAX_CAMPAIGN_ID):
            raise answers.invalid("campaignId", "must be a positive integer")
        if caller.vdn_id != vdn_id:
            reason = f"the access key belongs to VDN {caller.vdn_id}, not {vdn_id}"
            raise unauthorized(request, AuthFailure(reason, caller.access_key))
        _refuse_repeated_parameters(request)
        return Call(request, self._backend, vdn_id, campaign_id, body, caller.signature)


def unauthorized(request: Request, failure: AuthFailure) -> LegacyError:
    log.warning(
        "authentication failed",
        extra={
            "request_id": request.state.request_id,
            "reason": failure.reason,
            "access_key": failure.access_key,
        },
    )
    return answers.unauthorized(failure)


def backend_failure(
    request: Request, error: grpc.aio.AioRpcError, cause: str | None = None
) -> LegacyError:
    """The answer for a failed call of the service (see `answers.of_rpc_error`), logged;
    `cause`: why the service could not be reached, when known better than by the call."""
    request_id = request.state.request_id
    operation: Operation | None = getattr(request.state, "operation", None)
    if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED and operation and operation.changes:
        unavailable = "the service did not answer in time; the change may have been made: " + (
            "send the same signed request again to learn its outcome"
            if operation.idempotent
            else "query the campaign to learn whether it was"
        )
    else:
        unavailable = "the campaign service is unavailable; nothing was changed, retry later"
    failure = answers.of_rpc_error(
        error,
        request_id,
        unavailable=unavailable,
        parameters=operation.legacy_names() if operation else None,
    )
    if failure.kind is answers.INTERNAL_ERROR:
        if error.code() == grpc.StatusCode.UNAUTHENTICATED:
            # The gateway's own credentials, not the caller's: a deployment fault.
            log.error(
                "the campaign service refused this gateway's ISALES_INTERNAL_TOKEN",
                extra={"request_id": request_id},
            )
        else:
            log.error(
                "unexpected answer from the campaign service",
                extra={"request_id": request_id, "grpc_code": error.code().name},
            )
    elif failure.kind is answers.UNAVAILABLE:
        cause = cause or error.details() or ""
        extra = {"request_id": request_id, "grpc_code": error.code().name, "cause": cause}
        if "handshake" in cause.lower():
            # A deployment fault that no retry mends; gRPC's cause says what to look at
            # (CERTIFICATE_VERIFY_FAILED: the service's certificate is not of the CA trusted).
            log.error(
                "TLS handshake with the campaign service failed: see ISALES_GRPC_TARGET_CA "
                "(and ISALES_GRPC_TARGET_CERT/_KEY)",
                extra=extra,
            )
        else:
            log.warning("campaign service unavailable", extra=extra)
    return failure


def _refuse_repeated_parameters(request: Request) -> None:
    """A query parameter given twice is ambiguous (which one counts?), as a key twice in a JSON
    object is: refused, rather than letting the last one win."""
    if not request.scope["query_string"]:
        return  # most requests (every add without validateOnly) have no query
    counts = Counter(name for name, _ in request.query_params.multi_items())
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if repeated:
        raise answers.invalid(", ".join(repeated), "is given more than once in the query")


def _number(text: str) -> int | None:
    """A path parameter's non-negative integer of at most 19 digits; None if it is not one."""
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        return None
    return int(text)
