"""The documented example as load: serialized gRPC requests and legacy JSON bodies.

Each is built once per tenant with a fixed-length placeholder for the campaign name, so a
load generator makes a unique request with one `bytes.replace` instead of a protobuf build.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from isales.campaign.v2.campaign_service_pb2 import AddCampaignRequest

from isales_campaign.gateway.examples import example
from tests.examples import add_request, example_campaign

ADD_METHOD = "/isales.campaign.v2.CampaignService/AddCampaign"
GET_METHOD = "/isales.campaign.v2.CampaignService/GetCampaign"
LIST_METHOD = "/isales.campaign.v2.CampaignService/ListCampaigns"
PAUSE_METHOD = "/isales.campaign.v2.CampaignService/PauseCampaign"
RESUME_METHOD = "/isales.campaign.v2.CampaignService/ResumeCampaign"
UPDATE_METHOD = "/isales.campaign.v2.CampaignService/UpdateCampaign"
#: Campaigns on a measured list page.
LIST_PAGE = 100
REST_PATH = "/rest/isales/v2/openapi/campaigns/{vdn_id}"
CONTENT_TYPE = "application/json;charset=UTF-8"

#: Campaign names are at most 32 characters; every generated name has this length.
NAME_LENGTH = 16
PLACEHOLDER = "~" * NAME_LENGTH
#: Tenants the load is spread over (each: one app key, skill queue 2).
TENANTS = 200
#: Tenants the preloaded campaigns are spread over (the bench tenants among them): row i of
#: a preload has id i + 1 and VDN 1 + i % SCALE_TENANTS.
SCALE_TENANTS = 1000


def access_key(vdn_id: int) -> tuple[str, str]:
    """The app key (AK, SK) seeded for a bench tenant."""
    return f"bench-ak-{vdn_id}", f"bench-sk-{vdn_id}-0123456789abcdef"


def seed_document(tenants: int = TENANTS) -> dict[str, Any]:
    """`isales seed` content for the bench tenants."""
    return {
        "tenants": [
            {
                "vdn_id": vdn,
                "time_zone": "UTC",
                "app_keys": [dict(zip(("access_key", "secret_key"), access_key(vdn), strict=True))],
                "skill_queues": [{"id": 2, "name": "defaultAudioSkill"}],
            }
            for vdn in range(1, tenants + 1)
        ]
    }


def example_request(vdn_id: int = 1, name: str = "test0827shwocase1") -> AddCampaignRequest:
    """The documented example, dated today (UTC)."""
    return add_request(example_campaign(name), vdn_id)


def example_body(name: str = "test0827shwocase1") -> bytes:
    """The documented legacy JSON body, verbatim but for its name and dates (moved to today)."""
    document = example("add-campaign-request")
    today = datetime.now(UTC).date()
    document["name"] = name
    document["strBeginTime"] = f"{today.isoformat()} 00:00:00"
    document["strEndTime"] = f"{(today + timedelta(days=1)).isoformat()} 23:59:59"
    return orjson.dumps(document, option=orjson.OPT_INDENT_2)


class Names:
    """Unique names: a random per-process tag and a counter."""

    def __init__(self) -> None:
        self._tag = os.urandom(3).hex()
        self._count = 0

    def next(self) -> tuple[int, bytes]:
        """(tenant, name) for the next request, round-robin over the tenants."""
        self._count += 1
        name = f"{self._tag}{self._count:0{NAME_LENGTH - 6}d}".encode()
        return 1 + self._count % TENANTS, name


def grpc_templates() -> list[bytes]:
    """Serialized AddCampaignRequest per tenant (index vdn_id - 1), name = PLACEHOLDER."""
    return [example_request(vdn, PLACEHOLDER).SerializeToString() for vdn in range(1, TENANTS + 1)]
