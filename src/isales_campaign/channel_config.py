"""How a client channel to the campaign service should be configured (gRPC service config),
and `open_channel`, which opens one so.

- `round_robin` spreads calls over every address a `dns:///` target resolves to.
- Client-side health checking (gRFC A17): the channel watches each server's health and sends
  no call to one that reports NOT_SERVING; such a call fails at once with UNAVAILABLE
  ("backend unhealthy") or goes to another replica. A draining server turns NOT_SERVING
  first, so a client configured like this stops sending before the server stops; a call
  still on the wire at that instant would be cancelled by grpcio (grpc/grpc#41785).
"""

from __future__ import annotations

import json

import grpc
from isales.campaign.v2 import campaign_service_pb2

from isales_campaign.config import TlsFiles
from isales_campaign.tls import channel_credentials

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


def open_channel(target: str, tls: TlsFiles | None = None) -> grpc.aio.Channel:
    """An asyncio channel to the campaign service at `target`, configured as above: with TLS
    (and a client certificate, for mutual TLS) from `tls`, in plaintext without."""
    options: list[tuple[str, str | int]] = [
        *CHANNEL_OPTIONS,
        # Room for rich error details beyond the 8 KiB default.
        ("grpc.max_metadata_size", 64 * 1024),
    ]
    if tls is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, channel_credentials(tls), options=options)
