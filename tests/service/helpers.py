"""What the service's tests share besides fixtures (those are in conftest.py): a client's calls
on a service whose clock the tests set by hand, the documented example broken one rule at a
time, and messages of arbitrary values drawn from the contract's descriptors."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st
from isales.campaign.v2 import campaign_pb2 as pb
from isales.campaign.v2 import campaign_service_pb2 as rpc
from isales.campaign.v2.campaign_service_pb2 import AddCampaignRequest
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub
from sqlalchemy import select

from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.schema import app_keys, skill_queues, tenants
from tests.examples import add_request, example_campaign, ivr_campaign
from tests.rpc_errors import Failure, failure_of

# -- a client's calls, on the clock of the `clock` fixture -------------------------------------

TODAY = date(2026, 11, 26)
#: The service's clock when a test starts: 10:00 UTC (VDN 1 keeps UTC; it is 18:00 of the
#: same day in VDN 2's Asia/Shanghai).
MORNING = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
#: Campaigns made by `campaign()` end at 2026-11-27 23:59:59: this is after that.
AFTER_THE_END = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)

EXECUTING = pb.CAMPAIGN_STATUS_EXECUTING
PAUSED = pb.CAMPAIGN_STATUS_PAUSED
COMPLETED = pb.CAMPAIGN_STATUS_COMPLETED
SKILL_QUEUE = rpc.CAMPAIGN_FAMILY_SKILL_QUEUE
IVR = rpc.CAMPAIGN_FAMILY_IVR

#: A seed file of one tenant (VDN 7) with a key and two skill queues.
SEED = """\
[[tenants]]
vdn_id = 7
time_zone = "Europe/Berlin"
[[tenants.app_keys]]
access_key = "ak-7"
secret_key = "sk-7"
[[tenants.skill_queues]]
id = 2
name = "defaultAudioSkill"
[[tenants.skill_queues]]
id = 3
name = "second"
"""

StubFactory = Callable[..., CampaignServiceStub]


def campaign(name: str, *, paused: bool = False, day: date = TODAY) -> pb.Campaign:
    """The documented example, running from `day` 00:00 to the next day's 23:59:59."""
    found = example_campaign(name, today=day)
    if paused:
        found.init_status = pb.INIT_STATUS_PAUSED
    return found


def add(client: CampaignServiceStub, accepted: pb.Campaign, vdn_id: int = 1) -> int:
    response = client.AddCampaign(add_request(accepted, vdn_id), timeout=10)
    assert response.id > 0
    return response.id


def get(
    client: CampaignServiceStub, campaign_id: int, vdn_id: int = 1, **options: Any
) -> rpc.CampaignRecord:
    request = rpc.GetCampaignRequest(vdn_id=vdn_id, campaign_id=campaign_id, **options)
    return client.GetCampaign(request, timeout=10).campaign


def listed(
    client: CampaignServiceStub, vdn_id: int = 1, **fields: Any
) -> rpc.ListCampaignsResponse:
    return client.ListCampaigns(rpc.ListCampaignsRequest(vdn_id=vdn_id, **fields), timeout=10)


def listed_ids(client: CampaignServiceStub, vdn_id: int = 1, **fields: Any) -> list[int]:
    response = listed(client, vdn_id, page_size=100, **fields)
    assert response.total_size == len(response.campaigns)
    return [record.id for record in response.campaigns]


def update(
    client: CampaignServiceStub, campaign_id: int, replacement: pb.Campaign, **options: Any
) -> rpc.CampaignRecord:
    request = rpc.UpdateCampaignRequest(
        vdn_id=1, campaign_id=campaign_id, campaign=replacement, **options
    )
    return client.UpdateCampaign(request, timeout=10).campaign


def pause(client: CampaignServiceStub, campaign_id: int, etag: str = "") -> rpc.CampaignRecord:
    request = rpc.PauseCampaignRequest(vdn_id=1, campaign_id=campaign_id, etag=etag)
    return client.PauseCampaign(request, timeout=10).campaign


def resume(client: CampaignServiceStub, campaign_id: int, etag: str = "") -> rpc.CampaignRecord:
    request = rpc.ResumeCampaignRequest(vdn_id=1, campaign_id=campaign_id, etag=etag)
    return client.ResumeCampaign(request, timeout=10).campaign


def delete(client: CampaignServiceStub, campaign_id: int, *, archive: bool = False) -> None:
    request = rpc.DeleteCampaignRequest(vdn_id=1, campaign_id=campaign_id, archive=archive)
    client.DeleteCampaign(request, timeout=10)


def changes(
    client: CampaignServiceStub, vdn_id: int = 1, **fields: object
) -> rpc.ListCampaignChangesResponse:
    """A page of the tenant's change history."""
    request = rpc.ListCampaignChangesRequest(vdn_id=vdn_id, **fields)  # type: ignore[arg-type]
    return client.ListCampaignChanges(request, timeout=10)


def usage(client: CampaignServiceStub, vdn_id: int = 1) -> dict[int, tuple[int, int]]:
    """(active campaigns, campaigns in all) per family, from GetQuota."""
    families = client.GetQuota(rpc.GetQuotaRequest(vdn_id=vdn_id), timeout=10).families
    return {quota.family: (quota.active_campaigns, quota.campaigns) for quota in families}


def refused(method: Callable[..., object], request: Message) -> Failure:
    """The failure a call answers; the test fails if it succeeds."""
    with pytest.raises(grpc.RpcError) as caught:
        method(request, timeout=10)
    return failure_of(caught.value)


def not_found(client: CampaignServiceStub, campaign_id: int, vdn_id: int = 1) -> bool:
    failure = refused(
        client.GetCampaign, rpc.GetCampaignRequest(vdn_id=vdn_id, campaign_id=campaign_id)
    )
    return (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "0200007")


def replacement(name: str) -> pb.Campaign:
    """A configuration differing from `campaign(name)` in several fields, one of them unset."""
    changed = campaign(name)
    changed.description = "replaced"
    changed.str_end_time = "2026-11-30 18:00:00"
    del changed.caller_no[:]
    changed.caller_no.add(access_code="12345", priority=1)
    changed.ClearField("priority")
    changed.max_alerting_time = 30
    return changed


# -- the documented example, one rule broken ---------------------------------------------------

Mutation = Callable[[pb.Campaign], None]

#: The legacy codes of the contract's rules.
EMPTY = "02000001"
CHARS = "02000002"
TOO_LONG = "02000003"
TOO_SHORT = "02000004"
LENGTH = "02000005"
VALUE = "02000007"
FORMAT = "02000008"
COMBINATION = "02000009"
PAIR = "02000010"
TOO_MANY = "02000011"

#: Paths of the fields, as a violation names them.
C = "campaign."
SP = "campaign.skill_param."
PP = "campaign.skill_param.predict_param."
RP = "campaign.retry_policy."
SCH = "campaign.schedule_param."


def rejected(stub: CampaignServiceStub, request: AddCampaignRequest) -> Failure:
    """The failure an add answers; the test fails if it succeeds."""
    return refused(stub.AddCampaign, request)


def set_field(path: str, value: object) -> Mutation:
    """A mutation that sets a (dotted) field of the campaign."""

    def mutate(campaign: pb.Campaign) -> None:
        *parents, leaf = path.split(".")
        target: object = campaign
        for name in parents:
            target = getattr(target, name)
        setattr(target, leaf, value)

    return mutate


def clear_field(path: str) -> Mutation:
    def mutate(campaign: pb.Campaign) -> None:
        *parents, leaf = path.split(".")
        target: object = campaign
        for name in parents:
            target = getattr(target, name)
        target.ClearField(leaf)  # type: ignore[attr-defined]

    return mutate


def all_of(*mutations: Mutation) -> Mutation:
    def mutate(campaign: pb.Campaign) -> None:
        for mutation in mutations:
            mutation(campaign)

    return mutate


def previewed(campaign: pb.Campaign) -> None:
    campaign.device_type = pb.DEVICE_TYPE_PREVIEWED
    campaign.skill_param.out_bound_type = pb.OUT_BOUND_TYPE_PREVIEWED
    campaign.skill_param.ClearField("predict_param")
    campaign.skill_param.preview_param.CopyFrom(
        pb.PreviewParam(fail_interval=10, ob_call_count=5, auto_call_time=10)
    )


def global_common(campaign: pb.Campaign) -> None:
    campaign.ClearField("call_policy")
    campaign.retry_policy.CopyFrom(
        pb.RetryPolicy(
            policy_type=pb.POLICY_TYPE_GLOBAL, retry_day=2, retry_times=2, call_interval=2
        )
    )


def predict(method: int, **params: pb.AgentPredictParam) -> Mutation:
    def mutate(campaign: pb.Campaign) -> None:
        prediction = campaign.skill_param.predict_param
        prediction.Clear()
        prediction.predict_method = method  # type: ignore[assignment]
        for name, value in params.items():
            getattr(prediction, name).CopyFrom(value)

    return mutate


AGENT = pb.AgentPredictParam(
    max_avg_call_time=100,
    min_avg_call_time=50,
    loss_rate=3,
    util_rate=70,
    util_rate_method=pb.UTIL_RATE_METHOD_CALL_TIME,
)
CONNECT = pb.ConnectPredictParam(
    max_avg_call_time=100, min_avg_call_time=50, loss_rate=3, wait_time=5, conn_rate=50
)
OFFHOOK = pb.OffhookPredictParam(off_hook_rate=100)


def busi(policy: pb.BusiPolicy) -> Mutation:
    return lambda c: c.retry_policy.busi_policy.append(policy)


def number_policy(policy: pb.NumberTypePolicy) -> Mutation:
    def mutate(campaign: pb.Campaign) -> None:
        del campaign.retry_policy.policy_json[:]
        campaign.retry_policy.policy_json.append(policy)

    return mutate


RR = pb.ResultRetry


def result_retry(*items: pb.ResultRetry) -> Mutation:
    def mutate(campaign: pb.Campaign) -> None:
        global_common(campaign)
        for name in ("retry_day", "retry_times", "call_interval"):
            campaign.retry_policy.ClearField(name)
        campaign.retry_policy.result_retry.extend(items)

    return mutate


def turns(choose_type: int, *items: pb.Turn) -> Mutation:
    def mutate(campaign: pb.Campaign) -> None:
        campaign.call_policy.choose_type = choose_type  # type: ignore[assignment]
        del campaign.call_policy.turns[:]
        campaign.call_policy.turns.extend(items)

    return mutate


def as_ivr(campaign: pb.Campaign) -> None:
    campaign.CopyFrom(ivr_campaign(campaign.name))


# -- messages of arbitrary values --------------------------------------------------------------

_INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
_INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def any_scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    """Any value of the field's type (enums: any int32, a defined value or not)."""
    if field.type == FieldDescriptor.TYPE_STRING:
        return st.text(max_size=40)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64):
        return _INT64
    return _INT32  # int32 and enums, defined values or not


def any_fields(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Some fields of `descriptor`, each with any value of its type (for `build`)."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.message_type is not None:
            if depth >= 3:
                continue
            value = any_fields(field.message_type, depth + 1)
        else:
            value = any_scalar(field)
        fields[field.name] = st.lists(value, max_size=3) if field.is_repeated else value
    return st.fixed_dictionaries({}, optional=fields)


def build(message: Any, values: dict[str, Any]) -> None:
    """Set the fields of `message` that `any_fields` drew."""
    for name, value in values.items():
        field = message.DESCRIPTOR.fields_by_name[name]
        if field.message_type is not None:
            if field.is_repeated:
                for item in value:
                    build(getattr(message, name).add(), item)
            else:
                build(getattr(message, name), value)
                getattr(message, name).SetInParent()
        elif field.is_repeated:
            getattr(message, name).extend(value)
        else:
            setattr(message, name, value)


def rule_enforcement_test(
    cases: Sequence[tuple[str, Mutation, str, str]],
    also_broken: Mapping[str, dict[str, set[str]]],
) -> Callable[..., None]:
    """`test_rule_is_enforced` of a table of cases (name, mutation, field path, legacy code):
    one test per case, named by it, that `assert_rule_enforced`."""

    @pytest.mark.parametrize(
        ("mutation", "path", "code"), [c[1:] for c in cases], ids=[c[0] for c in cases]
    )
    def test_rule_is_enforced(
        rules_stub: CampaignServiceStub,
        mutation: Mutation,
        path: str,
        code: str,
        request: pytest.FixtureRequest,
    ) -> None:
        broken = also_broken.get(request.node.callspec.id, {})
        assert_rule_enforced(rules_stub, mutation, path, code, broken)

    return test_rule_is_enforced


def assert_rule_enforced(
    stub: CampaignServiceStub,
    mutation: Mutation,
    path: str,
    code: str,
    also_broken: dict[str, set[str]],
) -> None:
    """An add of the example changed by `mutation` is refused for `path` with `code` (and
    for the fields of `also_broken`, which the change necessarily breaks too), naming it."""
    campaign = example_campaign()
    mutation(campaign)
    failure = rejected(stub, add_request(campaign))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    expected: dict[str, set[str]] = {path: {code}}
    for other, codes in also_broken.items():
        expected.setdefault(other, set()).update(codes)
    assert failure.codes_by_field() == expected, failure.violations
    codes = {c for _, c, _ in failure.violations}
    assert failure.reason == (codes.pop() if len(codes) == 1 else "0200001")
    assert path in failure.message


def seeded_rows(url: str) -> dict[str, set[tuple[Any, ...]]]:
    """What seeding writes: every row of the tenants, app keys and skill queues tables."""
    engine = create_database_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            return {
                table.name: set(connection.execute(select(table)).all())
                for table in (tenants, app_keys, skill_queues)
            }
    finally:
        engine.dispose()
