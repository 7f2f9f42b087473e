"""No-op servers with the real servers' framework setup: `python -m bench.baselines KIND PORT`.

* grpc: `grpc.server` with the service's thread pool and options, a generic handler for
  AddCampaign that takes the serialized request as bytes and returns a fixed AddCampaignResponse.
* http: one Starlette route on the gateway's path that reads the body and returns the success
  envelope, served by the gateway's own uvicorn configuration (`gateway_server`).
"""

from __future__ import annotations

import argparse
import signal
import threading
from concurrent import futures
from dataclasses import replace
from typing import Any

import grpc
from isales.campaign.v2.campaign_pb2 import CampaignStatus
from isales.campaign.v2.campaign_service_pb2 import AddCampaignResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench import payloads
from isales_campaign.config import Settings
from isales_campaign.gateway import envelope
from isales_campaign.gateway.run import gateway_server

RESPONSE_ID = 123456


def serve_grpc(port: int) -> None:
    settings = Settings()
    response = AddCampaignResponse(
        id=RESPONSE_ID, status=CampaignStatus.CAMPAIGN_STATUS_EXECUTING
    ).SerializeToString()

    def add_campaign(_request: bytes, _context: grpc.ServicerContext) -> bytes:
        return response

    service, _, method = payloads.ADD_METHOD.strip("/").partition("/")
    handler = grpc.method_handlers_generic_handler(
        service, {method: grpc.unary_unary_rpc_method_handler(add_campaign)}
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.grpc_workers, thread_name_prefix="grpc"),
        options=[("grpc.so_reuseport", 0)],
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    stopped = threading.Event()

    def _on_signal(_signum: int, _frame: Any) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    stopped.wait()
    server.stop(1).wait()


def serve_http(port: int) -> None:
    answer = envelope.render(envelope.SUCCESS, "", {"id": RESPONSE_ID})

    async def add_campaign(request: Request) -> Response:
        await request.body()
        return Response(answer, media_type=payloads.CONTENT_TYPE)

    path = payloads.REST_PATH.replace("{vdn_id}", "{vdnId}")
    app = Starlette(routes=[Route(path, add_campaign, methods=["POST"])])
    gateway_server(replace(Settings(), http_listen=f"127.0.0.1:{port}"), app).run()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baselines")
    parser.add_argument("kind", choices=("grpc", "http"))
    parser.add_argument("port", type=int)
    args = parser.parse_args()
    (serve_grpc if args.kind == "grpc" else serve_http)(args.port)


if __name__ == "__main__":
    main()
