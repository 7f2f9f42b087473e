"""The vendor's operations, and this gateway's extension (a campaign's change history): each
turns its legacy request into the gRPC request and the gRPC answer into the legacy one.
`OPERATIONS` is the route table that `app` serves and `openapi` documents."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any

from isales.campaign.v2.campaign_change_pb2 import CampaignChange, ChangeKind
from isales.campaign.v2.campaign_pb2 import Campaign, CampaignStatus
from isales.campaign.v2.campaign_service_pb2 import (
    AddCampaignRequest,
    CampaignFamily,
    DeleteCampaignRequest,
    GetCampaignRequest,
    ListCampaignChangesRequest,
    ListCampaignsRequest,
    PauseCampaignRequest,
    ResumeCampaignRequest,
    UpdateCampaignRequest,
)

from isales_campaign.gateway import answers
from isales_campaign.gateway.envelope import json_path
from isales_campaign.gateway.legacy_json import caller_numbers, render_campaign, render_message
from isales_campaign.gateway.pipeline import Answer, Call, Operation, QueryParameter
from isales_campaign.gateway.problems import Problem
from isales_campaign.gateway.translate import (
    INT32_MAX,
    integer_of_text,
    json_object,
    translate_campaign,
)
from isales_campaign.legacy import auth_v2, paths
from isales_campaign.legacy.wire import IDEMPOTENCY_KEY_HEADER, VALIDATE_ONLY
from isales_campaign.paging import DEFAULT_PAGE_SIZE
from isales_campaign.result_codes import ResultCode

#: Set on the answer of an add that an earlier add with the same key (or signature) made.
REPLAYED_HEADER = "Idempotent-Replayed"
_WRONG_TYPE = ResultCode.RESULT_CODE_WRONG_TYPE


async def add_campaign(call: Call) -> Answer:
    # A client's key, or else the signature: the same signed request sent again (a retry
    # after a timeout) is answered with the campaign it created, instead of "name taken".
    key = call.request.headers.get(IDEMPOTENCY_KEY_HEADER) or call.signature
    request = AddCampaignRequest(
        vdn_id=call.vdn_id,
        campaign=_campaign(call.body),
        validate_only=_validate_only(call),
        idempotency_key=key,
    )
    added = await call.invoke(call.backend.campaigns.AddCampaign, request)
    # Stripe's convention: a client can tell the answer of an earlier add from a new one.
    headers = {REPLAYED_HEADER: "true"} if added.replayed else {}
    return Answer({"id": added.id}, headers=headers)


async def get_campaign(call: Call) -> Answer:
    request = GetCampaignRequest(vdn_id=call.vdn_id, campaign_id=call.known_campaign_id())
    found = await call.invoke(call.backend.campaigns.GetCampaign, request)
    record = found.campaign
    return Answer(
        {
            "id": record.id,
            "status": record.status,
            **render_campaign(record.campaign),
            "version": record.version,
        }
    )


async def list_campaigns(call: Call) -> Answer:
    query = call.query
    rows = _rows_per_page(query)
    page = max(_integer(query, "curPage", 1), 1)
    skip = (page - 1) * max(rows, 0)
    if skip > INT32_MAX:
        raise answers.invalid("curPage", "is beyond the last page")
    request = ListCampaignsRequest(
        vdn_id=call.vdn_id,
        name_contains=query.get("name", ""),
        status=_integer(query, "status", 0),  # type: ignore[arg-type]
        device_type=_integer(query, "deviceType", 0),  # type: ignore[arg-type]
        begin_time_from=query.get("beginTime", ""),
        end_time_to=query.get("endTime", ""),
        page_size=rows,
        skip=skip,
    )
    if query.get("ccId"):
        request.cc_id = _integer(query, "ccId", 0)
    listed = await call.invoke(call.backend.campaigns.ListCampaigns, request)
    counts = {quota.family: quota.campaigns for quota in listed.families}
    return Answer(
        top_level={
            "curPage": page,
            "rowsPerPage": rows,
            "totalSize": listed.total_size,
            "curSkillQueueCount": counts.get(CampaignFamily.CAMPAIGN_FAMILY_SKILL_QUEUE, 0),
            "curIvrCount": counts.get(CampaignFamily.CAMPAIGN_FAMILY_IVR, 0),
            "data": [
                {
                    "id": record.id,
                    "name": record.campaign.name,
                    "status": record.status,
                    "strBeginTime": record.campaign.str_begin_time,
                    "strEndTime": record.campaign.str_end_time,
                    "deviceType": record.campaign.device_type,
                    "callerNo": caller_numbers(list(record.campaign.caller_no)),
                }
                for record in listed.campaigns
            ],
        }
    )


async def list_campaign_changes(call: Call) -> Answer:
    """This gateway's extension: one campaign's change history, a page after a cursor."""
    rows = _rows_per_page(call.query)
    after = _integer(call.query, "afterSequence", 0, bits=64)
    request = ListCampaignChangesRequest(
        vdn_id=call.vdn_id,
        campaign_id=call.known_campaign_id(),
        after_sequence=after,
        page_size=rows,
    )
    listed = await call.invoke(call.backend.campaigns.ListCampaignChanges, request)
    return Answer(
        top_level={
            "afterSequence": after,
            "rowsPerPage": rows,
            "nextAfterSequence": listed.next_after_sequence,
            "latestSequence": listed.latest_sequence,
            "oldestSequence": listed.oldest_sequence,
            "data": [_change(change) for change in listed.changes],
        }
    )


async def modify_campaign(call: Call) -> Answer:
    request = UpdateCampaignRequest(
        vdn_id=call.vdn_id,
        campaign_id=call.known_campaign_id(),
        campaign=_campaign(call.body),
        validate_only=_validate_only(call),
    )
    await call.invoke(call.backend.campaigns.UpdateCampaign, request)
    return Answer()


async def pause_campaign(call: Call) -> Answer:
    request = PauseCampaignRequest(vdn_id=call.vdn_id, campaign_id=call.known_campaign_id())
    await call.invoke(call.backend.campaigns.PauseCampaign, request)
    return Answer()


async def resume_campaign(call: Call) -> Answer:
    request = ResumeCampaignRequest(vdn_id=call.vdn_id, campaign_id=call.known_campaign_id())
    await call.invoke(call.backend.campaigns.ResumeCampaign, request)
    return Answer()


async def delete_campaign(call: Call) -> Answer:
    request = DeleteCampaignRequest(
        vdn_id=call.vdn_id, campaign_id=call.known_campaign_id(), archive=_archive(call.body)
    )
    await call.invoke(call.backend.campaigns.DeleteCampaign, request)
    return Answer()


def _campaign(body: bytes) -> Campaign:
    translated = translate_campaign(body)
    if isinstance(translated, list):
        raise answers.refusal(translated)
    return translated


def _validate_only(call: Call) -> bool:
    value = call.query.get(VALIDATE_ONLY, "false").lower()
    if value not in ("true", "false"):
        raise answers.invalid(VALIDATE_ONLY, "must be true or false")
    return value == "true"


def _integer(query: Mapping[str, str], name: str, default: int, *, bits: int = 32) -> int:
    """An integer query parameter (empty: the default); 02000006 when it is not one,
    02000007 beyond `bits` bits."""
    text = query.get(name, "")
    if text == "":
        return default
    try:
        return integer_of_text(text, bits)
    except OverflowError:
        raise answers.invalid(name, f"is outside the {bits}-bit integer range") from None
    except ValueError:
        problem = Problem(name, _WRONG_TYPE, "must be an integer")
        raise answers.refusal([problem]) from None


def _rows_per_page(query: Mapping[str, str]) -> int:
    """`rowsPerPage`: empty or 0 is the default; the service refuses one beyond its range."""
    return _integer(query, "rowsPerPage", DEFAULT_PAGE_SIZE) or DEFAULT_PAGE_SIZE


def _change(change: CampaignChange) -> dict[str, Any]:
    """A record of the history in the legacy JSON style of query one."""
    return {
        "sequence": change.sequence,
        "campaignId": change.campaign_id,
        "kind": _kind_name(change.kind),
        "version": change.version,
        # The one time format the gateway already speaks with no zone to guess: auth-v2's.
        "changeTime": auth_v2.format_timestamp(change.change_time.ToDatetime(UTC), millis=True),
        "actor": render_message(change.actor),
        "status": change.status,
        "changedFields": [json_path(path) for path in change.changed_fields.paths],
        "campaign": render_campaign(change.campaign),
    }


_KIND_PREFIX = "CHANGE_KIND_"
#: Every kind a record may have, as the answers name them.
_KIND_NAMES = [
    kind.name.removeprefix(_KIND_PREFIX) for kind in ChangeKind.DESCRIPTOR.values if kind.number
]


def _kind_name(kind: int) -> str:
    """`CHANGE_KIND_MODIFIED` -> `MODIFIED`; a kind newer than this gateway (a service
    upgraded first) keeps its number rather than failing the whole page."""
    known = ChangeKind.DESCRIPTOR.values_by_number.get(kind)
    return str(kind) if known is None else known.name.removeprefix(_KIND_PREFIX)


def _archive(body: bytes) -> bool:
    """The optional body of a delete: `{"archiveHistory": 0 or 1}`."""
    if not body:
        return False
    document = json_object(body)
    if isinstance(document, list):
        raise answers.refusal(document)
    value = document.get("archiveHistory")
    if value is None:
        return False
    if type(value) is not int:
        raise answers.refusal([Problem("archiveHistory", _WRONG_TYPE, "must be an integer")])
    if value not in (0, 1):
        raise answers.invalid("archiveHistory", "must be 0 (delete) or 1 (archive)")
    return value == 1


_VDN_ID_PARAMETER = {"vdn_id": "vdnId"}
_ID_PARAMETERS = {**_VDN_ID_PARAMETER, "campaign_id": "campaignId"}
_VALIDATE_ONLY = QueryParameter(
    {"type": "boolean"},
    "true: check every rule, the database ones included, and change nothing.",
    "validate_only",
)
_ROWS_PER_PAGE = QueryParameter(
    {"type": "integer", "default": DEFAULT_PAGE_SIZE},
    "Above {maximum} is 02000007.",
    "page_size",
    contract=True,
)
_INT64 = {"type": "integer", "format": "int64"}
#: A history page's fields beside the envelope's keys, as `list_campaign_changes` renders them
#: (none is required: a refusal, also HTTP 200, has the envelope only).
_HISTORY_ANSWER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "afterSequence": {**_INT64, "description": "The cursor asked for."},
        "rowsPerPage": {"type": "integer"},
        "nextAfterSequence": {
            **_INT64,
            "description": "The afterSequence of the next page; 0 when this page is the last.",
        },
        "latestSequence": {
            **_INT64,
            "description": "The VDN's latest sequence when the page was read (all of its "
            "campaigns' changes share one sequence).",
        },
        "oldestSequence": {
            **_INT64,
            "description": "The oldest sequence the VDN's history still holds (older records "
            "were pruned); 0 while it holds none.",
        },
        "data": {
            "type": "array",
            "description": "The campaign's records after afterSequence, ascending by sequence.",
            "items": {
                "type": "object",
                "properties": {
                    "sequence": _INT64,
                    "campaignId": _INT64,
                    "kind": {"type": "string", "enum": _KIND_NAMES},
                    "version": {
                        **_INT64,
                        "description": "The campaign's version after the change (DELETED, "
                        "ARCHIVED: the version removed).",
                    },
                    "changeTime": {
                        "type": "string",
                        "description": "When it was committed: UTC, yyyy-MM-ddTHH:mm:ss.SSSZ "
                        "(auth-v2's timestamp format).",
                        "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$",
                    },
                    "actor": {
                        "type": "object",
                        "description": "Who made it: the auth-v2 access key of a REST call, "
                        "the client certificate's subject of a gRPC caller, or neither "
                        "(internal); the request id. Unset values null.",
                        "properties": {
                            "accessKey": {"type": ["string", "null"]},
                            "certificateSubject": {"type": ["string", "null"]},
                            "internal": {"type": "boolean"},
                            "requestId": {"type": ["string", "null"]},
                        },
                    },
                    "status": {
                        "type": "integer",
                        "enum": [s.number for s in CampaignStatus.DESCRIPTOR.values if s.number],
                        "description": "The status after the change (DELETED, ARCHIVED: as it "
                        "was).",
                    },
                    "changedFields": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "MODIFIED: the JSON paths of the fields whose values "
                        "differ (a list as a whole); otherwise empty.",
                    },
                    "campaign": {
                        "type": "object",
                        "description": "The configuration after the change (DELETED, "
                        "ARCHIVED: as it was), as query one's returnObject writes it.",
                    },
                },
            },
        },
    },
}

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "addCampaign",
        "POST",
        paths.ADD,
        "Adding an Outbound Campaign (V2)",
        add_campaign,
        AddCampaignRequest.DESCRIPTOR,
        body="required",
        changes=True,
        idempotent=True,
        parameters={**_VDN_ID_PARAMETER, "idempotency_key": IDEMPOTENCY_KEY_HEADER},
        query={VALIDATE_ONLY: _VALIDATE_ONLY},
        success="returnObject {id}: the new campaign's id (0 with validateOnly).",
    ),
    Operation(
        "listCampaigns",
        "GET",
        paths.LIST,
        "Querying Outbound Campaigns",
        list_campaigns,
        ListCampaignsRequest.DESCRIPTOR,
        parameters=_VDN_ID_PARAMETER,
        query={
            "name": QueryParameter(
                {"type": "string"},
                "Part of the name (case-sensitive).",
                "name_contains",
                contract=True,
            ),
            "status": QueryParameter(
                {"type": "integer"}, "0 (default): all.", "status", contract=True
            ),
            "deviceType": QueryParameter(
                {"type": "integer"}, "0 (default): all.", "device_type", contract=True
            ),
            "beginTime": QueryParameter(
                {"type": "string"},
                "Campaigns starting at or after this time.",
                "begin_time_from",
                contract=True,
            ),
            "endTime": QueryParameter(
                {"type": "string"},
                "Campaigns ending at or before this time.",
                "end_time_to",
                contract=True,
            ),
            "curPage": QueryParameter(
                {"type": "integer", "default": 1}, "Below 1 is taken as 1.", "skip"
            ),
            "rowsPerPage": _ROWS_PER_PAGE,
            "ccId": QueryParameter(
                {"type": "integer"}, "Center ID (OP deployments).", "cc_id", contract=True
            ),
        },
        success="No returnObject: curPage, rowsPerPage, totalSize, curSkillQueueCount, "
        "curIvrCount (the tenant's campaigns per family, unfiltered) and data (id, name, "
        "status, strBeginTime, strEndTime, deviceType, callerNo as a string), newest first, "
        "beside the envelope's keys.",
    ),
    Operation(
        "getCampaign",
        "GET",
        paths.ONE,
        "Querying an Outbound Campaign",
        get_campaign,
        GetCampaignRequest.DESCRIPTOR,
        parameters=_ID_PARAMETERS,
        success="returnObject: the campaign in add V2's JSON form (callerNo as a string, "
        "unset values null), with id, status and version.",
    ),
    Operation(
        "modifyCampaign",
        "PUT",
        paths.MODIFY,
        "Modifying an Outbound Campaign (V2)",
        modify_campaign,
        UpdateCampaignRequest.DESCRIPTOR,
        body="required",
        changes=True,
        parameters=_ID_PARAMETERS,
        query={VALIDATE_ONLY: _VALIDATE_ONLY},
        success="The envelope.",
    ),
    Operation(
        "pauseCampaign",
        "PUT",
        paths.PAUSE,
        "Suspending an Outbound Campaign",
        pause_campaign,
        PauseCampaignRequest.DESCRIPTOR,
        changes=True,
        parameters=_ID_PARAMETERS,
        success="The envelope.",
    ),
    Operation(
        "resumeCampaign",
        "PUT",
        paths.RESUME,
        "Resuming an Outbound Campaign",
        resume_campaign,
        ResumeCampaignRequest.DESCRIPTOR,
        changes=True,
        parameters=_ID_PARAMETERS,
        success="The envelope.",
    ),
    Operation(
        "deleteCampaign",
        "DELETE",
        paths.ONE,
        "Deleting an Outbound Campaign",
        delete_campaign,
        DeleteCampaignRequest.DESCRIPTOR,
        body="optional",
        changes=True,
        parameters=_ID_PARAMETERS,
        success="The envelope.",
    ),
    Operation(
        "listCampaignChanges",
        "GET",
        paths.CHANGES,
        "Querying an Outbound Campaign's Change History",
        list_campaign_changes,
        ListCampaignChangesRequest.DESCRIPTOR,
        parameters=_ID_PARAMETERS,
        query={
            "afterSequence": QueryParameter(
                {**_INT64, "default": 0},
                "The last sequence already seen (0: none); below {minimum} is 02000007. One "
                "older than the retained history is 0200001, naming the oldest retained "
                "sequence.",
                "after_sequence",
                contract=True,
            ),
            "rowsPerPage": _ROWS_PER_PAGE,
        },
        success="No returnObject: afterSequence, rowsPerPage, nextAfterSequence, "
        "latestSequence, oldestSequence and data (the campaign's records, ascending by "
        "sequence), beside the envelope's keys.",
        answer_schema=_HISTORY_ANSWER,
        extension=True,
    ),
)
