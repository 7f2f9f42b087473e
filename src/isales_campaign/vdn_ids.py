"""The range of VDN ids, as the contract declares it (`vdn_id` of the requests), for the
code that checks or documents a VDN id before a request exists: the gateway's path
parameter, its OpenAPI document and the seed file."""

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


def is_vdn_id(value: int) -> bool:
    return MIN_VDN_ID <= value <= MAX_VDN_ID
