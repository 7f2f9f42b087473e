"""Every rule of the interface page, provoked over gRPC against a real server.

Each case breaks one rule of the documented example and expects the legacy
code at the offending field's path, in a `BadRequest` of an INVALID_ARGUMENT.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from isales.campaign.v2 import campaign_pb2 as pb
from isales.campaign.v2.campaign_service_pb2 import AddCampaignRequest
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from isales_campaign.config import Settings
from isales_campaign.service.server import start_server
from tests.conftest import seed_database
from tests.examples import add_request, example_campaign, ivr_campaign
from tests.rpc_errors import Failure, failure_of

Mutation = Callable[[pb.Campaign], None]

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


@pytest.fixture(scope="module")
def rules_stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CampaignServiceStub]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('rules')) / 'isales.db'}"
    seed_database(url)
    running = start_server(
        replace(Settings(), database_url=url, grpc_listen="127.0.0.1:0"), migrate=False
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    yield CampaignServiceStub(channel)
    channel.close()
    running.stop(0)


def rejected(stub: CampaignServiceStub, request: AddCampaignRequest) -> Failure:
    with pytest.raises(grpc.RpcError) as caught:
        stub.AddCampaign(request, timeout=10)
    return failure_of(caught.value)


def _set(path: str, value: object) -> Mutation:
    """A mutation that sets a (dotted) field of the campaign."""

    def mutate(campaign: pb.Campaign) -> None:
        *parents, leaf = path.split(".")
        target: object = campaign
        for name in parents:
            target = getattr(target, name)
        setattr(target, leaf, value)

    return mutate


def _clear(path: str) -> Mutation:
    def mutate(campaign: pb.Campaign) -> None:
        *parents, leaf = path.split(".")
        target: object = campaign
        for name in parents:
            target = getattr(target, name)
        target.ClearField(leaf)  # type: ignore[attr-defined]

    return mutate


def _all(*mutations: Mutation) -> Mutation:
    def mutate(campaign: pb.Campaign) -> None:
        for mutation in mutations:
            mutation(campaign)

    return mutate


def _previewed(campaign: pb.Campaign) -> None:
    campaign.device_type = pb.DEVICE_TYPE_PREVIEWED
    campaign.skill_param.out_bound_type = pb.OUT_BOUND_TYPE_PREVIEWED
    campaign.skill_param.ClearField("predict_param")
    campaign.skill_param.preview_param.CopyFrom(
        pb.PreviewParam(fail_interval=10, ob_call_count=5, auto_call_time=10)
    )


def _global_common(campaign: pb.Campaign) -> None:
    campaign.ClearField("call_policy")
    campaign.retry_policy.CopyFrom(
        pb.RetryPolicy(
            policy_type=pb.POLICY_TYPE_GLOBAL, retry_day=2, retry_times=2, call_interval=2
        )
    )


def _predict(method: int, **params: pb.AgentPredictParam) -> Mutation:
    def mutate(campaign: pb.Campaign) -> None:
        predict = campaign.skill_param.predict_param
        predict.Clear()
        predict.predict_method = method  # type: ignore[assignment]
        for name, value in params.items():
            getattr(predict, name).CopyFrom(value)

    return mutate


AGENT = pb.AgentPredictParam(
    max_avg_call_time=100, min_avg_call_time=50, loss_rate=3, util_rate=70, util_rate_method=1
)
CONNECT = pb.ConnectPredictParam(
    max_avg_call_time=100, min_avg_call_time=50, loss_rate=3, wait_time=5, conn_rate=50
)
OFFHOOK = pb.OffhookPredictParam(off_hook_rate=100)


def _busi(policy: pb.BusiPolicy) -> Mutation:
    return lambda c: c.retry_policy.busi_policy.append(policy)


def _number_policy(policy: pb.NumberTypePolicy) -> Mutation:
    def mutate(campaign: pb.Campaign) -> None:
        del campaign.retry_policy.policy_json[:]
        campaign.retry_policy.policy_json.append(policy)

    return mutate


def _result_retry(*items: pb.ResultRetry) -> Mutation:
    def mutate(campaign: pb.Campaign) -> None:
        _global_common(campaign)
        for name in ("retry_day", "retry_times", "call_interval"):
            campaign.retry_policy.ClearField(name)
        campaign.retry_policy.result_retry.extend(items)

    return mutate


def _turns(choose_type: int, *turns: pb.Turn) -> Mutation:
    def mutate(campaign: pb.Campaign) -> None:
        campaign.call_policy.choose_type = choose_type  # type: ignore[assignment]
        del campaign.call_policy.turns[:]
        campaign.call_policy.turns.extend(turns)

    return mutate


def _ivr(campaign: pb.Campaign) -> None:
    campaign.CopyFrom(ivr_campaign(campaign.name))


RR = pb.ResultRetry
C = "campaign."
SP = "campaign.skill_param."
PP = "campaign.skill_param.predict_param."
RP = "campaign.retry_policy."
SCH = "campaign.schedule_param."

# (id, mutation, path of the expected violation, its legacy code)
CASES: list[tuple[str, Mutation, str, str]] = [
    # 02000001 empty parameter, including the conditional ones
    ("name empty", _set("name", ""), C + "name", EMPTY),
    ("strBeginTime empty", _set("str_begin_time", ""), C + "str_begin_time", EMPTY),
    ("strEndTime empty", _set("str_end_time", ""), C + "str_end_time", EMPTY),
    ("deviceType missing", _set("device_type", 0), C + "device_type", EMPTY),
    ("callerNo missing", _clear("caller_no"), C + "caller_no", EMPTY),
    (
        "accessCode empty",
        lambda c: setattr(c.caller_no[0], "access_code", ""),
        C + "caller_no[0].access_code",
        EMPTY,
    ),
    (
        "callerNo priority missing",
        lambda c: c.caller_no[1].ClearField("priority"),
        C + "caller_no[1].priority",
        EMPTY,
    ),
    ("maxAlertingTime missing", _clear("max_alerting_time"), C + "max_alerting_time", EMPTY),
    ("scheduleParam missing", _clear("schedule_param"), C + "schedule_param", EMPTY),
    ("callBackUrl empty", _set("call_back_url", ""), C + "call_back_url", EMPTY),
    ("retryPolicy missing", _clear("retry_policy"), C + "retry_policy", EMPTY),
    (
        "policyType missing",
        lambda c: c.retry_policy.ClearField("policy_type"),
        RP + "policy_type",
        EMPTY,
    ),
    ("ivrParam missing for IVR", _all(_ivr, _clear("ivr_param")), C + "ivr_param", EMPTY),
    (
        "ivrParam missing for intelligent IVR",
        _all(_ivr, _set("device_type", 1), _clear("ivr_param")),
        C + "ivr_param",
        EMPTY,
    ),
    (
        "deviceSign empty",
        _all(_ivr, _set("ivr_param.device_sign", "")),
        C + "ivr_param.device_sign",
        EMPTY,
    ),
    (
        "callCount missing",
        _all(_ivr, _clear("ivr_param.call_count")),
        C + "ivr_param.call_count",
        EMPTY,
    ),
    (
        "IVR callInterval missing",
        _all(_ivr, _clear("ivr_param.call_interval")),
        C + "ivr_param.call_interval",
        EMPTY,
    ),
    ("name blank", _set("name", "   "), C + "name", EMPTY),
    ("name of ideographic spaces", _set("name", "\u3000\u00a0"), C + "name", EMPTY),
    (
        "skillName of a vertical tab",
        _set("skill_param.skill_name", "\x0b"),
        SP + "skill_name",
        EMPTY,
    ),
    ("name with a C1 control character", _set("name", "a\x85"), C + "name", CHARS),
    ("description with a C1 control", _set("description", "x\x90y"), C + "description", CHARS),
    # Invisible characters would make look-alike names.
    ("name with a zero-width space", _set("name", "a\u200bb"), C + "name", CHARS),
    ("name with a byte order mark", _set("name", "\ufeffab"), C + "name", CHARS),
    ("name with a right-to-left override", _set("name", "ab\u202e"), C + "name", CHARS),
    ("name with a line separator", _set("name", "a\u2028b"), C + "name", CHARS),
    ("name with a paragraph separator", _set("name", "a\u2029b"), C + "name", CHARS),
    (
        "description with a zero-width joiner",
        _set("description", "a\u200db"),
        C + "description",
        CHARS,
    ),
    ("skillName blank", _set("skill_param.skill_name", "\t "), SP + "skill_name", EMPTY),
    (
        "deviceSign blank",
        _all(_ivr, _set("ivr_param.device_sign", " ")),
        C + "ivr_param.device_sign",
        EMPTY,
    ),
    (
        "busiResultCode blank",
        _busi(pb.BusiPolicy(busi_result_code="  ", busi_result_policy=0)),
        RP + "busi_policy[0].busi_result_code",
        EMPTY,
    ),
    ("skillParam missing", _clear("skill_param"), C + "skill_param", EMPTY),
    (
        "skillParam missing for preempted",
        _all(_set("device_type", 6), _clear("skill_param")),
        C + "skill_param",
        EMPTY,
    ),
    ("skillId missing", _clear("skill_param.skill_id"), SP + "skill_id", EMPTY),
    ("skillName empty", _set("skill_param.skill_name", ""), SP + "skill_name", EMPTY),
    ("predictParam missing", _clear("skill_param.predict_param"), SP + "predict_param", EMPTY),
    (
        "previewParam missing",
        _all(_previewed, _clear("skill_param.preview_param")),
        SP + "preview_param",
        EMPTY,
    ),
    (
        "autoCallTime missing",
        _all(_previewed, _clear("skill_param.preview_param.auto_call_time")),
        SP + "preview_param.auto_call_time",
        EMPTY,
    ),
    ("expPredictParam missing", _predict(1), PP + "exp_predict_param", EMPTY),
    ("agentPredictParam missing", _predict(2), PP + "agent_predict_param", EMPTY),
    ("connectPredictParam missing", _predict(3), PP + "connect_predict_param", EMPTY),
    ("offhookPredictParam missing", _predict(5), PP + "offhook_predict_param", EMPTY),
    (
        "outBoundRate missing",
        _clear("skill_param.predict_param.exp_predict_param.out_bound_rate"),
        PP + "exp_predict_param.out_bound_rate",
        EMPTY,
    ),
    (
        "no workday segment",
        _all(
            _set("schedule_param.workday_begin_time1", ""),
            _set("schedule_param.workday_end_time1", ""),
        ),
        SCH + "workday_begin_time1",
        EMPTY,
    ),
    (
        "common policy without retryTimes",
        _all(_global_common, lambda c: c.retry_policy.ClearField("retry_times")),
        RP + "retry_times",
        EMPTY,
    ),
    (
        "common policy without callInterval",
        _all(_global_common, lambda c: c.retry_policy.ClearField("call_interval")),
        RP + "call_interval",
        EMPTY,
    ),
    (
        "global policy without anything",
        _all(_global_common, _clear("retry_policy.retry_day")),
        RP + "retry_day",
        EMPTY,
    ),
    (
        "number-type policy without policyJson",
        lambda c: c.retry_policy.ClearField("policy_json"),
        RP + "policy_json",
        EMPTY,
    ),
    (
        "resultRetry item incomplete",
        _result_retry(RR(result=2, call_interval=600)),
        RP + "result_retry[0].retry_number",
        EMPTY,
    ),
    (
        "number common policy missing",
        _number_policy(pb.NumberTypePolicy(data_type="SI", type=0)),
        RP + "policy_json[0].common_policy",
        EMPTY,
    ),
    (
        "number result policy missing",
        _number_policy(pb.NumberTypePolicy(data_type="SI", type=1)),
        RP + "policy_json[0].result_policy",
        EMPTY,
    ),
    (
        "number policy type missing",
        _number_policy(
            pb.NumberTypePolicy(
                data_type="SI", common_policy=pb.NumberTypeCommonPolicy(retry_day=1, retry_times=1)
            )
        ),
        RP + "policy_json[0].type",
        EMPTY,
    ),
    (
        "busiPolicy callInterval missing",
        _busi(pb.BusiPolicy(busi_result_code="A1", busi_result_policy=1)),
        RP + "busi_policy[0].call_interval",
        EMPTY,
    ),
    (
        "busiResultCode empty",
        _busi(pb.BusiPolicy(busi_result_policy=0)),
        RP + "busi_policy[0].busi_result_code",
        EMPTY,
    ),
    (
        "chooseType missing for round",
        lambda c: c.call_policy.ClearField("choose_type"),
        C + "call_policy.choose_type",
        EMPTY,
    ),
    (
        "turns missing for round",
        lambda c: c.call_policy.ClearField("turns"),
        C + "call_policy.turns",
        EMPTY,
    ),
    (
        "turnType missing by category",
        _turns(0, pb.Turn(turn_order=1)),
        C + "call_policy.turns",
        EMPTY,
    ),
    (
        "turnOrder missing by sequence",
        _turns(1, pb.Turn(turn_type="SI")),
        C + "call_policy.turns",
        EMPTY,
    ),
    # 02000002 invalid characters
    (
        "accessCode not digits",
        lambda c: setattr(c.caller_no[0], "access_code", "8888a527"),
        C + "caller_no[0].access_code",
        CHARS,
    ),
    (
        "dataType special characters",
        _number_policy(
            pb.NumberTypePolicy(
                data_type="S-I",
                type=1,
                result_policy=[
                    pb.NumberTypeResultPolicy(result=1, retry_number=1, call_interval=1)
                ],
            )
        ),
        RP + "policy_json[0].data_type",
        CHARS,
    ),
    (
        "turnType special characters",
        _turns(0, pb.Turn(turn_type="S I")),
        C + "call_policy.turns[0].turn_type",
        CHARS,
    ),
    *[
        (f"description with {ch!r}", _set("description", f"long{ch}0825"), C + "description", CHARS)
        for ch in ['"', "[", "]", "=", ";", "<", ">", "'", "&", "|", "\\", "\x01"]
    ],
    # 02000003 too long
    ("name with NUL", _set("name", "a\x00b"), C + "name", CHARS),
    ("name 33 characters", _set("name", "n" * 33), C + "name", TOO_LONG),
    ("description 201 characters", _set("description", "d" * 201), C + "description", TOO_LONG),
    (
        "accessCode 33 digits",
        lambda c: setattr(c.caller_no[0], "access_code", "1" * 33),
        C + "caller_no[0].access_code",
        TOO_LONG,
    ),
    (
        "skillName 101 characters",
        _set("skill_param.skill_name", "s" * 101),
        SP + "skill_name",
        TOO_LONG,
    ),
    (
        "deviceSign 129 characters",
        _all(_ivr, _set("ivr_param.device_sign", "x" * 129)),
        C + "ivr_param.device_sign",
        TOO_LONG,
    ),
    (
        "callBackUrl too long",
        _set("call_back_url", "https://h/" + "p" * 1020),
        C + "call_back_url",
        TOO_LONG,
    ),
    (
        "dataType 21 characters",
        _number_policy(
            pb.NumberTypePolicy(
                data_type="D" * 21,
                type=1,
                result_policy=[
                    pb.NumberTypeResultPolicy(result=1, retry_number=1, call_interval=1)
                ],
            )
        ),
        RP + "policy_json[0].data_type",
        TOO_LONG,
    ),
    (
        "turnType 21 characters",
        _turns(0, pb.Turn(turn_type="T" * 21)),
        C + "call_policy.turns[0].turn_type",
        TOO_LONG,
    ),
    (
        "busiResultCode too long",
        _busi(pb.BusiPolicy(busi_result_code="b" * 51, busi_result_policy=0)),
        RP + "busi_policy[0].busi_result_code",
        TOO_LONG,
    ),
    (
        "busiResultSubCode too long",
        _busi(
            pb.BusiPolicy(busi_result_code="b", busi_result_sub_code="s" * 51, busi_result_policy=0)
        ),
        RP + "busi_policy[0].busi_result_sub_code",
        TOO_LONG,
    ),
    # 02000004 too short
    (
        "empty noRetryPolicy code",
        _all(_global_common, lambda c: c.retry_policy.no_retry_policy.append("")),
        RP + "no_retry_policy[0]",
        TOO_SHORT,
    ),
    # 02000005 length out of range (fixed-length formats)
    (
        "segment time 9:00",
        _set("schedule_param.workday_begin_time1", "9:00"),
        SCH + "workday_begin_time1",
        LENGTH,
    ),
    # 02000007 incorrect value
    ("maxAlertingTime 4", _set("max_alerting_time", 4), C + "max_alerting_time", VALUE),
    ("maxAlertingTime 121", _set("max_alerting_time", 121), C + "max_alerting_time", VALUE),
    (
        "maxAlertingTime 8 previewed",
        _all(
            _previewed,
            _set("max_alerting_time", 8),
            _set("skill_param.preview_param.auto_call_time", 5),
        ),
        C + "max_alerting_time",
        VALUE,
    ),
    ("priority 0", _set("priority", 0), C + "priority", VALUE),
    ("priority 6", _set("priority", 6), C + "priority", VALUE),
    (
        "callerNo priority 6",
        lambda c: setattr(c.caller_no[0], "priority", 6),
        C + "caller_no[0].priority",
        VALUE,
    ),
    ("deviceType 4", _set("device_type", 4), C + "device_type", VALUE),
    ("skillId 0", _set("skill_param.skill_id", 0), SP + "skill_id", VALUE),
    ("skillId 1001", _set("skill_param.skill_id", 1001), SP + "skill_id", VALUE),
    ("outBoundType 3", _set("skill_param.out_bound_type", 3), SP + "out_bound_type", VALUE),
    (
        "predictMethod 4",
        _set("skill_param.predict_param.predict_method", 4),
        PP + "predict_method",
        VALUE,
    ),
    (
        "maxAvgCallTime 201",
        _set("skill_param.predict_param.exp_predict_param.max_avg_call_time", 201),
        PP + "exp_predict_param.max_avg_call_time",
        VALUE,
    ),
    (
        "minAvgCallTime 49",
        _set("skill_param.predict_param.exp_predict_param.min_avg_call_time", 49),
        PP + "exp_predict_param.min_avg_call_time",
        VALUE,
    ),
    (
        "minAvgCallTime above max",
        _set("skill_param.predict_param.exp_predict_param.min_avg_call_time", 150),
        PP + "exp_predict_param.min_avg_call_time",
        VALUE,
    ),
    (
        "outBoundRate 101",
        _set("skill_param.predict_param.exp_predict_param.out_bound_rate", 101),
        PP + "exp_predict_param.out_bound_rate",
        VALUE,
    ),
    (
        "agent lossRate 101",
        _predict(
            2,
            agent_predict_param=pb.AgentPredictParam(
                max_avg_call_time=100,
                min_avg_call_time=50,
                loss_rate=101,
                util_rate=70,
                util_rate_method=1,
            ),
        ),
        PP + "agent_predict_param.loss_rate",
        VALUE,
    ),
    (
        "agent utilRate -1",
        _predict(
            2,
            agent_predict_param=pb.AgentPredictParam(
                max_avg_call_time=100,
                min_avg_call_time=50,
                loss_rate=3,
                util_rate=-1,
                util_rate_method=1,
            ),
        ),
        PP + "agent_predict_param.util_rate",
        VALUE,
    ),
    (
        "agent utilRateMethod 3",
        _predict(
            2,
            agent_predict_param=pb.AgentPredictParam(
                max_avg_call_time=100,
                min_avg_call_time=50,
                loss_rate=3,
                util_rate=70,
                util_rate_method=3,
            ),
        ),
        PP + "agent_predict_param.util_rate_method",
        VALUE,
    ),
    (
        "agent min above max",
        _predict(
            2,
            agent_predict_param=pb.AgentPredictParam(
                max_avg_call_time=60,
                min_avg_call_time=70,
                loss_rate=3,
                util_rate=70,
                util_rate_method=2,
            ),
        ),
        PP + "agent_predict_param.min_avg_call_time",
        VALUE,
    ),
    (
        "connect waitTime 17",
        _predict(
            3,
            connect_predict_param=pb.ConnectPredictParam(
                max_avg_call_time=100, min_avg_call_time=50, loss_rate=3, wait_time=17, conn_rate=50
            ),
        ),
        PP + "connect_predict_param.wait_time",
        VALUE,
    ),
    (
        "connect connRate 101",
        _predict(
            3,
            connect_predict_param=pb.ConnectPredictParam(
                max_avg_call_time=100, min_avg_call_time=50, loss_rate=3, wait_time=5, conn_rate=101
            ),
        ),
        PP + "connect_predict_param.conn_rate",
        VALUE,
    ),
    (
        "connect min above max",
        _predict(
            3,
            connect_predict_param=pb.ConnectPredictParam(
                max_avg_call_time=50, min_avg_call_time=51, loss_rate=3, wait_time=5, conn_rate=1
            ),
        ),
        PP + "connect_predict_param.min_avg_call_time",
        VALUE,
    ),
    (
        "offHookRate 49",
        _predict(5, offhook_predict_param=pb.OffhookPredictParam(off_hook_rate=49)),
        PP + "offhook_predict_param.off_hook_rate",
        VALUE,
    ),
    (
        "offHookRate 201",
        _predict(5, offhook_predict_param=pb.OffhookPredictParam(off_hook_rate=201)),
        PP + "offhook_predict_param.off_hook_rate",
        VALUE,
    ),
    (
        "failInterval 2",
        _all(_previewed, _set("skill_param.preview_param.fail_interval", 2)),
        SP + "preview_param.fail_interval",
        VALUE,
    ),
    (
        "failInterval 61",
        _all(_previewed, _set("skill_param.preview_param.fail_interval", 61)),
        SP + "preview_param.fail_interval",
        VALUE,
    ),
    (
        "obCallCount 0",
        _all(_previewed, _set("skill_param.preview_param.ob_call_count", 0)),
        SP + "preview_param.ob_call_count",
        VALUE,
    ),
    (
        "autoCallTime 4",
        _all(_previewed, _set("skill_param.preview_param.auto_call_time", 4)),
        SP + "preview_param.auto_call_time",
        VALUE,
    ),
    (
        "autoCallTime above maxAlertingTime-3",
        _all(_previewed, _set("skill_param.preview_param.auto_call_time", 18)),
        SP + "preview_param.auto_call_time",
        VALUE,
    ),
    (
        "ivr callCount 101",
        _all(_ivr, _set("ivr_param.call_count", 101)),
        C + "ivr_param.call_count",
        VALUE,
    ),
    (
        "ivr callInterval 10000",
        _all(_ivr, _set("ivr_param.call_interval", 10000)),
        C + "ivr_param.call_interval",
        VALUE,
    ),
    (
        "retryDay 6",
        _all(_global_common, _set("retry_policy.retry_day", 6)),
        RP + "retry_day",
        VALUE,
    ),
    (
        "retryTimes 7",
        _all(_global_common, _set("retry_policy.retry_times", 7)),
        RP + "retry_times",
        VALUE,
    ),
    (
        "callInterval 86401",
        _all(_global_common, _set("retry_policy.call_interval", 86401)),
        RP + "call_interval",
        VALUE,
    ),
    (
        "policyType 2",
        _all(_clear("call_policy"), _set("retry_policy.policy_type", 2)),
        RP + "policy_type",
        VALUE,
    ),
    (
        "resultRetry result 10",
        _result_retry(RR(result=10, call_interval=600, retry_number=1)),
        RP + "result_retry[0].result",
        VALUE,
    ),
    (
        "resultRetry result 0",
        _result_retry(RR(result=0, call_interval=600, retry_number=1)),
        RP + "result_retry[0].result",
        VALUE,
    ),
    (
        "resultRetry retryNumber 10",
        _result_retry(RR(result=1, call_interval=600, retry_number=10)),
        RP + "result_retry[0].retry_number",
        VALUE,
    ),
    (
        "number policy result 10",
        _number_policy(
            pb.NumberTypePolicy(
                data_type="SI",
                type=1,
                result_policy=[
                    pb.NumberTypeResultPolicy(result=10, retry_number=1, call_interval=1)
                ],
            )
        ),
        RP + "policy_json[0].result_policy[0].result",
        VALUE,
    ),
    (
        "number policy callInterval 0",
        _number_policy(
            pb.NumberTypePolicy(
                data_type="SI",
                type=1,
                result_policy=[
                    pb.NumberTypeResultPolicy(result=0, retry_number=1, call_interval=0)
                ],
            )
        ),
        RP + "policy_json[0].result_policy[0].call_interval",
        VALUE,
    ),
    (
        "number common retryDay 0",
        _number_policy(
            pb.NumberTypePolicy(
                data_type="SI",
                type=0,
                common_policy=pb.NumberTypeCommonPolicy(retry_day=0, retry_times=1),
            )
        ),
        RP + "policy_json[0].common_policy.retry_day",
        VALUE,
    ),
    (
        "number common retryTimes 7",
        _number_policy(
            pb.NumberTypePolicy(
                data_type="SI",
                type=0,
                common_policy=pb.NumberTypeCommonPolicy(retry_day=1, retry_times=7),
            )
        ),
        RP + "policy_json[0].common_policy.retry_times",
        VALUE,
    ),
    (
        "number policy type 2",
        _number_policy(pb.NumberTypePolicy(data_type="SI", type=2)),
        RP + "policy_json[0].type",
        VALUE,
    ),
    (
        "busiPolicy callInterval 3601",
        _busi(pb.BusiPolicy(busi_result_code="A1", busi_result_policy=2, call_interval=3601)),
        RP + "busi_policy[0].call_interval",
        VALUE,
    ),
    (
        "busiResultPolicy 3",
        _busi(pb.BusiPolicy(busi_result_code="A1", busi_result_policy=3, call_interval=1)),
        RP + "busi_policy[0].busi_result_policy",
        VALUE,
    ),
    (
        "turnOrder 11",
        _turns(1, pb.Turn(turn_order=11)),
        C + "call_policy.turns[0].turn_order",
        VALUE,
    ),
    ("callType 2", _set("call_policy.call_type", 2), C + "call_policy.call_type", VALUE),
    ("chooseType 2", _set("call_policy.choose_type", 2), C + "call_policy.choose_type", VALUE),
    (
        "strEndTime equal to strBeginTime",
        lambda c: setattr(c, "str_end_time", c.str_begin_time),
        C + "str_end_time",
        VALUE,
    ),
    (
        "strEndTime before strBeginTime",
        _all(
            lambda c: setattr(c, "str_begin_time", c.str_begin_time[:11] + "12:00:00"),
            lambda c: setattr(c, "str_end_time", c.str_begin_time[:11] + "11:59:59"),
        ),
        C + "str_end_time",
        VALUE,
    ),
    ("callBackUrl ftp", _set("call_back_url", "ftp://10.10.10.10/x"), C + "call_back_url", VALUE),
    (
        "callBackUrl without scheme",
        _set("call_back_url", "10.10.10.10/x"),
        C + "call_back_url",
        VALUE,
    ),
    ("callBackUrl without host", _set("call_back_url", "http://"), C + "call_back_url", VALUE),
    (
        "callBackUrl with an empty host",
        _set("call_back_url", "https:///results"),
        C + "call_back_url",
        VALUE,
    ),
    (
        "callBackUrl user but no host",
        _set("call_back_url", "http://u@/x"),
        C + "call_back_url",
        VALUE,
    ),
    (
        "callBackUrl password but no host",
        _set("call_back_url", "https://user:pw@/cb"),
        C + "call_back_url",
        VALUE,
    ),
    (
        "callBackUrl port 65536",
        _set("call_back_url", "http://h:65536/x"),
        C + "call_back_url",
        VALUE,
    ),
    ("callBackUrl port only", _set("call_back_url", "http://:80/x"), C + "call_back_url", VALUE),
    ("initStatus 2", _set("init_status", 2), C + "init_status", VALUE),
    ("ccId 0", _set("cc_id", 0), C + "cc_id", VALUE),
    (
        "segment end before begin",
        _set("schedule_param.workday_end_time1", "00:00"),
        SCH + "workday_end_time1",
        VALUE,
    ),
    # 02000008 conversion errors
    (
        "segment begin 99:99",
        _set("schedule_param.workday_begin_time1", "99:99"),
        SCH + "workday_begin_time1",
        FORMAT,
    ),
    (
        "segment end 12:60",
        _set("schedule_param.workday_end_time1", "12:60"),
        SCH + "workday_end_time1",
        FORMAT,
    ),
    (
        "strBeginTime without time",
        lambda c: setattr(c, "str_begin_time", c.str_begin_time[:10]),
        C + "str_begin_time",
        FORMAT,
    ),
    (
        "strEndTime one character short",
        lambda c: setattr(c, "str_end_time", c.str_end_time[:-1]),
        C + "str_end_time",
        FORMAT,
    ),
    (
        "strBeginTime slashes",
        lambda c: setattr(c, "str_begin_time", c.str_begin_time.replace("-", "/")),
        C + "str_begin_time",
        FORMAT,
    ),
    (
        "strEndTime not a date",
        _set("str_end_time", "2099-02-30 00:00:00"),
        C + "str_end_time",
        FORMAT,
    ),
    ("strEndTime hour 24", _set("str_end_time", "2099-01-01 24:00:00"), C + "str_end_time", FORMAT),
    (
        "segment time 25:00",
        _set("schedule_param.holiday_end_time1", "25:00"),
        SCH + "holiday_end_time1",
        FORMAT,
    ),
    # 02000009 incorrect combination
    (
        "outBoundType differs from deviceType",
        _set("device_type", 6),
        SP + "out_bound_type",
        COMBINATION,
    ),
    (
        "round call with global policy",
        _all(
            _global_common,
            _set("call_policy.call_type", 1),
            _set("call_policy.choose_type", 0),
            lambda c: c.call_policy.turns.add(turn_type="SI"),
        ),
        RP + "policy_type",
        COMBINATION,
    ),
    (
        "noRetryPolicy with policyType 1",
        lambda c: c.retry_policy.no_retry_policy.append("0001"),
        RP + "no_retry_policy",
        COMBINATION,
    ),
    (
        "retryDay with policyType 1",
        _set("retry_policy.retry_day", 2),
        RP + "retry_day",
        COMBINATION,
    ),
    (
        "retryTimes with policyType 1",
        _set("retry_policy.retry_times", 2),
        RP + "retry_times",
        COMBINATION,
    ),
    (
        "callInterval with policyType 1",
        _set("retry_policy.call_interval", 2),
        RP + "call_interval",
        COMBINATION,
    ),
    (
        "resultRetry with policyType 1",
        lambda c: c.retry_policy.result_retry.append(RR(result=1, call_interval=1, retry_number=1)),
        RP + "result_retry",
        COMBINATION,
    ),
    (
        "common and result global policy",
        _all(
            _global_common,
            lambda c: c.retry_policy.result_retry.append(
                RR(result=1, call_interval=1, retry_number=1)
            ),
        ),
        RP + "result_retry",
        COMBINATION,
    ),
    (
        "policyJson with global policy",
        _all(
            _global_common,
            lambda c: c.retry_policy.policy_json.add(
                data_type="SI",
                type=0,
                common_policy=pb.NumberTypeCommonPolicy(retry_day=1, retry_times=1),
            ),
        ),
        RP + "policy_json",
        COMBINATION,
    ),
    (
        "duplicate resultRetry results",
        _result_retry(
            RR(result=2, call_interval=1, retry_number=1),
            RR(result=2, call_interval=5, retry_number=2),
        ),
        RP + "result_retry",
        COMBINATION,
    ),
    (
        "duplicate dataType",
        lambda c: c.retry_policy.policy_json.add().CopyFrom(c.retry_policy.policy_json[0]),
        RP + "policy_json",
        COMBINATION,
    ),
    (
        "common number policy with results",
        _number_policy(
            pb.NumberTypePolicy(
                data_type="SI",
                type=0,
                common_policy=pb.NumberTypeCommonPolicy(retry_day=1, retry_times=1),
                result_policy=[
                    pb.NumberTypeResultPolicy(result=1, retry_number=1, call_interval=1)
                ],
            )
        ),
        RP + "policy_json[0].result_policy",
        COMBINATION,
    ),
    (
        "result number policy with common",
        _number_policy(
            pb.NumberTypePolicy(
                data_type="SI",
                type=1,
                common_policy=pb.NumberTypeCommonPolicy(retry_day=1, retry_times=1),
                result_policy=[
                    pb.NumberTypeResultPolicy(result=1, retry_number=1, call_interval=1)
                ],
            )
        ),
        RP + "policy_json[0].common_policy",
        COMBINATION,
    ),
    (
        "duplicate number policy results",
        _number_policy(
            pb.NumberTypePolicy(
                data_type="SI",
                type=1,
                result_policy=[pb.NumberTypeResultPolicy(result=1, retry_number=1, call_interval=1)]
                * 2,
            )
        ),
        RP + "policy_json[0].result_policy",
        COMBINATION,
    ),
    (
        "ivrParam on a skill-queue campaign",
        lambda c: c.ivr_param.CopyFrom(pb.IvrParam(device_sign="1", call_count=1, call_interval=1)),
        C + "ivr_param",
        COMBINATION,
    ),
    (
        "skillParam on an IVR campaign",
        _all(_ivr, lambda c: c.skill_param.CopyFrom(example_campaign().skill_param)),
        C + "skill_param",
        COMBINATION,
    ),
    (
        "previewParam on predicted calls",
        lambda c: c.skill_param.preview_param.CopyFrom(
            pb.PreviewParam(fail_interval=10, ob_call_count=5, auto_call_time=10)
        ),
        SP + "preview_param",
        COMBINATION,
    ),
    (
        "predictParam on previewed calls",
        _all(
            _previewed,
            lambda c: c.skill_param.predict_param.CopyFrom(
                example_campaign().skill_param.predict_param
            ),
        ),
        SP + "predict_param",
        COMBINATION,
    ),
    (
        "two prediction parameter sets",
        lambda c: c.skill_param.predict_param.agent_predict_param.CopyFrom(AGENT),
        PP + "predict_method",
        COMBINATION,
    ),
    (
        "workday segments overlap",
        _all(
            _set("schedule_param.workday_begin_time2", "12:00"),
            _set("schedule_param.workday_end_time2", "13:00"),
        ),
        SCH + "workday_begin_time2",
        COMBINATION,
    ),
    (
        "holiday segments overlap",
        _all(
            _set("schedule_param.holiday_begin_time3", "16:00"),
            _set("schedule_param.holiday_end_time3", "18:00"),
        ),
        SCH + "holiday_begin_time3",
        COMBINATION,
    ),
    # 02000010 segment begin and end together
    (
        "workday begin without end",
        _set("schedule_param.workday_begin_time2", "12:00"),
        SCH + "workday_end_time2",
        PAIR,
    ),
    (
        "holiday end without begin",
        _set("schedule_param.holiday_end_time3", "20:00"),
        SCH + "holiday_begin_time3",
        PAIR,
    ),
    # 02000011 too many items
    (
        "101 calling numbers",
        lambda c: c.caller_no.extend(
            [pb.CallerNo(access_code=str(i), priority=1) for i in range(99)]
        ),
        C + "caller_no",
        TOO_MANY,
    ),
    (
        "11 turns",
        _turns(0, *[pb.Turn(turn_type=f"T{i}") for i in range(11)]),
        C + "call_policy.turns",
        TOO_MANY,
    ),
    (
        "11 resultRetry items",
        _result_retry(*[RR(result=1 + i % 9, call_interval=1, retry_number=1) for i in range(11)]),
        RP + "result_retry",
        TOO_MANY,
    ),
    (
        "101 busiPolicy items",
        lambda c: c.retry_policy.busi_policy.extend(
            [pb.BusiPolicy(busi_result_code=f"B{i}", busi_result_policy=0) for i in range(101)]
        ),
        RP + "busi_policy",
        TOO_MANY,
    ),
    (
        "101 noRetryPolicy codes",
        _all(
            _global_common,
            lambda c: c.retry_policy.no_retry_policy.extend([str(i) for i in range(101)]),
        ),
        RP + "no_retry_policy",
        TOO_MANY,
    ),
]


#: Cases whose change necessarily breaks a second rule too.
ALSO_BROKEN = {
    "outBoundType 3": {SP + "out_bound_type": {COMBINATION}, SP + "predict_param": {COMBINATION}},
    "11 resultRetry items": {RP + "result_retry": {COMBINATION}},  # only 9 results exist
}


@pytest.mark.parametrize(
    ("mutation", "path", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule_is_enforced(
    rules_stub: CampaignServiceStub,
    mutation: Mutation,
    path: str,
    code: str,
    request: pytest.FixtureRequest,
) -> None:
    campaign = example_campaign()
    mutation(campaign)
    failure = rejected(rules_stub, add_request(campaign))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    expected: dict[str, set[str]] = {path: {code}}
    for other, codes in ALSO_BROKEN.get(request.node.callspec.id, {}).items():
        expected.setdefault(other, set()).update(codes)
    assert failure.codes_by_field() == expected, failure.violations
    codes = {c for _, c, _ in failure.violations}
    assert failure.reason == (codes.pop() if len(codes) == 1 else "0200001")
    assert path in failure.message


def test_all_problems_are_reported_at_once(rules_stub: CampaignServiceStub) -> None:
    campaign = example_campaign()
    campaign.name = "n" * 33
    campaign.max_alerting_time = 200
    campaign.caller_no[0].access_code = "abc"
    campaign.skill_param.ClearField("skill_name")
    failure = rejected(rules_stub, add_request(campaign))
    assert failure.reason == "0200001"  # several kinds of problem: a parameter error
    assert failure.codes_by_field() == {
        "campaign.name": {TOO_LONG},
        "campaign.max_alerting_time": {VALUE},
        "campaign.caller_no[0].access_code": {CHARS},
        "campaign.skill_param.skill_name": {EMPTY},
    }


@pytest.mark.parametrize(
    ("mutation", "path"),
    [
        (lambda c: c.retry_policy.ClearField("policy_type"), RP + "policy_type"),
        (lambda c: c.retry_policy.policy_json[0].ClearField("type"), RP + "policy_json[0].type"),
    ],
    ids=["policyType", "policyJson type"],
)
def test_a_missing_policy_type_is_reported_alone(
    rules_stub: CampaignServiceStub, mutation: Mutation, path: str
) -> None:
    # An absent type is not type 0: no combination rule of type 0 may fire.
    campaign = example_campaign()
    mutation(campaign)
    failure = rejected(rules_stub, add_request(campaign))
    assert failure.codes_by_field() == {path: {EMPTY}}
    assert failure.reason == EMPTY


def test_vdn_id_out_of_range(rules_stub: CampaignServiceStub) -> None:
    for vdn_id in (0, 10000):
        failure = rejected(rules_stub, add_request(example_campaign(), vdn_id=vdn_id))
        assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
        assert failure.codes_by_field() == {"vdn_id": {VALUE}}


def test_missing_campaign(rules_stub: CampaignServiceStub) -> None:
    failure = rejected(rules_stub, AddCampaignRequest(vdn_id=1))
    assert failure.codes_by_field() == {"campaign": {EMPTY}}


@pytest.mark.parametrize(
    "mutation",
    [
        _previewed,
        _ivr,
        _all(_ivr, _set("device_type", 1)),
        _all(
            _set("device_type", 6),
            _set("skill_param.out_bound_type", 6),
            _clear("skill_param.predict_param"),
        ),
        _predict(2, agent_predict_param=AGENT),
        _predict(3, connect_predict_param=CONNECT),
        _predict(5, offhook_predict_param=OFFHOOK),
        _result_retry(
            RR(result=2, call_interval=600, retry_number=1),
            RR(result=9, call_interval=1, retry_number=0),
        ),
        _all(_global_common, lambda c: c.retry_policy.no_retry_policy.extend(["0001", "0002"])),
        _number_policy(
            pb.NumberTypePolicy(
                data_type="ST",
                type=0,
                common_policy=pb.NumberTypeCommonPolicy(retry_day=2, retry_times=2),
            )
        ),
        _busi(
            pb.BusiPolicy(busi_result_code="A1", busi_result_sub_code="A1-1", busi_result_policy=0)
        ),
        _busi(pb.BusiPolicy(busi_result_code="A1", busi_result_policy=1, call_interval=3600)),
        _turns(1, pb.Turn(turn_order=1), pb.Turn(turn_order=10)),
        _all(_global_common, lambda c: c.call_policy.CopyFrom(pb.CallPolicy(call_type=0))),
        _set("description", "plain text, with commas (and brackets) — ünïcode 描述"),
        _set("name", "名" * 32),
        _set("call_back_url", "http://callback.example:8080/results?x=1"),
        _set("call_back_url", "https://user:secret@callback.example"),
        _set("call_back_url", "http://[::1]:65535/results"),
        _set("init_status", 1),
        _all(
            _set("schedule_param.workday_begin_time2", "23:59"),
            _set("schedule_param.workday_end_time2", "23:59"),
            _set("schedule_param.workday_end_time1", "23:00"),
        ),
    ],
    ids=[
        "previewed",
        "automatic IVR",
        "intelligent IVR",
        "preempted",
        "agent usage prediction",
        "completion rate prediction",
        "off-hook prediction",
        "global result policy",
        "global common policy with noRetryPolicy",
        "number common policy",
        "busiPolicy stop",
        "busiPolicy with interval",
        "round by sequence",
        "sequence call with global policy",
        "description with allowed punctuation",
        "32 CJK characters",
        "http callback",
        "callback with user info",
        "callback on IPv6 with the highest port",
        "paused",
        "begin equals end is rejected elsewhere",
    ],
)
def test_valid_variants_pass_the_contract(
    rules_stub: CampaignServiceStub, mutation: Mutation, request: pytest.FixtureRequest
) -> None:
    campaign = example_campaign(name=f"variant {request.node.callspec.id}"[:32])
    mutation(campaign)
    if request.node.callspec.id == "begin equals end is rejected elsewhere":
        failure = rejected(rules_stub, add_request(campaign))
        assert failure.codes_by_field() == {"campaign.schedule_param.workday_end_time2": {VALUE}}
        return
    response = rules_stub.AddCampaign(add_request(campaign), timeout=10)
    assert response.id > 0


def test_long_lists_are_counted_not_crashed(rules_stub: CampaignServiceStub) -> None:
    campaign = example_campaign()
    first = campaign.retry_policy.policy_json[0]
    campaign.retry_policy.policy_json.extend([first] * 150)
    failure = rejected(rules_stub, add_request(campaign))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert TOO_MANY in failure.codes_by_field()["campaign.retry_policy.policy_json"]


def test_many_problems_are_counted_and_the_first_listed(
    rules_stub: CampaignServiceStub,
) -> None:
    campaign = example_campaign()
    for _ in range(60):
        campaign.caller_no.add(access_code="x" * 33, priority=9)
    failure = rejected(rules_stub, add_request(campaign))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "0200001"
    assert len(failure.violations) == 20
    assert failure.violations[0][0] == "campaign.caller_no[2].access_code"
    assert int(failure.metadata["problem_count"]) == 180  # chars, length and priority each
    assert "; and 175 more" in failure.message


def test_items_beyond_a_list_limit_are_not_validated(rules_stub: CampaignServiceStub) -> None:
    campaign = example_campaign()
    campaign.caller_no.extend([pb.CallerNo()] * 100_000)
    failure = rejected(rules_stub, add_request(campaign))
    assert failure.violations[0][:2] == ("campaign.caller_no", TOO_MANY)
    # Only the items within the limit of 100 are looked at (two problems each).
    assert int(failure.metadata["problem_count"]) == 1 + 2 * 98


def test_over_long_lists_inside_kept_items_are_reported(rules_stub: CampaignServiceStub) -> None:
    campaign = example_campaign()
    policies = campaign.retry_policy.policy_json
    policies.extend([policies[0]] * 50)
    policies[1].result_policy.extend([policies[1].result_policy[0]] * 10)
    failure = rejected(rules_stub, add_request(campaign))
    codes = failure.codes_by_field()
    assert TOO_MANY in codes[RP + "policy_json"]
    assert TOO_MANY in codes[RP + "policy_json[1].result_policy"]


def test_time_beyond_the_calendar_in_utc(rules_stub: CampaignServiceStub) -> None:
    campaign = example_campaign()
    campaign.str_end_time = "9999-12-31 23:59:59"
    # VDN 2 is in Asia/Shanghai: 0001-01-01 00:00 there is before year 1 in UTC.
    campaign.str_begin_time = "0001-01-01 00:00:00"
    failure = rejected(rules_stub, add_request(campaign, vdn_id=2))
    assert failure.codes_by_field()["campaign.str_begin_time"] == {FORMAT}
