"""A client that knows nothing but the server's address discovers the contract through
reflection, creates the documented example campaign and takes it through its lifecycle."""

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

SERVICE = "isales.campaign.v2.CampaignService"


def test_dynamic_client_takes_the_documented_example_through_its_lifecycle(
    sqlite_url: str, make_server: ServerFactory, channel_to: Callable[[int], grpc.Channel]
) -> None:
    running = make_server(sqlite_url)
    channel = channel_to(running.port)
    database = ProtoReflectionDescriptorDatabase(channel)
    assert SERVICE in database.get_services()
    service = descriptor_pool.DescriptorPool(database).FindServiceByName(SERVICE)

    def invoke(name: str, request: dict[str, Any]) -> dict[str, Any]:
        """Call a method knowing only its name; request and answer as proto JSON."""
        method = service.FindMethodByName(name)
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        call: grpc.UnaryUnaryMultiCallable[Any, Any] = channel.unary_unary(
            f"/{SERVICE}/{name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        answer = call(json_format.ParseDict(request, request_class()), timeout=10)
        return json_format.MessageToDict(answer)

    today = datetime.now(UTC).date()
    added = invoke(
        "AddCampaign",
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
    )
    assert added == {"id": "1", "status": "CAMPAIGN_STATUS_EXECUTING"}
    one = {"vdnId": 1, "campaignId": "1"}
    found = invoke("GetCampaign", one)["campaign"]
    assert (found["campaign"]["name"], found["version"]) == ("test0827shwocase1", "1")
    listed = invoke("ListCampaigns", {"vdnId": 1, "nameContains": "test0827"})
    assert [record["id"] for record in listed["campaigns"]] == ["1"]
    paused = invoke("PauseCampaign", {**one, "etag": found["etag"]})["campaign"]
    assert paused["status"] == "CAMPAIGN_STATUS_PAUSED"
    assert invoke("DeleteCampaign", {**one, "archive": True}) == {}
    history = invoke("GetCampaign", {**one, "includeArchived": True})["campaign"]
    assert "archiveTime" in history
    families = invoke("GetQuota", {"vdnId": 1})["families"]
    assert [family.get("campaigns", 0) for family in families] == [0, 0]
