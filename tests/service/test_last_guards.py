"""Last-resort guards: failures no contract rule anticipated still answer as bad input.

Both failures are injected, because the contract already keeps every known
input away from them; the guards decide what a caller sees if one slips through.
"""

from __future__ import annotations

from typing import Any

import pytest
from isales.campaign.v2.campaign_service_pb2 import AddCampaignRequest
from protovalidate import EvaluationError
from sqlalchemy.exc import DataError

from isales_campaign.result_codes import ResultCode
from isales_campaign.service import validation
from isales_campaign.service.campaigns import CampaignService
from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.store import CampaignStore, TenantTransaction
from isales_campaign.service.errors import InvalidArgument
from tests.conftest import seed_database
from tests.examples import example_campaign


def refuse(*_args: Any, **_options: Any) -> int:
    """A database that refuses the value being inserted."""
    raise DataError("INSERT", None, Exception("invalid byte sequence"))


def test_a_value_the_database_refuses_is_invalid_argument(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_database(database_url)
    monkeypatch.setattr(TenantTransaction, "insert", refuse)
    engine = create_database_engine(database_url, pool_size=1)
    try:
        service = CampaignService(CampaignStore(engine))
        with pytest.raises(InvalidArgument) as raised:
            service.add(AddCampaignRequest(vdn_id=1, campaign=example_campaign()))
    finally:
        engine.dispose()
    assert raised.value.code == ResultCode.RESULT_CODE_PARAMETER_ERROR
    assert [p.path for p in raised.value.fields] == ["campaign"]


class FailingValidator:
    def collect_violations(self, message: object) -> list[object]:  # noqa: ARG002
        raise EvaluationError("no such overload")


def test_a_rule_that_fails_to_evaluate_is_a_parameter_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(validation, "_validator", FailingValidator())
    problems = validation.contract_problems(AddCampaignRequest(vdn_id=1))
    assert [(p.path, p.code) for p in problems] == [("", ResultCode.RESULT_CODE_PARAMETER_ERROR)]
