"""The documented example campaign as a gRPC request, with its dates moved to today."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from isales.campaign.v2 import campaign_pb2 as pb
from isales.campaign.v2.campaign_service_pb2 import AddCampaignRequest


def example_campaign(name: str = "test0827shwocase1", today: date | None = None) -> pb.Campaign:
    """The interface page's example request, field for field."""
    day = today or datetime.now(UTC).date()
    return pb.Campaign(
        name=name,
        description="long0825",
        str_begin_time=f"{day.isoformat()} 00:00:00",
        str_end_time=f"{(day + timedelta(days=1)).isoformat()} 23:59:59",
        device_type=pb.DEVICE_TYPE_PREDICTED,
        caller_no=[
            pb.CallerNo(access_code="88889527", priority=3),
            pb.CallerNo(access_code="88880066", priority=4),
        ],
        max_alerting_time=20,
        priority=4,
        schedule_param=pb.ScheduleParam(
            workday_begin_time1="00:00",
            workday_end_time1="23:59",
            holiday_begin_time1="10:00",
            holiday_end_time1="11:00",
            holiday_begin_time2="13:00",
            holiday_end_time2="17:30",
        ),
        skill_param=pb.SkillParam(
            skill_id=2,
            skill_name="defaultAudioSkill",
            out_bound_type=pb.OUT_BOUND_TYPE_PREDICTED,
            predict_param=pb.PredictParam(
                predict_method=pb.PREDICT_METHOD_EMPIRICAL,
                exp_predict_param=pb.ExpPredictParam(
                    max_avg_call_time=100, min_avg_call_time=50, out_bound_rate=50
                ),
            ),
        ),
        retry_policy=pb.RetryPolicy(
            policy_type=pb.POLICY_TYPE_NUMBER_TYPE,
            policy_json=[
                pb.NumberTypePolicy(
                    data_type="SI",
                    type=pb.NUMBER_POLICY_TYPE_RESULT,
                    result_policy=[
                        pb.NumberTypeResultPolicy(result=4, retry_number=3, call_interval=600)
                    ],
                )
            ],
        ),
        call_policy=pb.CallPolicy(
            call_type=pb.CALL_TYPE_BY_ROUND,
            choose_type=pb.CHOOSE_TYPE_BY_NUMBER_CATEGORY,
            turns=[pb.Turn(turn_type="SI")],
        ),
        init_status=pb.INIT_STATUS_EXECUTING,
        call_back_url="https://10.10.10.10/xxx/xxx/xxx",
    )


def ivr_campaign(name: str = "ivr campaign", today: date | None = None) -> pb.Campaign:
    """An automatic IVR campaign with a common global retry policy."""
    campaign = example_campaign(name, today)
    campaign.device_type = pb.DEVICE_TYPE_AUTOMATIC_IVR
    campaign.ClearField("skill_param")
    campaign.ClearField("call_policy")
    campaign.ivr_param.CopyFrom(pb.IvrParam(device_sign="1001", call_count=3, call_interval=3))
    campaign.retry_policy.CopyFrom(
        pb.RetryPolicy(
            policy_type=pb.POLICY_TYPE_GLOBAL, retry_day=2, retry_times=2, call_interval=60
        )
    )
    return campaign


def add_request(campaign: pb.Campaign, vdn_id: int = 1) -> AddCampaignRequest:
    return AddCampaignRequest(vdn_id=vdn_id, campaign=campaign)
