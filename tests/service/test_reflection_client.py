"""A client that knows nothing but the server's address discovers the contract through
reflection and creates the documented example campaign."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from tests.conftest import ServerFactory


def test_dynamic_client_adds_the_documented_example(
    sqlite_url: str, make_server: ServerFactory, channel_to: Callable[[int], grpc.Channel]
) -> None:
    running = make_server(sqlite_url)
    channel = channel_to(running.port)
    database = ProtoReflectionDescriptorDatabase(channel)
    assert "isales.campaign.v2.CampaignService" in database.get_services()
    pool = descriptor_pool.DescriptorPool(database)
    method = pool.FindServiceByName("isales.campaign.v2.CampaignService").FindMethodByName(
        "AddCampaign"
    )
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    today = datetime.now(UTC).date()
    request = json_format.ParseDict(
        {
            "vdnId": 1,
            "campaign": {
                "name": "test0827shwocase1",
                "description": "long0825",
                "strBeginTime": f"{today} 00:00:00",
                "strEndTime": f"{today + timedelta(days=1)} 23:59:59",
                "deviceType": "DEVICE_TYPE_PREDICTED",
                "callerNo": [
                    {"accessCode": "88889527", "priority": 3},
                    {"accessCode": "88880066", "priority": 4},
                ],
                "maxAlertingTime": 20,
                "priority": 4,
                "scheduleParam": {
                    "workdayBeginTime1": "00:00",
                    "workdayEndTime1": "23:59",
                    "holidayBeginTime1": "10:00",
                    "holidayEndTime1": "11:00",
                    "holidayBeginTime2": "13:00",
                    "holidayEndTime2": "17:30",
                },
                "skillParam": {
                    "skillId": 2,
                    "skillName": "defaultAudioSkill",
                    "outBoundType": 2,
                    "predictParam": {
                        "predictMethod": 1,
                        "expPredictParam": {
                            "maxAvgCallTime": 100,
                            "minAvgCallTime": 50,
                            "outBoundRate": 50,
                        },
                    },
                },
                "retryPolicy": {
                    "policyType": 1,
                    "policyJson": [
                        {
                            "dataType": "SI",
                            "type": 1,
                            "resultPolicy": [{"result": 4, "retryNumber": 3, "callInterval": 600}],
                        }
                    ],
                },
                "callPolicy": {"callType": 1, "chooseType": 0, "turns": [{"turnType": "SI"}]},
                "initStatus": 0,
                "callBackUrl": "https://10.10.10.10/xxx/xxx/xxx",
            },
        },
        request_class(),
    )
    call: grpc.UnaryUnaryMultiCallable[Any, Any] = channel.unary_unary(
        "/isales.campaign.v2.CampaignService/AddCampaign",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_class.FromString,
    )
    response = call(request, timeout=10)
    assert json_format.MessageToDict(response) == {
        "id": "1",
        "status": "CAMPAIGN_STATUS_EXECUTING",
    }
