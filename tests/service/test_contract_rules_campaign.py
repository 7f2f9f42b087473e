"""The contract's rules of a campaign's own fields (name, description, times, device type,
alerting time, priority, calling numbers, callback URL, initial status, call centre) and of
the request around it, each provoked over gRPC against a real server.

Each case breaks one rule of the documented example and expects the legacy
code at the offending field's path, in a `BadRequest` of an INVALID_ARGUMENT.
"""

from __future__ import annotations

import grpc
from isales.campaign.v2 import campaign_pb2 as pb
from isales.campaign.v2.campaign_service_pb2 import AddCampaignRequest
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from tests.examples import add_request, example_campaign
from tests.service.helpers import (
    CHARS,
    EMPTY,
    FORMAT,
    TOO_LONG,
    TOO_MANY,
    VALUE,
    C,
    Mutation,
    all_of,
    clear_field,
    previewed,
    rejected,
    rule_enforcement_test,
    set_field,
)

# (id, mutation, path of the expected violation, its legacy code)
CASES: list[tuple[str, Mutation, str, str]] = [
    # 02000001 empty parameter, including the conditional ones
    ("name empty", set_field("name", ""), C + "name", EMPTY),
    ("strBeginTime empty", set_field("str_begin_time", ""), C + "str_begin_time", EMPTY),
    ("strEndTime empty", set_field("str_end_time", ""), C + "str_end_time", EMPTY),
    ("deviceType missing", set_field("device_type", 0), C + "device_type", EMPTY),
    ("callerNo missing", clear_field("caller_no"), C + "caller_no", EMPTY),
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
    ("maxAlertingTime missing", clear_field("max_alerting_time"), C + "max_alerting_time", EMPTY),
    ("callBackUrl empty", set_field("call_back_url", ""), C + "call_back_url", EMPTY),
    ("name blank", set_field("name", "   "), C + "name", EMPTY),
    ("name of ideographic spaces", set_field("name", "\u3000\u00a0"), C + "name", EMPTY),
    ("name with a C1 control character", set_field("name", "a\x85"), C + "name", CHARS),
    ("description with a C1 control", set_field("description", "x\x90y"), C + "description", CHARS),
    # Invisible characters would make look-alike names.
    ("name with a zero-width space", set_field("name", "a\u200bb"), C + "name", CHARS),
    ("name with a byte order mark", set_field("name", "\ufeffab"), C + "name", CHARS),
    ("name with a right-to-left override", set_field("name", "ab\u202e"), C + "name", CHARS),
    ("name with a line separator", set_field("name", "a\u2028b"), C + "name", CHARS),
    ("name with a paragraph separator", set_field("name", "a\u2029b"), C + "name", CHARS),
    (
        "description with a zero-width joiner",
        set_field("description", "a\u200db"),
        C + "description",
        CHARS,
    ),
    # 02000002 invalid characters
    (
        "accessCode not digits",
        lambda c: setattr(c.caller_no[0], "access_code", "8888a527"),
        C + "caller_no[0].access_code",
        CHARS,
    ),
    *[
        (
            f"description with {ch!r}",
            set_field("description", f"long{ch}0825"),
            C + "description",
            CHARS,
        )
        for ch in ['"', "[", "]", "=", ";", "<", ">", "'", "&", "|", "\\", "\x01"]
    ],
    # 02000003 too long
    ("name with NUL", set_field("name", "a\x00b"), C + "name", CHARS),
    ("name 33 characters", set_field("name", "n" * 33), C + "name", TOO_LONG),
    (
        "description 201 characters",
        set_field("description", "d" * 201),
        C + "description",
        TOO_LONG,
    ),
    (
        "accessCode 33 digits",
        lambda c: setattr(c.caller_no[0], "access_code", "1" * 33),
        C + "caller_no[0].access_code",
        TOO_LONG,
    ),
    (
        "callBackUrl too long",
        set_field("call_back_url", "https://h/" + "p" * 1020),
        C + "call_back_url",
        TOO_LONG,
    ),
    # 02000007 incorrect value
    ("maxAlertingTime 4", set_field("max_alerting_time", 4), C + "max_alerting_time", VALUE),
    ("maxAlertingTime 121", set_field("max_alerting_time", 121), C + "max_alerting_time", VALUE),
    (
        "maxAlertingTime 8 previewed",
        all_of(
            previewed,
            set_field("max_alerting_time", 8),
            set_field("skill_param.preview_param.auto_call_time", 5),
        ),
        C + "max_alerting_time",
        VALUE,
    ),
    ("priority 0", set_field("priority", 0), C + "priority", VALUE),
    ("priority 6", set_field("priority", 6), C + "priority", VALUE),
    (
        "callerNo priority 6",
        lambda c: setattr(c.caller_no[0], "priority", 6),
        C + "caller_no[0].priority",
        VALUE,
    ),
    ("deviceType 4", set_field("device_type", 4), C + "device_type", VALUE),
    (
        "strEndTime equal to strBeginTime",
        lambda c: setattr(c, "str_end_time", c.str_begin_time),
        C + "str_end_time",
        VALUE,
    ),
    (
        "strEndTime before strBeginTime",
        all_of(
            lambda c: setattr(c, "str_begin_time", c.str_begin_time[:11] + "12:00:00"),
            lambda c: setattr(c, "str_end_time", c.str_begin_time[:11] + "11:59:59"),
        ),
        C + "str_end_time",
        VALUE,
    ),
    (
        "callBackUrl ftp",
        set_field("call_back_url", "ftp://10.10.10.10/x"),
        C + "call_back_url",
        VALUE,
    ),
    (
        "callBackUrl without scheme",
        set_field("call_back_url", "10.10.10.10/x"),
        C + "call_back_url",
        VALUE,
    ),
    ("callBackUrl without host", set_field("call_back_url", "http://"), C + "call_back_url", VALUE),
    (
        "callBackUrl with an empty host",
        set_field("call_back_url", "https:///results"),
        C + "call_back_url",
        VALUE,
    ),
    (
        "callBackUrl user but no host",
        set_field("call_back_url", "http://u@/x"),
        C + "call_back_url",
        VALUE,
    ),
    (
        "callBackUrl password but no host",
        set_field("call_back_url", "https://user:pw@/cb"),
        C + "call_back_url",
        VALUE,
    ),
    (
        "callBackUrl port 65536",
        set_field("call_back_url", "http://h:65536/x"),
        C + "call_back_url",
        VALUE,
    ),
    (
        "callBackUrl port only",
        set_field("call_back_url", "http://:80/x"),
        C + "call_back_url",
        VALUE,
    ),
    ("initStatus 2", set_field("init_status", 2), C + "init_status", VALUE),
    ("ccId 0", set_field("cc_id", 0), C + "cc_id", VALUE),
    # 02000008 conversion errors
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
        set_field("str_end_time", "2099-02-30 00:00:00"),
        C + "str_end_time",
        FORMAT,
    ),
    (
        "strEndTime hour 24",
        set_field("str_end_time", "2099-01-01 24:00:00"),
        C + "str_end_time",
        FORMAT,
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
]

#: Cases whose change necessarily breaks a second rule too: none of these.
ALSO_BROKEN: dict[str, dict[str, set[str]]] = {}


test_rule_is_enforced = rule_enforcement_test(CASES, ALSO_BROKEN)


def test_vdn_id_out_of_range(rules_stub: CampaignServiceStub) -> None:
    for vdn_id in (0, 10000):
        failure = rejected(rules_stub, add_request(example_campaign(), vdn_id=vdn_id))
        assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
        assert failure.codes_by_field() == {"vdn_id": {VALUE}}


def test_missing_campaign(rules_stub: CampaignServiceStub) -> None:
    failure = rejected(rules_stub, AddCampaignRequest(vdn_id=1))
    assert failure.codes_by_field() == {"campaign": {EMPTY}}


def test_time_beyond_the_calendar_in_utc(rules_stub: CampaignServiceStub) -> None:
    campaign = example_campaign()
    campaign.str_end_time = "9999-12-31 23:59:59"
    # VDN 2 is in Asia/Shanghai: 0001-01-01 00:00 there is before year 1 in UTC.
    campaign.str_begin_time = "0001-01-01 00:00:00"
    failure = rejected(rules_stub, add_request(campaign, vdn_id=2))
    assert failure.codes_by_field()["campaign.str_begin_time"] == {FORMAT}
