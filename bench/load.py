"""The load generator, run as its own process: `python -m bench.load KIND HOST:PORT ...`.

N tasks on one asyncio loop each send the next request as soon as the previous answer is in
(closed loop). gRPC goes over `--channels` `grpc.aio` channels, each its own connection, the
tasks taking turns (raw bytes in and out, no protobuf work here); HTTP over N keep-alive
HTTP/1.1 connections of a minimal client on asyncio streams; every request is signed with the
project's auth-v2 client. Protocol on stdout: a line `measure` when the measured window opens,
`end` when it closes, then one JSON line with the results.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import orjson
from isales.campaign.v2.campaign_service_pb2 import (
    AddCampaignResponse,
    GetCampaignRequest,
    ListCampaignsRequest,
    PauseCampaignRequest,
    ResumeCampaignRequest,
    UpdateCampaignRequest,
)

from bench import payloads
from isales_campaign.client.http import sign_request

#: A sender makes one request and returns what it called ("add", "get", "list") and None on
#: success, or a short description of the error.
Sender = Callable[[], Awaitable[tuple[str, str | None]]]

_PLACEHOLDER = payloads.PLACEHOLDER.encode()
_SUCCESS = b'"resultCode":"0200000"'


#: What each kind of gRPC load calls: its senders take turns over these (label, method).
_GRPC_CALLS = {
    "grpc": [("add", payloads.ADD_METHOD)],
    # Adds to one tenant only (VDN 1), whatever it holds.
    "grpc-one-tenant": [("add", payloads.ADD_METHOD)],
    "grpc-get": [("get", payloads.GET_METHOD)],
    "grpc-list": [("list", payloads.LIST_METHOD)],
    # Each caller adds and gets in turn: do reads wait behind the writes?
    "grpc-mixed": [("add", payloads.ADD_METHOD), ("get", payloads.GET_METHOD)],
    # Each caller adds a campaign of its own, then suspends, resumes and modifies it in turn.
    "grpc-change": [
        ("pause", payloads.PAUSE_METHOD),
        ("resume", payloads.RESUME_METHOD),
        ("modify", payloads.UPDATE_METHOD),
    ],
}


class GrpcLoad:
    """Adds (`kind` "grpc"; "grpc-one-tenant" adds to VDN 1 only), gets of preloaded
    campaigns ("grpc-get"), list pages of LIST_PAGE of a preloaded tenant ("grpc-list"), or
    adds and gets in turn ("grpc-mixed"); `rows`: how many were preloaded."""

    def __init__(self, target: str, channels: int = 1, kind: str = "grpc", rows: int = 0) -> None:
        # A local subchannel pool: each channel opens its own connection (several server
        # processes on one port each get some).
        self._channels = [
            grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(channels)
        ]
        self._calls = _GRPC_CALLS[kind]
        add = self._add_to_one_tenant if kind == "grpc-one-tenant" else self._add
        self._requests = {"add": add, "get": self._get, "list": self._list}
        self._rows = rows
        self._random = random.Random(0)  # noqa: S311 - load, not secrets
        self._senders = 0
        self._templates = payloads.grpc_templates()
        self._names = payloads.Names()

    def sender(self) -> Sender:
        """The next caller, on the next channel; it makes this kind's calls in turn, the first
        at its own offset (half the callers of a mixed load start with a get)."""
        channel = self._channels[self._senders % len(self._channels)]
        # No serializers: the request is sent as the bytes given, the response kept as bytes.
        calls: list[tuple[str, grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]]] = [
            (label, channel.unary_unary(method, None, None)) for label, method in self._calls
        ]
        turn = self._senders
        self._senders += 1
        if self._calls is _GRPC_CALLS["grpc-change"]:
            return self._change_sender(channel, calls)

        async def send() -> tuple[str, str | None]:
            nonlocal turn
            label, call = calls[turn % len(calls)]
            turn += 1
            try:
                await call(self._requests[label](), timeout=30)
            except grpc.aio.AioRpcError as error:
                return label, f"gRPC {error.code().name}: {error.details()}"
            return label, None

        return send

    def _change_sender(
        self,
        channel: grpc.aio.Channel,
        calls: list[tuple[str, grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]]],
    ) -> Sender:
        """A caller that adds its campaign (its first call), then changes it in turn."""
        add: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            payloads.ADD_METHOD, None, None
        )
        requests: list[bytes] = []
        turn = 0

        async def send() -> tuple[str, str | None]:
            nonlocal turn
            try:
                if not requests:
                    vdn_id, name = self._names.next()
                    added = await add(self._add_of(vdn_id, name), timeout=30)
                    requests.extend(
                        _changes_of(vdn_id, name, AddCampaignResponse.FromString(added).id)
                    )
                    return "add", None
                label, call = calls[turn % len(calls)]
                request = requests[turn % len(requests)]
                turn += 1
                await call(request, timeout=30)
            except grpc.aio.AioRpcError as error:
                return "change", f"gRPC {error.code().name}: {error.details()}"
            return label, None

        return send

    def _add_of(self, vdn_id: int, name: bytes) -> bytes:
        return self._templates[vdn_id - 1].replace(_PLACEHOLDER, name)

    def _add(self) -> bytes:
        return self._add_of(*self._names.next())

    def _add_to_one_tenant(self) -> bytes:
        return self._add_of(1, self._names.next()[1])

    def _get(self) -> bytes:
        """A preloaded campaign, at random."""
        row = self._random.randrange(self._rows)
        vdn_id = 1 + row % payloads.SCALE_TENANTS
        return GetCampaignRequest(vdn_id=vdn_id, campaign_id=row + 1).SerializeToString()

    def _list(self) -> bytes:
        vdn_id = 1 + self._random.randrange(payloads.SCALE_TENANTS)
        request = ListCampaignsRequest(vdn_id=vdn_id, page_size=payloads.LIST_PAGE)
        return request.SerializeToString()

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close(None)


def _changes_of(vdn_id: int, name: bytes, campaign_id: int) -> list[bytes]:
    """Twice a suspension, a resumption and a modification of a campaign (of its
    description, to one text and back)."""
    requests = []
    for description in ("modified by the load", "modified again by the load"):
        campaign = payloads.example_request(vdn_id, name.decode()).campaign
        campaign.description = description
        requests += [
            PauseCampaignRequest(vdn_id=vdn_id, campaign_id=campaign_id).SerializeToString(),
            ResumeCampaignRequest(vdn_id=vdn_id, campaign_id=campaign_id).SerializeToString(),
            UpdateCampaignRequest(
                vdn_id=vdn_id, campaign_id=campaign_id, campaign=campaign
            ).SerializeToString(),
        ]
    return requests


class HttpLoad:
    def __init__(self, target: str) -> None:
        self._host, _, port = target.rpartition(":")
        self._port = int(port)
        self._target = target
        self._body = payloads.example_body(payloads.PLACEHOLDER).decode()
        self._names = payloads.Names()
        self._writers: list[asyncio.StreamWriter] = []

    def sender(self) -> Sender:
        connection: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

        async def send() -> tuple[str, str | None]:
            if not connection:
                reader, writer = await asyncio.open_connection(self._host, self._port)
                connection.append((reader, writer))
                self._writers.append(writer)
            reader, writer = connection[0]
            vdn_id, name = self._names.next()
            body = self._body.replace(payloads.PLACEHOLDER, name.decode()).encode()
            path = payloads.REST_PATH.format(vdn_id=vdn_id)
            ak, sk = payloads.access_key(vdn_id)
            auth = sign_request(
                ak, sk, method="POST", url=f"http://{self._target}{path}", body=body
            )
            writer.write(
                (
                    f"POST {path} HTTP/1.1\r\nHost: {self._target}\r\n"
                    f"Content-Type: {payloads.CONTENT_TYPE}\r\nContent-Length: {len(body)}\r\n"
                    f"Authorization: {auth}\r\n\r\n"
                ).encode()
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            close = False
            for line in head.split(b"\r\n")[1:]:
                name_, _, value = line.partition(b":")
                key = name_.strip().lower()
                if key == b"content-length":
                    length = int(value)
                elif key == b"connection" and value.strip().lower() == b"close":
                    close = True
            answer = await reader.readexactly(length)
            if close:
                writer.close()
                connection.clear()
            if status != 200 or _SUCCESS not in answer:
                return "add", f"HTTP {status}: {answer[:300].decode(errors='replace')}"
            return "add", None

        return send

    async def close(self) -> None:
        for writer in self._writers:
            writer.close()


def _summary(ordered: list[float], duration: float) -> dict[str, Any]:
    """Calls answered in the measured window, and their latencies (ascending, in seconds)."""
    return {
        "requests": len(ordered),
        "rps": len(ordered) / duration,
        "p50_ms": _percentile(ordered, 0.50) * 1000,
        "p90_ms": _percentile(ordered, 0.90) * 1000,
        "p99_ms": _percentile(ordered, 0.99) * 1000,
    }


def _percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, round(fraction * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


async def run(
    kind: str,
    target: str,
    concurrency: int,
    warmup: float,
    duration: float,
    channels: int,
    rows: int,
) -> None:
    load: GrpcLoad | HttpLoad = (
        HttpLoad(target) if kind == "http" else GrpcLoad(target, channels, kind, rows)
    )
    latencies: dict[str, list[float]] = {}
    errors: Counter[str] = Counter()
    total = 0
    start = time.perf_counter()
    opens, closes = start + warmup, start + warmup + duration

    async def worker(send: Sender) -> None:
        nonlocal total
        while (began := time.perf_counter()) < closes:
            try:
                label, error = await send()
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                label, error = "", f"{type(exc).__name__}: {exc}"
            done = time.perf_counter()
            total += 1
            if error is not None:
                errors[error] += 1
            elif opens <= done <= closes:
                latencies.setdefault(label, []).append(done - began)

    async def markers() -> tuple[float, float]:
        await asyncio.sleep(opens - time.perf_counter())
        print("measure", flush=True)
        cpu = time.process_time()
        await asyncio.sleep(closes - time.perf_counter())
        print("end", flush=True)
        return cpu, time.process_time()

    tasks = [asyncio.ensure_future(worker(load.sender())) for _ in range(concurrency)]
    cpu_open, cpu_close = await markers()
    await asyncio.gather(*tasks)
    await load.close()
    result: dict[str, Any] = {
        **_summary(sorted(t for measured in latencies.values() for t in measured), duration),
        "total_requests": total,
        "errors": sum(errors.values()),
        "error_samples": dict(errors.most_common(3)),
        "load_cpu_cores": (cpu_close - cpu_open) / duration,
    }
    if len(latencies) > 1:  # a mixed load: each kind of call on its own too
        result["by_call"] = {
            label: _summary(sorted(measured), duration) for label, measured in latencies.items()
        }
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load")
    parser.add_argument("kind", choices=(*_GRPC_CALLS, "http"))
    parser.add_argument("target", help="host:port")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--channels", type=int, default=1, help="gRPC connections")
    parser.add_argument("--rows", type=int, default=0, help="campaigns preloaded (get, list)")
    args = parser.parse_args()
    asyncio.run(
        run(
            args.kind,
            args.target,
            args.concurrency,
            args.warmup,
            args.duration,
            args.channels,
            args.rows,
        )
    )


if __name__ == "__main__":
    main()
