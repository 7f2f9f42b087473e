# The cases build deliberately invalid messages (enum numbers out of range, as plain ints).
"""The contract's rules of how a campaign dials: its skill queue and its prediction or
preview parameters, or its IVR, each provoked over gRPC against a real server.

Each case breaks one rule of the documented example and expects the legacy
code at the offending field's path, in a `BadRequest` of an INVALID_ARGUMENT.
"""

from __future__ import annotations

from isales.campaign.v2 import campaign_pb2 as pb

from tests.examples import example_campaign
from tests.service.helpers import (
    AGENT,
    COMBINATION,
    EMPTY,
    PP,
    SP,
    TOO_LONG,
    VALUE,
    C,
    Mutation,
    all_of,
    as_ivr,
    clear_field,
    predict,
    previewed,
    rule_enforcement_test,
    set_field,
)

# (id, mutation, path of the expected violation, its legacy code)
CASES: list[tuple[str, Mutation, str, str]] = [
    # 02000001 empty parameter, including the conditional ones
    ("ivrParam missing for IVR", all_of(as_ivr, clear_field("ivr_param")), C + "ivr_param", EMPTY),
    (
        "ivrParam missing for intelligent IVR",
        all_of(as_ivr, set_field("device_type", 1), clear_field("ivr_param")),
        C + "ivr_param",
        EMPTY,
    ),
    (
        "deviceSign empty",
        all_of(as_ivr, set_field("ivr_param.device_sign", "")),
        C + "ivr_param.device_sign",
        EMPTY,
    ),
    (
        "callCount missing",
        all_of(as_ivr, clear_field("ivr_param.call_count")),
        C + "ivr_param.call_count",
        EMPTY,
    ),
    (
        "IVR callInterval missing",
        all_of(as_ivr, clear_field("ivr_param.call_interval")),
        C + "ivr_param.call_interval",
        EMPTY,
    ),
    (
        "skillName of a vertical tab",
        set_field("skill_param.skill_name", "\x0b"),
        SP + "skill_name",
        EMPTY,
    ),
    ("skillName blank", set_field("skill_param.skill_name", "\t "), SP + "skill_name", EMPTY),
    (
        "deviceSign blank",
        all_of(as_ivr, set_field("ivr_param.device_sign", " ")),
        C + "ivr_param.device_sign",
        EMPTY,
    ),
    ("skillParam missing", clear_field("skill_param"), C + "skill_param", EMPTY),
    (
        "skillParam missing for preempted",
        all_of(set_field("device_type", 6), clear_field("skill_param")),
        C + "skill_param",
        EMPTY,
    ),
    ("skillId missing", clear_field("skill_param.skill_id"), SP + "skill_id", EMPTY),
    ("skillName empty", set_field("skill_param.skill_name", ""), SP + "skill_name", EMPTY),
    ("predictParam missing", clear_field("skill_param.predict_param"), SP + "predict_param", EMPTY),
    (
        "previewParam missing",
        all_of(previewed, clear_field("skill_param.preview_param")),
        SP + "preview_param",
        EMPTY,
    ),
    (
        "autoCallTime missing",
        all_of(previewed, clear_field("skill_param.preview_param.auto_call_time")),
        SP + "preview_param.auto_call_time",
        EMPTY,
    ),
    ("expPredictParam missing", predict(1), PP + "exp_predict_param", EMPTY),
    ("agentPredictParam missing", predict(2), PP + "agent_predict_param", EMPTY),
    ("connectPredictParam missing", predict(3), PP + "connect_predict_param", EMPTY),
    ("offhookPredictParam missing", predict(5), PP + "offhook_predict_param", EMPTY),
    (
        "outBoundRate missing",
        clear_field("skill_param.predict_param.exp_predict_param.out_bound_rate"),
        PP + "exp_predict_param.out_bound_rate",
        EMPTY,
    ),
    # 02000003 too long
    (
        "skillName 101 characters",
        set_field("skill_param.skill_name", "s" * 101),
        SP + "skill_name",
        TOO_LONG,
    ),
    (
        "deviceSign 129 characters",
        all_of(as_ivr, set_field("ivr_param.device_sign", "x" * 129)),
        C + "ivr_param.device_sign",
        TOO_LONG,
    ),
    # 02000007 incorrect value
    ("skillId 0", set_field("skill_param.skill_id", 0), SP + "skill_id", VALUE),
    ("skillId 1001", set_field("skill_param.skill_id", 1001), SP + "skill_id", VALUE),
    ("outBoundType 3", set_field("skill_param.out_bound_type", 3), SP + "out_bound_type", VALUE),
    (
        "predictMethod 4",
        set_field("skill_param.predict_param.predict_method", 4),
        PP + "predict_method",
        VALUE,
    ),
    (
        "maxAvgCallTime 201",
        set_field("skill_param.predict_param.exp_predict_param.max_avg_call_time", 201),
        PP + "exp_predict_param.max_avg_call_time",
        VALUE,
    ),
    (
        "minAvgCallTime 49",
        set_field("skill_param.predict_param.exp_predict_param.min_avg_call_time", 49),
        PP + "exp_predict_param.min_avg_call_time",
        VALUE,
    ),
    (
        "minAvgCallTime above max",
        set_field("skill_param.predict_param.exp_predict_param.min_avg_call_time", 150),
        PP + "exp_predict_param.min_avg_call_time",
        VALUE,
    ),
    (
        "outBoundRate 101",
        set_field("skill_param.predict_param.exp_predict_param.out_bound_rate", 101),
        PP + "exp_predict_param.out_bound_rate",
        VALUE,
    ),
    (
        "agent lossRate 101",
        predict(
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
        predict(
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
        predict(
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
        predict(
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
        predict(
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
        predict(
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
        predict(
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
        predict(5, offhook_predict_param=pb.OffhookPredictParam(off_hook_rate=49)),
        PP + "offhook_predict_param.off_hook_rate",
        VALUE,
    ),
    (
        "offHookRate 201",
        predict(5, offhook_predict_param=pb.OffhookPredictParam(off_hook_rate=201)),
        PP + "offhook_predict_param.off_hook_rate",
        VALUE,
    ),
    (
        "failInterval 2",
        all_of(previewed, set_field("skill_param.preview_param.fail_interval", 2)),
        SP + "preview_param.fail_interval",
        VALUE,
    ),
    (
        "failInterval 61",
        all_of(previewed, set_field("skill_param.preview_param.fail_interval", 61)),
        SP + "preview_param.fail_interval",
        VALUE,
    ),
    (
        "obCallCount 0",
        all_of(previewed, set_field("skill_param.preview_param.ob_call_count", 0)),
        SP + "preview_param.ob_call_count",
        VALUE,
    ),
    (
        "autoCallTime 4",
        all_of(previewed, set_field("skill_param.preview_param.auto_call_time", 4)),
        SP + "preview_param.auto_call_time",
        VALUE,
    ),
    (
        "autoCallTime above maxAlertingTime-3",
        all_of(previewed, set_field("skill_param.preview_param.auto_call_time", 18)),
        SP + "preview_param.auto_call_time",
        VALUE,
    ),
    (
        "ivr callCount 101",
        all_of(as_ivr, set_field("ivr_param.call_count", 101)),
        C + "ivr_param.call_count",
        VALUE,
    ),
    (
        "ivr callInterval 10000",
        all_of(as_ivr, set_field("ivr_param.call_interval", 10000)),
        C + "ivr_param.call_interval",
        VALUE,
    ),
    # 02000009 incorrect combination
    (
        "outBoundType differs from deviceType",
        set_field("device_type", 6),
        SP + "out_bound_type",
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
        all_of(as_ivr, lambda c: c.skill_param.CopyFrom(example_campaign().skill_param)),
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
        all_of(
            previewed,
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
]

#: Cases whose change necessarily breaks a second rule too.
ALSO_BROKEN = {
    "outBoundType 3": {SP + "out_bound_type": {COMBINATION}, SP + "predict_param": {COMBINATION}},
}


test_rule_is_enforced = rule_enforcement_test(CASES, ALSO_BROKEN)
