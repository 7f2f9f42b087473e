"""The OpenAPI document: every operation of the route table, its parameters and their rules,
examples that work, the result codes. (Its responses: test_answers.)"""

from __future__ import annotations

import re
from typing import Any

import httpx

from isales_campaign.gateway import openapi
from isales_campaign.gateway.operations import OPERATIONS
from isales_campaign.legacy import paths
from isales_campaign.result_codes import ResultCode, legacy_code
from tests.gateway.conftest import Stack, example_body
from tests.gateway.helpers import added, listed, modified, ok, refused


def test_openapi_document(stack: Stack) -> None:
    response = httpx.get(stack.base_url + "/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    operation = document["paths"]["/rest/isales/v2/openapi/campaigns/{vdnId}"]["post"]
    assert {"200", "401", "413", "415", "503"} <= set(operation["responses"])
    schemas = document["components"]["schemas"]
    assert set(example_body()) <= set(schemas["Campaign"]["properties"])
    assert schemas["RetryPolicy"]["properties"]["policyJson"]["type"] == "string"
    envelope = schemas["Envelope"]
    codes = set(envelope["properties"]["resultCode"]["enum"])
    # Every code of the contract, the success included, is documented.
    numbers = [v.number for v in ResultCode.DESCRIPTOR.values if v.number]
    assert codes == {legacy_code(ResultCode.ValueType(n)) for n in numbers}
    # Every operation of the route table is documented, with its method.
    documented = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    assert {(op.path, op.method) for op in OPERATIONS} <= documented
    # Real answers fit the schema.
    for body in (example_body(), {**example_body(), "priority": 9}):
        answer = stack.post(body).json()
        assert set(envelope["required"]) <= set(answer) <= set(envelope["properties"])
        assert answer["resultCode"] in codes
    for code in ["0200000", "0200001", "0200006", "0200017", "02000006", "02000011"]:
        assert code in codes
        assert f"`{code}`" in document["info"]["description"]


def test_each_operation_with_a_body_shows_an_example_that_works(stack: Stack) -> None:
    """The add example is the interface page's (dated in the past: refused 0200002 as it is,
    accepted dated today); delete's example archives."""
    document = httpx.get(stack.base_url + "/openapi.json").json()
    with_bodies = {
        (path, method): spec["requestBody"]["content"]["application/json"]["example"]
        for path, item in document["paths"].items()
        for method, spec in item.items()
        if "requestBody" in spec
    }
    add = with_bodies.pop((paths.ADD, "post"))
    assert with_bodies.pop((paths.MODIFY, "put")) == add
    assert with_bodies == {(paths.ONE, "delete"): {"archiveHistory": 1}}
    assert stack.post(add).json()["resultCode"] == "0200002"  # the page's date is past
    dated = {**add, **{k: v for k, v in example_body().items() if k.startswith("str")}}
    assert stack.post(dated).json()["resultCode"] == "0200000"
    answer = document["paths"][paths.ADD]["post"]["responses"]["200"]["content"]
    assert answer["application/json"]["example"]["returnObject"] == {"id": 46}


def test_openapi_lists_every_operation(stack: Stack) -> None:
    response = httpx.get(stack.base_url + "/openapi.json", timeout=30)
    assert response.status_code == 200
    documented = response.json()["paths"]
    for operation in OPERATIONS:
        assert operation.path in documented, operation.path
        described = documented[operation.path].get(operation.method.lower())
        assert described is not None, (operation.method, operation.path)
        assert described["operationId"] == operation.operation_id
    vendor_paths = {path for path in documented if path.startswith("/rest/")}
    assert vendor_paths == {operation.path for operation in OPERATIONS}
    methods = {
        (path, method.upper())
        for path in vendor_paths
        for method in documented[path]
        if method in ("get", "put", "post", "delete", "patch")
    }
    assert methods == {(operation.path, operation.method) for operation in OPERATIONS}


def test_every_field_outside_the_body_is_a_documented_parameter() -> None:
    """An error names such a field by its legacy name: the one the OpenAPI document lists,
    in the path, the query or a header."""
    documented = openapi.document()["paths"]
    for operation in OPERATIONS:
        described = documented[operation.path][operation.method.lower()]
        names = {parameter["name"] for parameter in described["parameters"]}
        assert set(operation.legacy_names().values()) <= names, operation.operation_id
    listing = next(o for o in OPERATIONS if o.operation_id == "listCampaigns")
    assert listing.legacy_names()["page_size"] == "rowsPerPage"
    assert listing.legacy_names()["skip"] == "curPage"


def test_the_lists_documented_rules_are_those_it_answers_by(stack: Stack) -> None:
    """The document reads the query parameters' rules from the contract: the gateway and
    the service refuse exactly beyond them."""
    document = httpx.get(stack.base_url + "/openapi.json").json()
    listing = document["paths"][paths.LIST]["get"]
    schemas = {parameter["name"]: parameter["schema"] for parameter in listing["parameters"]}
    client = stack.client(1)

    rows = schemas["rowsPerPage"]
    assert listed(client, 1)["rowsPerPage"] == rows["default"]
    assert listed(client, 1, rowsPerPage=rows["maximum"])["rowsPerPage"] == rows["maximum"]
    for beyond in (rows["maximum"] + 1, rows["minimum"] - 1):
        refused(client.list_campaigns(1, rowsPerPage=beyond), "02000007", "rowsPerPage")

    longest = schemas["name"]["maxLength"]
    listed(client, 1, name="n" * longest)
    refused(client.list_campaigns(1, name="n" * (longest + 1)), "02000003", "name")

    for name in ("beginTime", "endTime"):
        pattern = re.compile(schemas[name]["pattern"])
        time, date = "2026-01-01 00:00:00", "2026-01-01"
        assert pattern.fullmatch(time)
        assert not pattern.fullmatch(date)
        listed(client, 1, **{name: time})
        refused(client.list_campaigns(1, **{name: date}), "02000008", name)

    listed(client, 1, ccId=schemas["ccId"]["minimum"])
    refused(client.list_campaigns(1, ccId=schemas["ccId"]["minimum"] - 1), "02000007", "ccId")

    for name in ("status", "deviceType"):
        allowed = schemas[name]["enum"]
        for value in allowed:
            listed(client, 1, **{name: value})
        unknown = next(n for n in range(max(allowed) + 2) if n not in allowed)
        refused(client.list_campaigns(1, **{name: unknown}), "02000007", name)


def _history(document: dict[str, Any]) -> dict[str, Any]:
    described: dict[str, Any] = document["paths"][paths.CHANGES]["get"]
    return described


def test_the_history_is_documented_as_this_gateways_extension(stack: Stack) -> None:
    document = httpx.get(stack.base_url + "/openapi.json").json()
    history = _history(document)
    assert history[openapi.EXTENSION_MARK] is True
    assert history["tags"] == [openapi.EXTENSION_TAG]
    assert "the vendor's API has no such operation" in history["description"]
    assert openapi.EXTENSION_TAG in {tag["name"] for tag in document["tags"]}
    vendors = [
        spec
        for path, item in document["paths"].items()
        if path.startswith("/rest/")
        for spec in item.values()
        if spec is not history
    ]
    assert len(vendors) == len(OPERATIONS) - 1
    assert not [spec for spec in vendors if openapi.EXTENSION_MARK in spec or "tags" in spec]

    # A real answer has the documented fields beside the envelope's, its records theirs.
    envelope, fields = history["responses"]["200"]["content"]["application/json"]["schema"]["allOf"]
    assert envelope == {"$ref": "#/components/schemas/Envelope"}
    client = stack.client(1)
    body = example_body()
    campaign_id = added(client, 1, body)
    ok(client.update_campaign(1, campaign_id, modified(body, lambda b: b.update(priority=5))))
    page = ok(client.list_campaign_changes(1, campaign_id))
    required = document["components"]["schemas"]["Envelope"]["required"]
    assert set(page) == {*required, *fields["properties"]}
    record = fields["properties"]["data"]["items"]["properties"]
    assert len(page["data"]) == 2
    for row in page["data"]:
        assert set(row) == set(record)
        assert set(row["actor"]) == set(record["actor"]["properties"])
        assert row["kind"] in record["kind"]["enum"]
        assert row["status"] in record["status"]["enum"]
        assert re.fullmatch(record["changeTime"]["pattern"], row["changeTime"])
    assert page["data"][1]["changedFields"] == ["priority"]


def test_the_historys_documented_rules_are_those_it_answers_by(
    stack: Stack, executing: int
) -> None:
    document = httpx.get(stack.base_url + "/openapi.json").json()
    schemas = {p["name"]: p["schema"] for p in _history(document)["parameters"]}
    rows, after = schemas["rowsPerPage"], schemas["afterSequence"]
    client = stack.client(1)

    page = ok(client.list_campaign_changes(1, executing))
    assert (page["rowsPerPage"], page["afterSequence"]) == (rows["default"], after["default"])
    page = ok(client.list_campaign_changes(1, executing, rowsPerPage=rows["maximum"]))
    assert page["rowsPerPage"] == rows["maximum"]
    for beyond in (rows["maximum"] + 1, rows["minimum"] - 1):
        answer = client.list_campaign_changes(1, executing, rowsPerPage=beyond)
        refused(answer, "02000007", "rowsPerPage")

    assert after["format"] == "int64"
    ok(client.list_campaign_changes(1, executing, afterSequence=2**63 - 1))
    ok(client.list_campaign_changes(1, executing, afterSequence=after["minimum"]))
    answer = client.list_campaign_changes(1, executing, afterSequence=after["minimum"] - 1)
    refused(answer, "02000007", "afterSequence")
