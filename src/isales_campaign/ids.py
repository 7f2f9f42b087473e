"""The ranges of ids, as the contract declares them, for the code that checks or documents
an id before a request exists: the gateway's path parameters, its OpenAPI document, the
seed file and the list's page tokens."""

from __future__ import annotations

from buf.validate import validate_pb2
from isales.campaign.v2.campaign_service_pb2 import AddCampaignRequest

_RULES = (
    AddCampaignRequest.DESCRIPTOR.fields_by_name["vdn_id"]
    .GetOptions()
    .Extensions[validate_pb2.field]
)

#: The smallest and the largest VDN id.
MIN_VDN_ID: int = _RULES.int32.gte
MAX_VDN_ID: int = _RULES.int32.lte


#: The largest campaign id: `campaign_id` is an int64 (and the database's BIGINT).
MAX_CAMPAIGN_ID = 2**63 - 1


def is_vdn_id(value: int) -> bool:
    return MIN_VDN_ID <= value <= MAX_VDN_ID
