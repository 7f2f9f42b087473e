"""The vendor's rules of a campaign's configuration that the contract cannot state, because
they need the tenant's zone, the clock, the deployment or the tenant's stored campaigns.
Each adds its problem to the request's list (so that one answer names them all) or raises
the refusal it is answered with."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from isales.campaign.v2.campaign_pb2 import Campaign

from isales_campaign.config import Deployment
from isales_campaign.result_codes import ResultCode
from isales_campaign.service.domain.legacy_time import parse_local_time, start_of_local_day
from isales_campaign.service.errors import (
    FieldProblem,
    InvalidArgument,
    NameTaken,
    SkillQueueNotFound,
)


def campaign_times(
    campaign: Campaign,
    zone: ZoneInfo,
    now: datetime,
    deployment: Deployment,
    problems: list[FieldProblem],
) -> tuple[datetime, datetime] | None:
    """The rules that need the tenant's zone, the clock or the deployment, their problems
    added to `problems` (the contract's): the times are real times of the zone, the begin
    time is not before today (00:00 of the zone), and the OP deployment names a call
    centre. The campaign's begin and end (naive UTC) when there are no problems in all."""
    begin = end = None
    begin_path = "campaign.str_begin_time"
    if not flagged(begin_path, problems):
        begin = time_of(campaign.str_begin_time, begin_path, zone, problems)
        if begin is not None and begin < start_of_local_day(now, zone):
            problems.append(
                FieldProblem(
                    begin_path,
                    ResultCode.RESULT_CODE_START_TIME_BEFORE_TODAY,
                    f"must not be earlier than 00:00 of the current day ({zone.key})",
                )
            )
    end_path = "campaign.str_end_time"
    if not flagged(end_path, problems):
        end = time_of(campaign.str_end_time, end_path, zone, problems)
    if deployment is Deployment.OP and not campaign.HasField("cc_id"):
        problems.append(
            FieldProblem(
                "campaign.cc_id",
                ResultCode.RESULT_CODE_EMPTY_PARAMETER,
                "is mandatory in the OP deployment",
            )
        )
    if problems or begin is None or end is None:
        return None
    return begin, end


def time_of(text: str, path: str, zone: ZoneInfo, problems: list[FieldProblem]) -> datetime | None:
    """A legacy time of the zone as naive UTC; None, with a problem added, if it is not one."""
    try:
        return parse_local_time(text, zone)
    except ValueError:
        problems.append(
            FieldProblem(
                path, ResultCode.RESULT_CODE_CONVERSION_ERROR, "is not a valid date and time"
            )
        )
        return None


def check_device_type_kept(stored: int, asked: int) -> None:
    """The device type cannot change after the campaign is created."""
    if asked != stored:
        problem = FieldProblem(
            "campaign.device_type",
            ResultCode.RESULT_CODE_INVALID_COMBINATION,
            f"cannot change after the campaign is created (it is {stored})",
        )
        raise InvalidArgument([problem])


def keep_init_status(campaign: Campaign, stored: Campaign) -> None:
    """A modification keeps the status, so the configuration keeps the initStatus it was
    added with (`stored`: the configuration before it)."""
    if stored.HasField("init_status"):
        campaign.init_status = stored.init_status
    else:
        campaign.ClearField("init_status")


def check_conflicts(
    vdn_id: int, name: str, skill_id: int | None, *, queue_exists: bool, name_taken: bool
) -> None:
    """A skill-queue campaign's queue exists in its tenant, and its name is unique among the
    tenant's live campaigns."""
    if skill_id is not None and not queue_exists:
        raise SkillQueueNotFound(vdn_id, skill_id)
    if name_taken:
        raise NameTaken(vdn_id, name)


def flagged(path: str, problems: list[FieldProblem]) -> bool:
    """Whether the field or one of its parents already has a problem."""
    return any(path == p.path or path.startswith(p.path + ".") for p in problems)
