"""How a client channel to the campaign service should be configured (gRPC service config),
and `open_channel`, which opens one so.

- `round_robin` spreads calls over every address a `dns:///` target resolves to.
- Client-side health checking (gRFC A17): the channel watches each server's health and sends
  no call to one that reports NOT_SERVING; such a call fails at once with UNAVAILABLE
  ("backend unhealthy") or goes to another replica. A draining server turns NOT_SERVING
  first, so a client configured like this stops sending before the server stops; a call
  still on the wire at that instant would be cancelled by grpcio (grpc/grpc#41785).
- Retries (gRFC A6): the methods that change nothing (`READS`) are sent again, up to
  `RETRY_ATTEMPTS` times in all within the call's deadline, when they fail UNAVAILABLE: a
  draining server refused them, or the connection failed before an answer. The service
  forbids retrying its answers that a retry at once would not mend (a database failure: the
  trailer `grpc-retry-pushback-ms: -1`, see `service.answers`). Changes are not retried here:
  a change whose connection broke may have been made.

The gateway's channels (`gateway_service_config`) also wait for a ready server instead of
failing at once while none is (a replica restarting), and retry its adds, which always carry
an idempotency key: an add sent again is answered as the first was.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import grpc
from isales.campaign.v2 import access_key_service_pb2, campaign_service_pb2

from isales_campaign.config import TlsFiles
from isales_campaign.tls import channel_credentials

#: The service whose health decides whether a server gets calls.
CAMPAIGN_SERVICE: str = campaign_service_pb2.DESCRIPTOR.services_by_name[
    "CampaignService"
].full_name
ACCESS_KEY_SERVICE: str = access_key_service_pb2.DESCRIPTOR.services_by_name[
    "AccessKeyService"
].full_name

#: Methods that change nothing: sent again after an UNAVAILABLE, whatever happened to the
#: first attempt.
READS: tuple[tuple[str, str], ...] = (
    (CAMPAIGN_SERVICE, "GetCampaign"),
    (CAMPAIGN_SERVICE, "ListCampaigns"),
    (CAMPAIGN_SERVICE, "GetQuota"),
    (CAMPAIGN_SERVICE, "ListCampaignChanges"),
    (ACCESS_KEY_SERVICE, "GetAccessKey"),
)
#: The add, which the gateway always sends with an idempotency key.
KEYED_ADD = (CAMPAIGN_SERVICE, "AddCampaign")
#: The changes the gateway sends that may not be repeated blindly: it sends one again only
#: when the service said that it did nothing (`service.answers`: a `RetryInfo`).
CHANGES: tuple[tuple[str, str], ...] = (
    (CAMPAIGN_SERVICE, "UpdateCampaign"),
    (CAMPAIGN_SERVICE, "PauseCampaign"),
    (CAMPAIGN_SERVICE, "ResumeCampaign"),
    (CAMPAIGN_SERVICE, "DeleteCampaign"),
)

#: Attempts of a retried call in all (grpcio allows at most 5), each after a random wait of
#: up to the backoff, which starts at RETRY_BACKOFF_SECONDS and doubles up to 1 s: a draining
#: server's refusal is sent on at once, to another replica or, once the channel has heard
#: that the server is NOT_SERVING, as soon as one is ready (the gateway waits for one).
RETRY_ATTEMPTS = 5
RETRY_BACKOFF_SECONDS = 0.05
RETRY_MAX_BACKOFF_SECONDS = 1.0

#: A connection that failed is tried again after 0.1 s, then ever later up to 1 s (grpcio's
#: defaults: 1 s, up to 120 s), so that a replica that restarts gets calls as soon as it
#: listens.
RECONNECT_OPTIONS: list[tuple[str, str | int]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def _names(methods: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"service": service, "method": method} for service, method in methods]


def _retry_policy() -> dict[str, Any]:
    return {
        "maxAttempts": RETRY_ATTEMPTS,
        "initialBackoff": f"{RETRY_BACKOFF_SECONDS}s",
        "maxBackoff": f"{RETRY_MAX_BACKOFF_SECONDS}s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }


def service_config(
    retried: Sequence[tuple[str, str]] = READS,
    waiting: Sequence[tuple[str, str]] = (),
) -> str:
    """The service config: round_robin, health checking, `retried` methods retried on
    UNAVAILABLE, and calls of the `retried` and `waiting` methods waiting for a ready server
    (when `waiting` is not empty) rather than failing at once."""
    wait = bool(waiting)
    method_config: list[dict[str, Any]] = [
        {
            "name": _names(retried),
            "retryPolicy": _retry_policy(),
            **({"waitForReady": True} if wait else {}),
        }
    ]
    if wait:
        method_config.append({"name": _names(waiting), "waitForReady": True})
    return json.dumps(
        {
            "loadBalancingConfig": [{"round_robin": {}}],
            "healthCheckConfig": {"serviceName": CAMPAIGN_SERVICE},
            "methodConfig": method_config,
        }
    )


SERVICE_CONFIG = service_config()

#: Channel options for `grpc.insecure_channel`/`grpc.secure_channel` (and their aio forms).
CHANNEL_OPTIONS: list[tuple[str, str | int]] = [("grpc.service_config", SERVICE_CONFIG)]


def gateway_service_config() -> str:
    """The gateway's: reads and its keyed adds retried, and every call it makes waiting for a
    ready server, within its deadline."""
    return service_config(retried=(*READS, KEYED_ADD), waiting=CHANGES)


def open_channel(
    target: str,
    tls: TlsFiles | None = None,
    *,
    config: str = SERVICE_CONFIG,
    own_connection: bool = False,
) -> grpc.aio.Channel:
    """An asyncio channel to the campaign service at `target`, configured by `config` (see
    above): with TLS (and a client certificate, for mutual TLS) from `tls`, in plaintext
    without. `own_connection`: its connections are its own, not shared with the process's
    other channels to the same target (grpcio shares them by default), so that several
    channels open several connections."""
    options: list[tuple[str, str | int]] = [
        ("grpc.service_config", config),
        *RECONNECT_OPTIONS,
        # Room for rich error details beyond the 8 KiB default.
        ("grpc.max_metadata_size", 64 * 1024),
    ]
    if own_connection:
        options.append(("grpc.use_local_subchannel_pool", 1))
    if tls is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, channel_credentials(tls), options=options)
