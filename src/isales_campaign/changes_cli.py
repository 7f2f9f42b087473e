"""`isales changes`: a tenant's change history as JSON lines, read once or followed.

Each record is one line of protobuf's JSON mapping of `CampaignChange` (camelCase names, enum
names, RFC 3339 times, `changedFields` as a FieldMask string), every field present, 64-bit
integers as numbers: any protobuf JSON parser reads a line back into the message.

It calls the service at ISALES_GRPC_TARGET over the gateway's channel (TLS from the same
settings), presenting ISALES_INTERNAL_TOKEN when it is set.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable

import grpc
import orjson
from google.protobuf import json_format
from isales.campaign.v2.campaign_change_pb2 import CampaignChange
from isales.campaign.v2.campaign_service_pb2 import (
    ListCampaignChangesRequest,
    WatchCampaignChangesRequest,
)
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from isales_campaign.channel_config import open_channel
from isales_campaign.config import Settings
from isales_campaign.internal_token import bearer

log = logging.getLogger("isales.changes")

#: ListCampaignChanges' largest page.
PAGE_SIZE = 100
#: A follower waits this long before its first attempt to resume, twice as long before each
#: further one, up to LAST_RETRY_SECONDS.
FIRST_RETRY_SECONDS = 0.5
LAST_RETRY_SECONDS = 10.0
#: How a watch ends that a follower resumes: the server shut down or cannot be reached
#: (UNAVAILABLE), the follower fell behind (ABORTED), the server has all the watchers it
#: takes (RESOURCE_EXHAUSTED). Any other refusal would only be repeated.
RESUMABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)
#: Exit codes: a refusal, and (the shell's convention, 128 + the signal's number) a stop.
REFUSED = 1
STOPPED = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGPIPE: 141}

Emit = Callable[[CampaignChange], None]


def run(settings: Settings, args: argparse.Namespace) -> int:
    """The command: 0 when the listing is complete (never, when following), REFUSED when the
    service refuses or cannot be reached, STOPPED[signal] when stopped."""
    try:
        return asyncio.run(_until_stopped(settings, args))
    except BrokenPipeError:  # `isales changes 1 | head`: the reader went away
        # Python flushes stdout once more on exit; let that go nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return STOPPED[signal.SIGPIPE]


def print_change(change: CampaignChange) -> None:
    # Only a modification has changed fields; the others print an empty mask rather than
    # none, so that every line has the same keys.
    change.changed_fields.SetInParent()
    line = json_format.MessageToDict(
        change, always_print_fields_with_no_presence=True, unquote_int64_if_possible=True
    )
    sys.stdout.buffer.write(orjson.dumps(line) + b"\n")
    sys.stdout.buffer.flush()  # a follower's reader sees each change as it comes


async def _until_stopped(settings: Settings, args: argparse.Namespace) -> int:
    """Run the command until it ends or SIGINT/SIGTERM cancels it: the cancellation cancels
    the call and closes the channel on its way out, so nothing keeps the process alive."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    received: list[signal.Signals] = []

    def stop(signum: signal.Signals) -> None:
        received.append(signum)
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    metadata = (bearer(settings.internal_token),) if settings.internal_token else ()
    try:
        if args.follow:
            await _follow(settings, args, metadata, _only(args.campaign))
        else:
            await _list(settings, args, metadata)
    except grpc.aio.AioRpcError as error:
        print(f"isales changes: {error.details()} ({error.code().name})", file=sys.stderr)
        return REFUSED
    except asyncio.CancelledError:
        if not received:
            raise
        return STOPPED[received[0]]
    return 0


async def _list(
    settings: Settings, args: argparse.Namespace, metadata: tuple[tuple[str, str], ...]
) -> None:
    """Every record after `--after` (of `--campaign`'s campaign), page by page."""
    after: int = args.after
    async with open_channel(settings.grpc_target, settings.grpc_target_tls) as channel:
        stub = CampaignServiceStub(channel)
        while True:
            request = ListCampaignChangesRequest(
                vdn_id=args.vdn,
                campaign_id=args.campaign,
                after_sequence=after,
                page_size=PAGE_SIZE,
            )
            page = await stub.ListCampaignChanges(
                request, timeout=settings.grpc_timeout_seconds, metadata=metadata
            )
            for change in page.changes:
                print_change(change)
            if not page.next_after_sequence:
                return
            after = page.next_after_sequence


async def _follow(
    settings: Settings,
    args: argparse.Namespace,
    metadata: tuple[tuple[str, str], ...],
    emit: Emit,
) -> None:
    """The tenant's changes after `--after` as they come, for ever: a watch that ends (the
    server stops, the follower fell behind, the connection drops) is resumed after the last
    change received, so that none is missed or repeated."""
    after: int = args.after
    delay = FIRST_RETRY_SECONDS
    while True:
        # A channel per watch: it connects when asked to, not on grpcio's own reconnect
        # backoff (up to two minutes), and re-resolves a dns:/// target.
        async with open_channel(settings.grpc_target, settings.grpc_target_tls) as channel:
            request = WatchCampaignChangesRequest(vdn_id=args.vdn, after_sequence=after)
            call = CampaignServiceStub(channel).WatchCampaignChanges(request, metadata=metadata)
            try:
                async for event in call:
                    delay = FIRST_RETRY_SECONDS  # the server answered: a later end starts afresh
                    if event.HasField("change"):
                        after = event.change.sequence
                        emit(event.change)
                    else:
                        log.debug(
                            "caught up", extra={"latest_sequence": event.bookmark.latest_sequence}
                        )
                why = "the watch ended"  # the service never ends one without a status
            except grpc.aio.AioRpcError as error:
                if error.code() not in RESUMABLE:
                    raise
                why = f"{error.details()} ({error.code().name})"
        log.warning(
            "the change feed was interrupted; resuming",
            extra={"reason": why, "after_sequence": after, "in_seconds": delay},
        )
        await asyncio.sleep(delay)
        delay = min(delay * 2, LAST_RETRY_SECONDS)


def _only(campaign_id: int | None) -> Emit:
    """`print_change`, for the changes of one campaign only when `campaign_id` is given (a
    watch is of the whole tenant: the others are read and skipped)."""
    if campaign_id is None:
        return print_change

    def emit(change: CampaignChange) -> None:
        if change.campaign_id == campaign_id:
            print_change(change)

    return emit
