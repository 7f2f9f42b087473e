"""The contract's validation (`validation`) on its own: texts are kept in NFC, and a rule that
fails to evaluate still answers as bad input.

That failure is injected, because the contract keeps every known input away from it; the guard
decides what a caller sees if one slips through. (A value the database refuses, the store's
guard, is in test_store.py; the rules themselves in test_contract_rules_*.py.)
"""

from __future__ import annotations

import pytest
from isales.campaign.v2.campaign_service_pb2 import AddCampaignRequest
from protovalidate import EvaluationError

from isales_campaign.result_codes import ResultCode
from isales_campaign.service import validation
from isales_campaign.service.validation import normalize_text
from tests.examples import example_campaign


def test_texts_are_kept_in_nfc_and_an_absent_campaign_stays_absent() -> None:
    campaign = example_campaign("cafe\u0301")
    campaign.description = "de\u0301cor"
    normalize_text(campaign)
    assert (campaign.name, campaign.description) == ("caf\u00e9", "d\u00e9cor")
    request = AddCampaignRequest(vdn_id=1)
    normalize_text(request.campaign)
    assert not request.HasField("campaign")


class FailingValidator:
    def collect_violations(self, message: object) -> list[object]:  # noqa: ARG002
        raise EvaluationError("no such overload")


def test_a_rule_that_fails_to_evaluate_is_a_parameter_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(validation, "_validator", FailingValidator())
    problems = validation.contract_problems(AddCampaignRequest(vdn_id=1))
    assert [(p.path, p.code) for p in problems] == [("", ResultCode.RESULT_CODE_PARAMETER_ERROR)]
