"""What backs the rules when a check is not enough, and what a fault of the service itself
looks like to its callers."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import grpc
import pytest
from isales.campaign.v2.campaign_service_pb2 import UpdateCampaignRequest
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub
from sqlalchemy import event
from sqlalchemy.pool.base import _ConnectionFairy

from isales_campaign.result_codes import ResultCode
from isales_campaign.service.answers import status_code
from isales_campaign.service.campaigns import CampaignService
from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.group_commit import BoundedLock
from isales_campaign.service.db.store import (
    CampaignStore,
    CampaignValues,
    TenantTransaction,
)
from isales_campaign.service.errors import DatabaseUnavailable, NameTaken
from tests.conftest import ServerFactory, seed_database
from tests.examples import add_request, example_campaign
from tests.rpc_errors import failure_of


@pytest.fixture
def blind_name_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The name check looks for another name: as if it raced a change elsewhere."""
    checked = TenantTransaction._checked

    def elsewhere(self: TenantTransaction, statement: Any, values: CampaignValues, **params: Any):  # type: ignore[no-untyped-def]
        return checked(
            self, statement, replace(values, name=values.name + " (elsewhere)"), **params
        )

    monkeypatch.setattr(TenantTransaction, "_checked", elsewhere)


@pytest.mark.usefixtures("blind_name_check")
def test_the_unique_index_answers_a_name_clash_as_the_check_would(database_url: str) -> None:
    seed_database(database_url)
    engine = create_database_engine(database_url, pool_size=2)
    service = CampaignService(CampaignStore(engine))
    try:
        service.add(add_request(example_campaign("taken")))
        with pytest.raises(NameTaken) as on_add:
            service.add(add_request(example_campaign("taken")))
        other = service.add(add_request(example_campaign("other")))
        renamed = example_campaign("taken")
        with pytest.raises(NameTaken) as on_modify:
            service.update(UpdateCampaignRequest(vdn_id=1, campaign_id=other.id, campaign=renamed))
    finally:
        engine.dispose()
    for refusal in (on_add.value, on_modify.value):
        assert (status_code(refusal), refusal.code) == (
            grpc.StatusCode.ALREADY_EXISTS,
            ResultCode.RESULT_CODE_NAME_NOT_UNIQUE,
        )


def test_a_fault_of_the_service_is_answered_internal(
    make_server: ServerFactory, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = make_server(sqlite_url)

    def broken(_self: CampaignService, _request: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(CampaignService, "add", broken)
    with (
        grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel,
        pytest.raises(grpc.RpcError) as caught,
    ):
        CampaignServiceStub(channel).AddCampaign(add_request(example_campaign()), timeout=10)
    failure = failure_of(caught.value)
    assert (failure.code, failure.message) == (
        grpc.StatusCode.INTERNAL,
        "internal error; nothing was changed",
    )


def test_a_turn_not_given_in_time_is_unavailable() -> None:
    """SQLite's readers and writers of one process take turns; a call that gets none within
    the database timeout is answered UNAVAILABLE rather than left waiting."""
    turn = BoundedLock(0.05, "write")
    with turn:  # another call holds the turn
        refused: list[BaseException] = []

        def wait_for_the_turn() -> None:
            try:
                with turn:
                    pass
            except DatabaseUnavailable as error:
                refused.append(error)

        waiter = threading.Thread(target=wait_for_the_turn)
        waiter.start()
        waiter.join(10)
    assert len(refused) == 1


def test_a_rollback_that_fails_drops_its_connection_and_the_service_goes_on(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused change is rolled back; should the rollback itself fail, the connection is
    dropped (not handed to the next change with its transaction open) and the refusal is
    still the answer."""
    seed_database(database_url)
    engine = create_database_engine(database_url, pool_size=1)
    service = CampaignService(CampaignStore(engine))
    failed: list[object] = []
    opened: list[object] = []
    event.listen(engine, "connect", lambda _dbapi_connection, _record: opened.append(1))

    def failing(self: _ConnectionFairy) -> None:
        failed.append(self.dbapi_connection)
        raise OSError("the rollback failed")

    try:
        service.add(add_request(example_campaign("taken")))
        with monkeypatch.context() as patched:
            # Found on the class before the DBAPI connection's own (which is C code).
            patched.setattr(_ConnectionFairy, "rollback", failing, raising=False)
            with pytest.raises(NameTaken):
                service.add(add_request(example_campaign("taken")))
        assert failed
        before = len(opened)
        added = service.add(add_request(example_campaign("after")))
        assert added.id > 0
        assert len(opened) == before + 1  # the pool replaced the connection it dropped
    finally:
        engine.dispose()
