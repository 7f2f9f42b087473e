"""The vendor's REST paths, as Starlette route templates (`{vdnId}`, `{campaignId}`), and
this gateway's own extensions beside them (marked as such: the vendor has no such path)."""

from __future__ import annotations

#: POST: "Adding an Outbound Campaign (V2)".
ADD = "/rest/isales/v2/openapi/campaigns/{vdnId}"
#: GET: "Querying Outbound Campaigns".
LIST = "/rest/isales/v1/openapi/campaigns/{vdnId}"
#: GET: "Querying an Outbound Campaign"; DELETE: "Deleting an Outbound Campaign".
ONE = "/rest/isales/v1/openapi/campaigns/{vdnId}/{campaignId}"
#: PUT: "Modifying an Outbound Campaign (V2)".
MODIFY = "/rest/isales/v2/openapi/campaigns/{vdnId}/{campaignId}"
#: PUT: suspend and resume.
PAUSE = ONE + "/pause"
RESUME = ONE + "/resume"

# -- this gateway's extensions, not the vendor's -------------------------------------------

#: GET: the change history of one campaign (the vendor keeps none).
CHANGES = ONE + "/changes"


def path(template: str, vdn_id: int | str, campaign_id: int | str | None = None) -> str:
    """A template with its parameters filled in."""
    filled = template.replace("{vdnId}", str(vdn_id))
    if campaign_id is not None:
        filled = filled.replace("{campaignId}", str(campaign_id))
    return filled
