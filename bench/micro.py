"""Per-request costs measured in-process with timeit: no network, no database."""

from __future__ import annotations

import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from isales.campaign.v2.campaign_service_pb2 import AddCampaignRequest
from protovalidate import Validator
from sqlalchemy import bindparam, create_engine, insert, select

from bench import payloads
from isales_campaign.client.http import sign_request
from isales_campaign.config import Deployment
from isales_campaign.gateway import envelope
from isales_campaign.gateway.translate import translate_campaign
from isales_campaign.legacy import auth_v2
from isales_campaign.service.db.prepared import Prepared
from isales_campaign.service.db.schema import campaigns, metadata, tenants
from isales_campaign.service.domain.campaign_rules import campaign_times
from isales_campaign.service.errors import FieldProblem
from isales_campaign.service.validation import contract_problems

protovalidate = Validator()

REPEAT = 5


def _time(function: Callable[[], object]) -> dict[str, Any]:
    """Microseconds per call: best and median of REPEAT runs of about 0.2 s each."""
    timer = timeit.Timer(function)
    number, _ = timer.autorange()
    runs = sorted(t / number * 1e6 for t in timer.repeat(REPEAT, number))
    return {"us": runs[0], "median_us": runs[len(runs) // 2], "calls": number * REPEAT}


def measure() -> dict[str, dict[str, Any]]:
    """name -> timing; raises when the example does not pass (it would time an error path)."""
    body = payloads.example_body()
    translated = translate_campaign(body)
    if isinstance(translated, list):
        raise RuntimeError(f"the documented example does not translate: {translated}")
    request = AddCampaignRequest(vdn_id=1, campaign=translated)
    if contract_problems(request):
        raise RuntimeError(f"the documented example breaks a rule: {contract_problems(request)}")
    zone = ZoneInfo("UTC")
    now = datetime.now(UTC)

    def domain_rules(problems: list[FieldProblem]) -> object:
        return campaign_times(request.campaign, zone, now, Deployment.CLOUD, problems)

    def validate() -> object:
        return domain_rules(contract_problems(request))

    url = "http://127.0.0.1:8080" + payloads.REST_PATH.format(vdn_id=1)
    ak, sk = payloads.access_key(1)
    header = auth_v2.parse_authorization(sign_request(ak, sk, method="POST", url=url, body=body))
    key = auth_v2.signing_key(sk, header.prefix)
    signed = {"host": "127.0.0.1:8080"}
    path = payloads.REST_PATH.format(vdn_id=1)

    def verify() -> object:
        canonical = auth_v2.canonical_request("POST", path, "", "host", signed, body)
        return auth_v2.signature(key, canonical)

    serialized = request.SerializeToString()
    cases: dict[str, Callable[[], object]] = {
        "translate JSON -> Campaign": lambda: translate_campaign(body),
        "validate (contract + domain rules)": validate,
        "  contract rules (fast path)": lambda: contract_problems(request),
        "  the same by protovalidate": lambda: protovalidate.collect_violations(request),
        "  domain rules only": lambda: domain_rules([]),
        "envelope encode (success)": lambda: envelope.render(envelope.SUCCESS, "", {"id": 123456}),
        "auth-v2 verify (canonical + HMAC)": verify,
        "AddCampaignRequest parse": lambda: AddCampaignRequest.FromString(serialized),
    }
    cases.update(_store_reads())
    return {name: _time(function) for name, function in cases.items()}


def _store_reads() -> dict[str, Callable[[], object]]:
    """One campaign read by its statement on one kept SQLite connection: through SQLAlchemy's
    per-execution machinery, and as `db.prepared` runs the statements of the store."""
    engine = create_engine("sqlite://")  # one in-memory database, one connection
    metadata.create_all(engine)
    moment = datetime(2026, 1, 1)
    with engine.begin() as connection:
        connection.execute(insert(tenants).values(vdn_id=1, time_zone="UTC"))
        connection.execute(
            insert(campaigns).values(
                vdn_id=1, name="c", family=1, device_type=2, status=2, begin_at=moment,
                end_at=moment, config=b"", version=1, created_at=moment, updated_at=moment,
            )
        )  # fmt: skip
    statement = select(*campaigns.c).where(
        campaigns.c.vdn_id == bindparam("vdn_id"), campaigns.c.id == bindparam("campaign_id")
    )
    values = {"vdn_id": 1, "campaign_id": 1}
    core = engine.connect()
    prepared, raw = Prepared(statement, engine.dialect), engine.raw_connection()
    return {
        "read a campaign (SQLAlchemy Core)": lambda: core.execute(statement, values).first(),
        "  the same, prepared (db/prepared.py)": lambda: prepared.first(raw, values),
    }
