"""How a client channel to the campaign service should be configured (gRPC service config).

- `round_robin` spreads calls over every address a `dns:///` target resolves to.
- Client-side health checking (gRFC A17): the channel watches each server's health and sends
  no call to one that reports NOT_SERVING; such a call fails at once with UNAVAILABLE
  ("backend unhealthy") or goes to another replica. A draining server turns NOT_SERVING
  first, so a client configured like this stops sending before the server stops; a call
  still on the wire at that instant would be cancelled by grpcio (grpc/grpc#41785).
"""

from __future__ import annotations

import json

from isales.campaign.v2 import campaign_service_pb2

#: The service whose health decides whether a server gets calls.
CAMPAIGN_SERVICE: str = campaign_service_pb2.DESCRIPTOR.services_by_name[
    "CampaignService"
].full_name

SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "healthCheckConfig": {"serviceName": CAMPAIGN_SERVICE},
    }
)

#: Channel options for `grpc.insecure_channel`/`grpc.secure_channel` (and their aio forms).
CHANNEL_OPTIONS: list[tuple[str, str | int]] = [("grpc.service_config", SERVICE_CONFIG)]
