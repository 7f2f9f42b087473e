"""The compiled fast path never vouches for a message protovalidate refuses.

`fast_validation.vouches_for` lets a message skip protovalidate, so the service's
answers stay protovalidate's only if it never vouches for a message with a violation.
These tests compare the two over generated messages: valid campaigns of every shape
changed in one to three places, with values chosen at and around every limit of the
contract; and messages of arbitrary values. Where the fast path can judge every value
(ASCII text, a callback URL of the plain shape), it must also agree the other way:
vouch for every message protovalidate accepts, or it would not be fast.
"""

from __future__ import annotations

from typing import Any

import pytest
from buf.validate import validate_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from isales.campaign.v2 import access_key_service_pb2, campaign_service_pb2
from isales.campaign.v2 import campaign_pb2 as pb
from protovalidate import Validator

from isales_campaign.service import fast_validation
from isales_campaign.service.cel_subset import PLAIN_URL, Unsupported
from isales_campaign.service.fast_validation import vouches_for
from isales_campaign.service.validation import contract_problems
from tests.examples import add_request, example_campaign, ivr_campaign
from tests.service.helpers import any_fields, build

protovalidate = Validator()

INT32_LIMITS = (-(2**31), 2**31 - 1)


def _previewed() -> pb.Campaign:
    campaign = example_campaign()
    campaign.device_type = pb.DEVICE_TYPE_PREVIEWED
    campaign.skill_param.out_bound_type = pb.OUT_BOUND_TYPE_PREVIEWED
    campaign.skill_param.ClearField("predict_param")
    campaign.skill_param.preview_param.CopyFrom(
        pb.PreviewParam(fail_interval=10, ob_call_count=5, auto_call_time=10)
    )
    return campaign


def _global_with_results() -> pb.Campaign:
    campaign = example_campaign()
    campaign.ClearField("call_policy")
    campaign.retry_policy.CopyFrom(
        pb.RetryPolicy(
            policy_type=pb.POLICY_TYPE_GLOBAL,
            result_retry=[pb.ResultRetry(result=1, call_interval=60, retry_number=2)],
            busi_policy=[
                pb.BusiPolicy(
                    busi_result_code="B1", busi_result_policy=pb.BUSI_RESULT_POLICY_STOP_CALLING
                )
            ],
            no_retry_policy=["x1"],
        )
    )
    return campaign


def _round_by_sequence() -> pb.Campaign:
    campaign = example_campaign()
    campaign.call_policy.choose_type = pb.CHOOSE_TYPE_BY_NUMBER_SEQUENCE
    campaign.call_policy.turns[0].turn_order = 1
    campaign.schedule_param.workday_begin_time1 = "10:00"
    campaign.schedule_param.workday_end_time1 = "12:00"
    campaign.schedule_param.workday_begin_time2 = "08:00"
    campaign.schedule_param.workday_end_time2 = "09:00"
    return campaign


def _agent_predicted() -> pb.Campaign:
    campaign = example_campaign()
    predict = campaign.skill_param.predict_param
    predict.Clear()
    predict.predict_method = pb.PREDICT_METHOD_AGENT_USAGE
    predict.agent_predict_param.CopyFrom(
        pb.AgentPredictParam(
            max_avg_call_time=100, min_avg_call_time=50, loss_rate=3, util_rate=70,
            util_rate_method=pb.UTIL_RATE_METHOD_CALL_TIME,
        )
    )  # fmt: skip
    return campaign


VALID_CAMPAIGNS = [
    example_campaign(),
    ivr_campaign(),
    _previewed(),
    _global_with_results(),
    _round_by_sequence(),
    _agent_predicted(),
]

TEXTS = [
    "", " ", "a", "A_1", "SI", "x1", "1001", "88889527", "\t", "\x0b", "a\n", "a\x00", "a\x7f",
    '"', "<b>", "a;b", "a\\b", "名前", "a\u200b", "a\u2028", "٣", "ä", "\u3000",
    "00:00", "08:00", "09:00", "09:30", "10:00", "11:00", "13:00", "17:30", "23:59", "24:00",
    "12:60", "9:00", "09:00\n", "2026-12-01 00:00:00", "2026-12-02 23:59:59",
    "2026-12-01 00:00:00\n", "2026-12-1 00:00:00", "https://10.10.10.10/xxx/xxx/xxx",
    "http://example.com:8080/a", "http://h:65535", "http://h:65536", "http://h:0",
    "https://a.b/x?y=1", "https://user@h/", "https://[::1]/", "ftp://h/", "https://a b/",
    "http://", "https://-/", "https://h//x", "x" * 20, "x" * 21, "x" * 32, "x" * 33,
    "x" * 50, "x" * 51, "x" * 64, "x" * 65, "x" * 100, "x" * 101, "x" * 128, "x" * 129,
    "x" * 200, "x" * 201, "1" * 18, "1" * 19, "a.b:c-d_e",
]  # fmt: skip


def _int_values(field: FieldDescriptor) -> st.SearchStrategy[int]:
    """Each limit of the field's rules and its neighbours, a few ordinary values, the ends."""
    rules = field.GetOptions().Extensions[validate_pb2.field]
    kind = rules.WhichOneof("type")
    if kind == "repeated":
        kind = rules.repeated.items.WhichOneof("type")
    limits: set[int] = {0, 1, 2, 3, 4, 5, 9, 10, 50, 60, 100, 600}
    if kind in ("int32", "int64"):
        for _, limit in getattr(rules, kind).ListFields():
            limits |= {limit - 1, limit, limit + 1}
    if field.enum_type is not None:
        limits |= {v.number for v in field.enum_type.values} | {4, 7, 99}
    low, high = INT32_LIMITS
    if field.type == FieldDescriptor.TYPE_INT64:
        low, high = -(2**63), 2**63 - 1
    return st.sampled_from(sorted(v for v in limits | {low, high} if low <= v <= high))


def _values(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_STRING:
        return st.sampled_from(TEXTS) | st.text(max_size=6)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    return _int_values(field)


def _paths(descriptor: Descriptor, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every field below `descriptor`; repeated fields through their first two items."""
    found: list[tuple[str, ...]] = []
    for field in descriptor.fields:
        path = (*prefix, field.name)
        found.append(path)
        if field.message_type is not None and len(path) < 5:
            items = [(*path, "#0"), (*path, "#1")] if field.is_repeated else [path]
            for item in items:
                found += _paths(field.message_type, item)
    return found


CAMPAIGN_PATHS = _paths(pb.Campaign.DESCRIPTOR)


def _change(draw: st.DrawFn, message: Message, path: tuple[str, ...]) -> None:
    """Set, clear, grow or shrink the field at `path`, creating what lies on the way."""
    *parents, leaf = path
    target: Any = message
    for step in parents:
        if step.startswith("#"):
            items, index = target, int(step[1:])
            while len(items) <= index:
                items.add()
            target = items[index]
        else:
            target = getattr(target, step)
    field = target.DESCRIPTOR.fields_by_name[leaf]
    actions = ["set", "clear", "add", "drop"] if field.is_repeated else ["set", "clear"]
    action = draw(st.sampled_from(actions))
    if action == "clear":
        target.ClearField(leaf)
    elif field.is_repeated:
        items = getattr(target, leaf)
        if action == "drop" and len(items):
            del items[draw(st.integers(0, len(items) - 1))]
        elif field.message_type is None:
            items.append(draw(_values(field)))
        elif action == "add" and len(items):
            items.add().CopyFrom(items[draw(st.integers(0, len(items) - 1))])
        else:
            items.add()
    elif field.message_type is not None:
        getattr(target, leaf).SetInParent()
    else:
        setattr(target, leaf, draw(_values(field)))


@st.composite
def changed_campaigns(draw: st.DrawFn) -> campaign_service_pb2.AddCampaignRequest:
    request = add_request(draw(st.sampled_from(VALID_CAMPAIGNS)))
    for _ in range(draw(st.integers(1, 3))):
        _change(draw, request.campaign, draw(st.sampled_from(CAMPAIGN_PATHS)))
    if draw(st.integers(0, 9)) == 0:
        request.vdn_id = draw(_int_values(request.DESCRIPTOR.fields_by_name["vdn_id"]))
        request.idempotency_key = draw(st.sampled_from(TEXTS))
    return request


def _texts(message: Message) -> list[str]:
    texts: list[str] = []
    for field, value in message.ListFields():
        values = value if field.is_repeated else [value]
        for item in values:
            if isinstance(item, Message):
                texts += _texts(item)
            elif isinstance(item, str):
                texts.append(item)
    return texts


def _judged_exactly(request: campaign_service_pb2.AddCampaignRequest) -> bool:
    """True when the fast path judges every value itself: ASCII text, a plain callback URL."""
    url = request.campaign.call_back_url
    return all(t.isascii() for t in _texts(request)) and PLAIN_URL.fullmatch(url) is not None


def _assert_agrees(request: Message, exactly: bool) -> None:
    violations = protovalidate.collect_violations(request)
    vouched = vouches_for(request)
    event("valid" if not violations else "invalid")
    event("vouched for" if vouched else "left to protovalidate")
    assert not (vouched and violations), [v.proto.rule_id for v in violations]
    if exactly:
        assert vouched == (not violations), [v.proto.rule_id for v in violations]


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=changed_campaigns())
def test_changed_campaigns(request: campaign_service_pb2.AddCampaignRequest) -> None:
    _assert_agrees(request, _judged_exactly(request))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=any_fields(pb.Campaign.DESCRIPTOR))
def test_campaigns_of_any_values(values: dict[str, Any]) -> None:
    request = campaign_service_pb2.AddCampaignRequest(vdn_id=1)
    build(request.campaign, values)
    _assert_agrees(request, exactly=False)


@pytest.mark.parametrize("campaign", VALID_CAMPAIGNS, ids=lambda c: c.name)
def test_valid_campaigns_are_vouched_for(campaign: pb.Campaign) -> None:
    request = add_request(campaign)
    assert protovalidate.collect_violations(request) == []
    assert vouches_for(request)


REQUESTS = [
    *campaign_service_pb2.DESCRIPTOR.message_types_by_name.values(),
    *access_key_service_pb2.DESCRIPTOR.message_types_by_name.values(),
]


@pytest.mark.parametrize("descriptor", REQUESTS, ids=lambda d: d.name)
def test_every_message_of_the_contract_compiles(descriptor: Descriptor) -> None:
    """A rule the compiler does not know leaves its message to protovalidate alone (slower,
    still right); this says which rule, so the compiler can learn it."""
    assert fast_validation.source(descriptor)


def test_a_message_the_compiler_cannot_read_is_left_to_protovalidate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unsupported(*_args: object) -> str:
        raise Unsupported("a rule beyond the subset")

    monkeypatch.setattr(fast_validation, "translate", unsupported)
    monkeypatch.setattr(fast_validation, "_checks", {})
    request = add_request(example_campaign())
    assert not vouches_for(request)
    assert contract_problems(request) == []
    request.campaign.name = ""
    assert {p.path for p in contract_problems(request)} == {"campaign.name"}


@pytest.mark.parametrize(("items", "vouched"), [(100, True), (101, False), (100_000, False)])
def test_list_limits(items: int, vouched: bool) -> None:
    campaign = example_campaign()
    del campaign.caller_no[:]
    campaign.caller_no.extend(pb.CallerNo(access_code=str(i), priority=1) for i in range(items))
    assert vouches_for(add_request(campaign)) is vouched
