"""The OpenAPI 3.1 document of the REST surface: its paths from the route table
(`operations.OPERATIONS`), their responses from the table of answers (`answers.ANSWERS`),
the request schema and the query parameters' rules derived from the contract."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import orjson
from buf.validate import validate_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from isales.campaign.v2 import campaign_pb2

from isales_campaign import __version__
from isales_campaign.gateway import answers
from isales_campaign.gateway.examples import example
from isales_campaign.gateway.legacy_json import is_json_string, legacy_key
from isales_campaign.gateway.operations import OPERATIONS
from isales_campaign.gateway.pipeline import Operation, QueryParameter
from isales_campaign.ids import MAX_VDN_ID, MIN_VDN_ID
from isales_campaign.legacy.wire import IDEMPOTENCY_KEY_HEADER
from isales_campaign.logs import REQUEST_ID_HEADER
from isales_campaign.result_codes import ResultCode, legacy_code

#: The meaning of each legacy code, as the vendor documents it, plus the gateway's own uses.
CODE_MEANINGS: dict[int, str] = {
    ResultCode.RESULT_CODE_SUCCESS: "Success.",
    ResultCode.RESULT_CODE_PARAMETER_ERROR: "Parameter error; resultDesc lists every problem "
    "with its own code.",
    ResultCode.RESULT_CODE_START_TIME_BEFORE_TODAY: "strBeginTime is earlier than 00:00 of the "
    "current day (tenant's time zone).",
    ResultCode.RESULT_CODE_SKILL_QUEUE_CAMPAIGN_LIMIT: "Too many skill-queue campaigns.",
    ResultCode.RESULT_CODE_IVR_CAMPAIGN_LIMIT: "Too many IVR campaigns.",
    ResultCode.RESULT_CODE_NAME_NOT_UNIQUE: "The campaign name is already used in this VDN.",
    ResultCode.RESULT_CODE_DATABASE_ERROR: "Database operation error or service unavailable.",
    ResultCode.RESULT_CODE_CAMPAIGN_NOT_FOUND: "The campaign does not exist in this VDN "
    "(unknown, deleted, archived, or another tenant's).",
    ResultCode.RESULT_CODE_CAMPAIGN_STARTED: "The campaign is still started (executing): "
    "suspend it before deleting it.",
    ResultCode.RESULT_CODE_STATUS_CONFLICT: "The current status does not allow it: suspend "
    "needs an executing campaign, resume a suspended one.",
    ResultCode.RESULT_CODE_CAMPAIGN_ENDED: "The campaign has already ended: it cannot be modified.",
    ResultCode.RESULT_CODE_SKILL_QUEUE_NOT_FOUND: "The skill queue does not exist.",
    ResultCode.RESULT_CODE_EMPTY_PARAMETER: "Empty (missing) parameter.",
    ResultCode.RESULT_CODE_INVALID_CHARACTERS: "The parameter contains invalid characters.",
    ResultCode.RESULT_CODE_TOO_LONG: "The parameter is longer than the maximum length.",
    ResultCode.RESULT_CODE_TOO_SHORT: "The parameter is shorter than the minimum length.",
    ResultCode.RESULT_CODE_LENGTH_OUT_OF_RANGE: "The parameter length is outside the range.",
    ResultCode.RESULT_CODE_WRONG_TYPE: "Incorrect parameter type (a JSON value of the wrong "
    "type); also a body that is not a JSON object or not valid JSON.",
    ResultCode.RESULT_CODE_INVALID_VALUE: "Incorrect parameter value (range, enum, vdnId, "
    "integer beyond 32 bits).",
    ResultCode.RESULT_CODE_CONVERSION_ERROR: "Conversion error: unparseable JSON in "
    "resultRetry/policyJson/busiPolicy, a non-integer string inside them, a bad date.",
    ResultCode.RESULT_CODE_INVALID_COMBINATION: "Incorrect parameter combination.",
    ResultCode.RESULT_CODE_INCOMPLETE_TIME_PAIR: "Begin and end of a time segment must be set "
    "together.",
    ResultCode.RESULT_CODE_TOO_MANY_ITEMS: "Too many items in a list parameter.",
}

#: The tag of this gateway's own operations, and the mark each carries.
EXTENSION_TAG = "gateway extension"
EXTENSION_MARK = "x-isales-extension"

_AUTH = (
    "auth-v2 AK/SK signature: `auth-v2/{AK}/{timestamp}/{signedHeaders}/{signature}`; "
    "timestamp `yyyy-MM-ddTHH:mm:ssZ` (or with `.SSS`), at most 15 minutes (configurable) "
    "from the server clock; signedHeaders must include `host`. See `isales sign`."
)


def documented_codes() -> list[str]:
    return [legacy_code(ResultCode.ValueType(number)) for number in CODE_MEANINGS]


@cache
def document_bytes() -> bytes:
    return orjson.dumps(document())


def document() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    _message_schema(campaign_pb2.Campaign.DESCRIPTOR, schemas)
    schemas["Envelope"] = _envelope_schema()
    code_table = "\n".join(
        f"- `{code}`: {text}{_statuses_of(code)}"
        for code, text in zip(documented_codes(), CODE_MEANINGS.values(), strict=True)
    )
    paths: dict[str, dict[str, Any]] = {}
    for operation in OPERATIONS:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(operation)
    paths["/openapi.json"] = _unsecured("openapi", answers.SERVED, "This document.")
    paths["/healthz"] = _unsecured("healthz", answers.SERVED, "The gateway process lives.")
    paths["/readyz"] = _unsecured(
        "readyz",
        answers.READY,
        f"The campaign service answers and is SERVING (otherwise {answers.NOT_READY.status}).",
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "iSales outbound campaigns (legacy REST gateway)",
            "version": __version__,
            "description": "The vendor's legacy calls, served by translating them to gRPC, "
            f"and this gateway's own extensions (tagged `{EXTENSION_TAG}`, marked "
            f"`{EXTENSION_MARK}`).\n\nResult codes:\n" + code_table,
        },
        "tags": [
            {
                "name": EXTENSION_TAG,
                "description": "Operations of this gateway that the vendor's API does not have, "
                "in the vendor's style (auth-v2, the envelope, its codes).",
            }
        ],
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "authV2": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": _AUTH,
                }
            },
        },
        "security": [{"authV2": []}],
        "paths": paths,
    }


_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}
_VDN_ID = {
    "name": "vdnId",
    "in": "path",
    "required": True,
    "description": f"VDN ID, {MIN_VDN_ID}-{MAX_VDN_ID} (otherwise 02000007). The access key "
    f"must belong to it (otherwise {answers.UNAUTHORIZED.status}).",
    "schema": {"type": "integer", "minimum": MIN_VDN_ID, "maximum": MAX_VDN_ID},
}
_CAMPAIGN_ID = {
    "name": "campaignId",
    "in": "path",
    "required": True,
    "description": "The campaign's id (otherwise 02000007); 0200007 when the VDN has no such "
    "campaign.",
    "schema": {"type": "integer", "format": "int64", "minimum": 1},
}
_REQUEST_ID = {
    "name": REQUEST_ID_HEADER,
    "in": "header",
    "required": False,
    "description": "Echoed in the response; generated when absent.",
    "schema": {"type": "string", "maxLength": 128},
}
_IDEMPOTENCY_KEY = {
    "name": IDEMPOTENCY_KEY_HEADER,
    "in": "header",
    "required": False,
    "description": "Makes a re-signed retry safe: the same key with the same body answers the "
    "first add again; with another body it is refused (02000009). Letters, digits and "
    "`-_.:`, at most 64. Without it, the same signed request sent again is answered so.",
    "schema": {"type": "string", "maxLength": 64, "pattern": "^[A-Za-z0-9._:-]+$"},
}
_DELETE_BODY = {
    "type": "object",
    "properties": {
        "archiveHistory": {
            "type": "integer",
            "enum": [0, 1],
            "description": "0 (default): delete; 1: move to the history.",
        }
    },
}


def _operation(operation: Operation) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [_VDN_ID]
    if "{campaignId}" in operation.path:
        parameters.append(_CAMPAIGN_ID)
    parameters += [
        _query_parameter(name, parameter, operation.request)
        for name, parameter in operation.query.items()
    ]
    parameters.append(_REQUEST_ID)
    if "idempotency_key" in operation.parameters:
        parameters.append(_IDEMPOTENCY_KEY)
    spec: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "parameters": parameters,
        "responses": _responses(operation),
    }
    if operation.body != "none":
        required = operation.body == "required"
        schema = {"$ref": "#/components/schemas/Campaign"} if required else _DELETE_BODY
        body_example = example("add-campaign-request") if required else {"archiveHistory": 1}
        spec["requestBody"] = {
            "required": required,
            "content": {"application/json": {"schema": schema, "example": body_example}},
        }
    if operation.answer_schema is not None:
        answer = {"allOf": [_ERROR["application/json"]["schema"], operation.answer_schema]}
        spec["responses"][str(answers.SUCCESS.status)]["content"] = {
            "application/json": {"schema": answer}
        }
    if operation.extension:
        spec["tags"] = [EXTENSION_TAG]
        spec[EXTENSION_MARK] = True
        spec["description"] = "This gateway's extension: the vendor's API has no such operation."
    if operation.operation_id == "addCampaign":
        spec["responses"][str(answers.SUCCESS.status)]["content"] = {
            "application/json": {
                "schema": _ERROR["application/json"]["schema"],
                "example": example("add-campaign-response"),
            }
        }
    return spec


def _query_parameter(name: str, parameter: QueryParameter, request: Descriptor) -> dict[str, Any]:
    schema = dict(parameter.schema)
    if parameter.contract:
        fd = request.fields_by_name[parameter.field]
        schema.update(_constraints(fd, _rules(fd)))
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": parameter.description.format_map(schema),
        "schema": schema,
    }


def _responses(operation: Operation) -> dict[str, Any]:
    """Every answer the operation can give, from the table of answers, by HTTP status."""
    responses: dict[str, Any] = {}
    for status, kinds in answers.documented().items():
        response: dict[str, Any] = {
            "description": " ".join(
                kind.description.format(success=operation.success) for kind in kinds
            )
        }
        headers = {
            name: {"schema": _header_schema(kind.headers.get(name))}
            for kind in kinds
            for name in answers.documented_headers(kind)
        }
        if headers:
            response["headers"] = headers
        response["content"] = _ERROR
        responses[str(status)] = response
    return responses


def _header_schema(value: str | None) -> dict[str, str]:
    """A header's schema, by its value in the table (None: each answer sets its own)."""
    return {"type": "integer" if value is not None and value.isdigit() else "string"}


def _statuses_of(code: str) -> str:
    """The sentence naming the HTTP statuses other than 200 answered with a legacy code."""
    named = [
        f"{kind.status} ({kind.name}"
        + "".join(f", with {name}" for name in answers.documented_headers(kind))
        + ")"
        for kinds in answers.documented().values()
        for kind in kinds
        if kind.code == code and kind.status != answers.SUCCESS.status
    ]
    if not named:
        return ""
    listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
    return f" Also answered with HTTP {listed}."


def _unsecured(operation_id: str, kind: answers.Kind, description: str) -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation_id,
            "security": [],
            "responses": {str(kind.status): {"description": description}},
        }
    }


def _envelope_schema() -> dict[str, Any]:
    code = {"type": "string", "enum": documented_codes()}
    return {
        "type": "object",
        "required": ["resultCode", "resultDesc", "returnCode", "returnDesc"],
        "properties": {
            "resultCode": code,
            "resultDesc": {"type": "string"},
            "returnCode": code,
            "returnDesc": {"type": "string"},
            "returnObject": {
                "type": "object",
                "description": "add: {id}; query one: the campaign.",
                "properties": {"id": {"type": "integer", "format": "int64"}},
            },
            # The list answer's fields, beside the envelope's keys.
            "curPage": {"type": "integer"},
            "rowsPerPage": {"type": "integer"},
            "totalSize": {"type": "integer"},
            "curSkillQueueCount": {"type": "integer"},
            "curIvrCount": {"type": "integer"},
            "data": {"type": "array", "items": {"type": "object"}},
        },
    }


def _message_schema(descriptor: Descriptor, schemas: dict[str, Any]) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{descriptor.name}"}
    if descriptor.name in schemas:
        return ref
    schema: dict[str, Any] = {"type": "object"}
    schemas[descriptor.name] = schema
    properties: dict[str, Any] = {}
    required: list[str] = []
    for fd in descriptor.fields:
        key = legacy_key(fd)
        rules = _rules(fd)
        if rules.required:
            required.append(key)
        if key in properties:  # fields sharing a key: alternatives of one value
            properties[key] = _alternatives(properties[key], _field_schema(fd, rules, schemas))
            required.append(key)
            continue
        if is_json_string(fd) and fd.message_type is not None:
            items = _message_schema(fd.message_type, schemas)
            properties[key] = {
                "type": "string",
                "description": "A JSON array as a string (single quotes accepted; integers "
                "may be written as strings).",
                "contentMediaType": "application/json",
                "contentSchema": {"type": "array", "items": items},
            }
            continue
        properties[key] = _field_schema(fd, rules, schemas)
        # The contract's own rules (characters, formats) in its words.
        stated = [rule.message for rule in rules.cel if rule.message]
        if stated:
            properties[key] = {**properties[key], "description": "; ".join(stated)}
    schema["properties"] = properties
    if required:
        schema["required"] = required
    return ref


def _alternatives(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """`policy`: an object, or a list of objects (or one of them), or either as a JSON
    string."""
    single, many = (first, second) if first.get("type") != "array" else (second, first)
    return {
        "description": "type 0: {retryDay, retryTimes}; type 1: a list of {result, "
        "retryNumber, callInterval} (or one such object). Either may also be sent as a "
        "JSON string.",
        "anyOf": [single, many, many["items"], {"type": "string"}],
    }


def _field_schema(
    fd: FieldDescriptor, rules: validate_pb2.FieldRules, schemas: dict[str, Any]
) -> dict[str, Any]:
    item: dict[str, Any]
    if fd.message_type is not None:
        item = _message_schema(fd.message_type, schemas)
    elif fd.enum_type is not None:
        numbers = [v.number for v in fd.enum_type.values if not v.name.endswith("_UNSPECIFIED")]
        item = {"type": "integer", "enum": numbers}
    elif fd.type == FieldDescriptor.TYPE_STRING:
        item = {"type": "string", **_constraints(fd, rules)}
    else:
        item = {"type": "integer", "format": "int32", **_constraints(fd, rules)}
    if not fd.is_repeated:
        return item
    array: dict[str, Any] = {"type": "array", "items": item}
    if rules.repeated.HasField("max_items"):
        array["maxItems"] = rules.repeated.max_items
    return array


def _rules(fd: FieldDescriptor) -> validate_pb2.FieldRules:
    """The field's `(buf.validate.field)` rules in the contract."""
    rules: validate_pb2.FieldRules = fd.GetOptions().Extensions[validate_pb2.field]
    return rules


#: A format rule (`id: "format"`) that a JSON Schema pattern states: the text matches, or,
#: for an optional filter, is empty or matches.
_FORMAT = re.compile(r"(?:this == '' \|\| )?this\.matches\('([^'\\]*)'\)")


def _constraints(fd: FieldDescriptor, rules: validate_pb2.FieldRules) -> dict[str, Any]:
    """The JSON Schema keywords of a string's, an enum's or an integer's (32 or 64 bits)
    rules (an item's, for a repeated field)."""
    constraints: dict[str, Any] = {}
    if fd.type == FieldDescriptor.TYPE_STRING:
        string_rules = rules.repeated.items.string if fd.is_repeated else rules.string
        if string_rules.HasField("max_len"):
            constraints["maxLength"] = string_rules.max_len
        if string_rules.HasField("min_len"):
            constraints["minLength"] = string_rules.min_len
        # A pattern with escapes would need CEL's unescaping and RE2's dialect translated;
        # the contract's formats have none.
        for rule in rules.cel:
            found = _FORMAT.fullmatch(rule.expression) if rule.id == "format" else None
            if found:
                constraints["pattern"] = found[1]
    elif fd.enum_type is not None:
        if rules.enum.defined_only:  # 0 too: a filter's "all"
            constraints["enum"] = [value.number for value in fd.enum_type.values]
    elif fd.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64):
        numbers = rules.int32 if fd.type == FieldDescriptor.TYPE_INT32 else rules.int64
        if numbers.HasField("gte"):
            constraints["minimum"] = numbers.gte
        if numbers.HasField("lte"):
            constraints["maximum"] = numbers.lte
    return constraints
