"""The change feed under load (`make bench`): what idle watchers cost a server, and how long a
change takes to reach its watchers.

- Idle: the server's CPU over a quiet window, without watchers and then with IDLE_WATCHERS of
  them (one per tenant, each caught up); the difference is what the watchers cost.
- Delivery: LIVE_WATCHERS watch one tenant while a writer suspends and resumes one of its
  campaigns at RATE changes a second; each arrival's delay is measured from the change's
  recorded time (the service's clock, read just before its commit) to its arrival at the
  watcher, on the same host. The changes are made through the watchers' server ("same
  server") and through another server on the same database ("other server": they arrive by
  PostgreSQL's NOTIFY, or SQLite's data version read every 0.2 s).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from isales.campaign.v2 import campaign_service_pb2 as rpc
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from bench import data, payloads, procs

if TYPE_CHECKING:  # the stubs' async face: no such class at run time
    from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceAsyncStub

IDLE_WATCHERS = 200
LIVE_WATCHERS = 50
#: Changes a second during the delivery window.
RATE = 50
VDN = 1
#: Seconds the watchers are left to settle before their idle cost is measured.
SETTLE_SECONDS = 1.0


def measure(work_dir: Path, database: str, admin_url: str | None, seconds: float) -> dict[str, Any]:
    """The idle cost and the delivery delays on one fresh database."""
    with data.database(database, work_dir, admin_url) as url:
        data.prepare(url)
        watched = procs.grpc_server(work_dir, url)
        other = procs.grpc_server(work_dir, url)
        try:
            result = asyncio.run(_measure(watched, other, seconds))
        finally:
            other.stop()
            watched.stop()
    result["database"] = database
    return result


async def _measure(watched: procs.Server, other: procs.Server, seconds: float) -> dict[str, Any]:
    async with (
        grpc.aio.insecure_channel(watched.target) as near,
        grpc.aio.insecure_channel(other.target) as far,
    ):
        idle = await _idle_cost(CampaignServiceStub(near), watched, seconds)
        campaign_id = (
            await CampaignServiceStub(near).AddCampaign(payloads.example_request(VDN), timeout=10)
        ).id
        same = await _delivery(CampaignServiceStub(near), near, campaign_id, seconds)
        through_other = await _delivery(CampaignServiceStub(near), far, campaign_id, seconds)
    return {"idle": idle, "same server": same, "other server": through_other}


async def _idle_cost(
    stub: CampaignServiceAsyncStub, server: procs.Server, seconds: float
) -> dict[str, float]:
    quiet = await _server_cores(server, seconds)
    streams = [
        stub.WatchCampaignChanges(
            rpc.WatchCampaignChangesRequest(vdn_id=1 + i % payloads.TENANTS), timeout=seconds * 4
        )
        for i in range(IDLE_WATCHERS)
    ]
    try:
        for stream in streams:
            assert (await _event(stream)).HasField("bookmark")
        await asyncio.sleep(SETTLE_SECONDS)  # the feed reads each new tenant's latest once
        watching = await _server_cores(server, seconds)
    finally:
        for stream in streams:
            stream.cancel()
    return {
        "watchers": IDLE_WATCHERS,
        "seconds": seconds,
        "server_cores_without": quiet,
        "server_cores_with": watching,
        "watchers_share_of_a_core": max(0.0, watching - quiet),
    }


async def _server_cores(server: procs.Server, seconds: float) -> float:
    before = server.cpu_seconds()
    await asyncio.sleep(seconds)
    return (server.cpu_seconds() - before) / seconds


async def _delivery(
    stub: CampaignServiceAsyncStub,
    writer_channel: grpc.aio.Channel,
    campaign_id: int,
    seconds: float,
) -> dict[str, Any]:
    latest = (
        await stub.ListCampaignChanges(rpc.ListCampaignChangesRequest(vdn_id=VDN), timeout=10)
    ).latest_sequence
    delays: list[float] = []
    streams = [
        stub.WatchCampaignChanges(
            rpc.WatchCampaignChangesRequest(vdn_id=VDN, after_sequence=latest),
            timeout=seconds * 4,
        )
        for _ in range(LIVE_WATCHERS)
    ]
    for stream in streams:
        assert (await _event(stream)).HasField("bookmark")
    writer = CampaignServiceStub(writer_channel)
    changes = int(seconds * RATE)
    readers = [asyncio.create_task(_read(stream, changes, delays)) for stream in streams]
    await _write(writer, campaign_id, changes)
    received = await asyncio.wait_for(asyncio.gather(*readers), timeout=30)
    expected = list(range(latest + 1, latest + 1 + changes))
    ordered = all(sequences == expected for sequences in received)
    delays.sort()
    return {
        "watchers": LIVE_WATCHERS,
        "changes": changes,
        "rate": RATE,
        "delivered": len(delays),
        "in_order_without_gap": ordered,
        "p50_ms": statistics.median(delays) * 1000,
        "p99_ms": delays[int(len(delays) * 0.99) - 1] * 1000,
        "max_ms": delays[-1] * 1000,
    }


async def _write(writer: CampaignServiceAsyncStub, campaign_id: int, changes: int) -> None:
    """Suspend and resume the campaign in turn, `changes` times at RATE a second."""
    started = time.monotonic()
    reference = rpc.PauseCampaignRequest(vdn_id=VDN, campaign_id=campaign_id)
    for n in range(changes):
        await asyncio.sleep(max(0.0, started + n / RATE - time.monotonic()))
        if n % 2 == 0:
            await writer.PauseCampaign(reference, timeout=10)
        else:
            await writer.ResumeCampaign(
                rpc.ResumeCampaignRequest(vdn_id=VDN, campaign_id=campaign_id), timeout=10
            )


async def _read(
    stream: grpc.aio.UnaryStreamCall[Any, rpc.WatchCampaignChangesResponse],
    changes: int,
    delays: list[float],
) -> list[int]:
    """The sequences of the next `changes` changes; each one's delay goes to `delays`."""
    sequences: list[int] = []
    while len(sequences) < changes:
        event = await stream.read()
        if event is grpc.aio.EOF:
            break
        assert isinstance(event, rpc.WatchCampaignChangesResponse)
        if event.HasField("change"):
            arrived = time.time()
            change = event.change
            sequences.append(change.sequence)
            delays.append(arrived - change.change_time.ToNanoseconds() / 1e9)
    stream.cancel()
    return sequences


async def _event(
    stream: grpc.aio.UnaryStreamCall[Any, rpc.WatchCampaignChangesResponse],
) -> rpc.WatchCampaignChangesResponse:
    event = await stream.read()
    assert isinstance(event, rpc.WatchCampaignChangesResponse), event
    return event
