"""The in-process backend of `isales serve` runs every call in the service's call chain,
as a call over gRPC does: the same answers, drain, token check and metrics; on SQLite, the
changes sent together share a commit, each answered as its own."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from dataclasses import replace

import grpc
import pytest
from isales.campaign.v2.campaign_service_pb2 import AddCampaignResponse, GetCampaignRequest
from sqlalchemy import text

from isales_campaign.config import Settings
from isales_campaign.local_backend import LocalBackend
from isales_campaign.metrics import SERVICE_METRICS
from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.server import RunningServer, start_server
from tests.conftest import seed_database
from tests.examples import add_request, example_campaign

TOKEN = "in-process-token"


def _start(
    database_url: str, database_timeout_seconds: float = Settings().database_timeout_seconds
) -> RunningServer:
    settings = replace(
        Settings(),
        database_url=database_url,
        grpc_listen="127.0.0.1:0",
        internal_token=TOKEN,
        require_internal_token=True,
        database_timeout_seconds=database_timeout_seconds,
    )
    return start_server(settings, migrate=False)


@pytest.fixture
def running(database_url: str) -> Iterator[RunningServer]:
    seed_database(database_url)
    server = _start(database_url)
    yield server
    server.stop(0)


def _handled(method: str, code: str) -> float:
    labels = {
        "grpc_type": "unary",
        "grpc_service": "isales.campaign.v2.CampaignService",
        "grpc_method": method,
        "grpc_code": code,
    }
    return SERVICE_METRICS.get_sample_value("grpc_server_handled_total", labels) or 0.0


async def _get(backend: LocalBackend, campaign_id: int) -> object:
    request = GetCampaignRequest(vdn_id=1, campaign_id=campaign_id)
    return await backend.call(backend.campaigns.GetCampaign, request, "req-1")


def test_calls_are_answered_and_counted_as_over_grpc(running: RunningServer) -> None:
    async def scenario() -> None:
        backend = LocalBackend(running, 5.0, TOKEN, workers=2)
        await backend.start()
        try:
            added = await backend.call(
                backend.campaigns.AddCampaign, add_request(example_campaign()), "req-0"
            )
            assert added.id > 0
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _get(backend, 999_999)
            assert refused.value.code() == grpc.StatusCode.NOT_FOUND
            assert refused.value.details() == "campaign 999999 does not exist in VDN 1"
        finally:
            await backend.close()

    ok, not_found = _handled("AddCampaign", "OK"), _handled("GetCampaign", "NOT_FOUND")
    asyncio.run(scenario())
    assert _handled("AddCampaign", "OK") == ok + 1
    assert _handled("GetCampaign", "NOT_FOUND") == not_found + 1


def test_changes_sent_together_are_each_answered_as_their_own(running: RunningServer) -> None:
    """On SQLite they run on the event loop and share its pass's commit; on PostgreSQL each
    runs on a thread. A refused one is refused alone."""
    names = ["together-1", "together-2", "together-1", "together-3"]

    async def scenario() -> tuple[list[AddCampaignResponse | BaseException], list[str]]:
        backend = LocalBackend(running, 5.0, TOKEN, workers=2)
        await backend.start()
        try:
            adds = (
                backend.call(
                    backend.campaigns.AddCampaign, add_request(example_campaign(name)), f"r{i}"
                )
                for i, name in enumerate(names)
            )
            answers = await asyncio.gather(*adds, return_exceptions=True)
            found = [
                (await _get(backend, answer.id)).campaign.campaign.name  # type: ignore[attr-defined]
                for answer in answers
                if isinstance(answer, AddCampaignResponse)
            ]
            return answers, found
        finally:
            await backend.close()

    answers, found = asyncio.run(scenario())
    refused = [answer for answer in answers if isinstance(answer, grpc.aio.AioRpcError)]
    assert [error.code() for error in refused] == [grpc.StatusCode.ALREADY_EXISTS]
    assert sorted(found) == ["together-1", "together-2", "together-3"]


def _refused(running: RunningServer, token: str, *, drained: bool = False) -> grpc.aio.AioRpcError:
    """How a get through a new in-process backend presenting `token` is refused (after the
    server began to stop, with `drained`)."""

    async def scenario() -> grpc.aio.AioRpcError:
        backend = LocalBackend(running, 5.0, token, workers=1)
        await backend.start()
        try:
            if drained:
                running.stop(0)  # drains first
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _get(backend, 1)
            return refused.value
        finally:
            await backend.close()

    return asyncio.run(scenario())


def test_a_backend_without_the_token_is_refused_where_the_service_requires_it(
    running: RunningServer,
) -> None:
    assert _refused(running, "not the token").code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_draining_service_refuses_in_process_calls_too(running: RunningServer) -> None:
    refused = _refused(running, TOKEN, drained=True)
    assert refused.code() == grpc.StatusCode.UNAVAILABLE
    assert "shutting down; nothing was changed" in (refused.details() or "")


def _late_failures() -> float:
    """Adds that failed however a late one may: its lock wait ended, or it began past its
    deadline (a worker that started it late)."""
    return _handled("AddCampaign", "UNAVAILABLE") + _handled("AddCampaign", "DEADLINE_EXCEEDED")


def test_a_call_failing_after_the_gateway_stopped_waiting_is_not_reported_unretrieved(
    database_url: str,
) -> None:
    """Past its deadline the gateway answers DEADLINE_EXCEEDED and the call goes on (on the
    loop on SQLite, on a thread on PostgreSQL). When it then fails, here for a database lock
    that another connection holds longer than the service waits, its failure is taken: asyncio
    does not report it as never retrieved."""
    seed_database(database_url)
    server = _start(database_url, database_timeout_seconds=0.3)
    other = create_database_engine(database_url, pool_size=1)
    reported: list[str] = []

    async def late_add() -> grpc.StatusCode:
        """The code of an add whose database lock comes after its deadline."""
        patient = LocalBackend(server, 5.0, TOKEN, workers=1)
        impatient = LocalBackend(server, 0.05, TOKEN, workers=1)
        for backend in (patient, impatient):
            await backend.start()
        failures = _late_failures()
        try:
            # The tenant's settings are cached: the add under test waits for nothing else.
            await patient.call(patient.campaigns.AddCampaign, add_request(example_campaign()), "")
            with other.connect() as connection, connection.begin():
                if connection.dialect.name == "postgresql":  # SQLite's BEGIN took the file's
                    connection.execute(text("SELECT 1 FROM tenants WHERE vdn_id = 1 FOR UPDATE"))
                request = add_request(example_campaign("late"))
                code = grpc.StatusCode.OK
                try:
                    await impatient.call(impatient.campaigns.AddCampaign, request, "late")
                except grpc.aio.AioRpcError as error:  # not kept: it holds the call's future
                    code = error.code()
                while _late_failures() == failures:
                    await asyncio.sleep(0.01)  # the call goes on, until the lock wait ends
            gc.collect()  # a future whose failure nobody took is reported as it goes
            await asyncio.sleep(0)
            return code
        finally:
            for backend in (patient, impatient):
                await backend.close()

    async def scenario() -> grpc.StatusCode:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: reported.append(context["message"]))
        return await asyncio.wait_for(late_add(), 10)

    try:
        code = asyncio.run(scenario())
    finally:
        other.dispose()
        server.stop(0)
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert reported == []
