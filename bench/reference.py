"""`python -m bench.reference PORT DATABASE [VARIANT]`: what a Python team would build in an
afternoon for the REST add, for `make bench` to measure this project against in the same run.

One FastAPI + pydantic process: the auth-v2 check with the same algorithm (keys held in
memory, as the gateway holds them), the main rules of the vendor's page as a pydantic model,
and a durable SQLite insert (WAL, synchronous=FULL, as the service) with the name check and
the quota check in one write transaction. It answers the vendor's envelope. It has no gRPC,
no contract, no rich errors: a floor to compare with, not a replacement.

Three `VARIANTS`: by default (`threads`) the write runs on a worker thread (as FastAPI runs a
blocking endpoint) and counts the family's campaigns; `lean` runs it inline on the event loop,
with a counter row per tenant and family updated in the same transaction, which is cheaper;
`same-writes` is `lean` also writing what the service writes of an add in its transaction
beyond the campaign and its count: the idempotency key (a retry is answered with the first
add's campaign) and a change record under the tenant's next sequence. Even that one keeps no
log line, no metrics and no request id.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
import uvicorn
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field, ValidationError, model_validator
from starlette.concurrency import run_in_threadpool

from bench import payloads
from isales_campaign.legacy import auth_v2
from isales_campaign.legacy.wire import IDEMPOTENCY_KEY_HEADER

TIME = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
CLOCK = r"^(([01]\d|2[0-3]):[0-5]\d)?$"
MAX_ACTIVE = 100_000_000
#: Device types of the IVR family; the others are skill-queue campaigns.
IVR_DEVICE_TYPES = (1, 3)
#: The answer to a request that fails authentication.
UNAUTHENTICATED = ("0200001", "authentication failed", None, 401)
SKEW_SECONDS = 15 * 60


class CallerNo(BaseModel):
    accessCode: Annotated[str, Field(min_length=1, max_length=24, pattern=r"^\d+$")]
    priority: Annotated[int, Field(ge=1, le=10)]


class ScheduleParam(BaseModel):
    workdayBeginTime1: Annotated[str, Field(pattern=CLOCK)]
    workdayEndTime1: Annotated[str, Field(pattern=CLOCK)]
    workdayBeginTime2: Annotated[str, Field(pattern=CLOCK)] = ""
    workdayEndTime2: Annotated[str, Field(pattern=CLOCK)] = ""
    workdayBeginTime3: Annotated[str, Field(pattern=CLOCK)] = ""
    workdayEndTime3: Annotated[str, Field(pattern=CLOCK)] = ""
    holidayBeginTime1: Annotated[str, Field(pattern=CLOCK)] = ""
    holidayEndTime1: Annotated[str, Field(pattern=CLOCK)] = ""
    holidayBeginTime2: Annotated[str, Field(pattern=CLOCK)] = ""
    holidayEndTime2: Annotated[str, Field(pattern=CLOCK)] = ""
    holidayBeginTime3: Annotated[str, Field(pattern=CLOCK)] = ""
    holidayEndTime3: Annotated[str, Field(pattern=CLOCK)] = ""

    @model_validator(mode="after")
    def segments_in_order(self) -> ScheduleParam:
        for day in ("workday", "holiday"):
            for index in (1, 2, 3):
                begin = getattr(self, f"{day}BeginTime{index}")
                end = getattr(self, f"{day}EndTime{index}")
                if bool(begin) != bool(end) or begin > end:
                    raise ValueError(f"{day} segment {index} is not a begin before an end")
        return self


class ExpPredictParam(BaseModel):
    maxAvgCallTime: Annotated[int, Field(ge=1, le=3600)]
    minAvgCallTime: Annotated[int, Field(ge=1, le=3600)]
    outBoundRate: Annotated[int, Field(ge=1, le=100)]


class PredictParam(BaseModel):
    predictMethod: Annotated[int, Field(ge=1, le=2)]
    expPredictParam: ExpPredictParam | None = None


class SkillParam(BaseModel):
    skillId: Annotated[int, Field(ge=1)]
    skillName: Annotated[str, Field(min_length=1, max_length=64)]
    outBoundType: Annotated[int, Field(ge=1, le=3)]
    predictParam: PredictParam | None = None


class RetryPolicy(BaseModel):
    policyType: Annotated[int, Field(ge=0, le=1)]
    policyJson: Annotated[str, Field(max_length=4096)] = ""
    retryDay: Annotated[int, Field(ge=0, le=30)] = 0
    retryTimes: Annotated[int, Field(ge=0, le=10)] = 0
    callInterval: Annotated[int, Field(ge=0, le=86400)] = 0


class Turn(BaseModel):
    turnType: Annotated[str, Field(min_length=1, max_length=8)]


class CallPolicy(BaseModel):
    callType: Annotated[int, Field(ge=0, le=2)]
    chooseType: Annotated[int, Field(ge=0, le=1)]
    turns: Annotated[list[Turn], Field(min_length=1, max_length=10)]


class Campaign(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=32)]
    description: Annotated[str, Field(max_length=256)] = ""
    strBeginTime: Annotated[str, Field(pattern=TIME)]
    strEndTime: Annotated[str, Field(pattern=TIME)]
    deviceType: Literal[1, 2, 3, 5, 6]
    callerNo: Annotated[list[CallerNo], Field(min_length=1, max_length=100)]
    maxAlertingTime: Annotated[int, Field(ge=1, le=60)]
    priority: Annotated[int, Field(ge=1, le=8)]
    scheduleParam: ScheduleParam
    skillParam: SkillParam | None = None
    retryPolicy: RetryPolicy
    callPolicy: CallPolicy | None = None
    initStatus: Annotated[int, Field(ge=0, le=1)] = 0
    callBackUrl: Annotated[str, Field(max_length=256)] = ""

    @model_validator(mode="after")
    def consistent(self) -> Campaign:
        begin = datetime.strptime(self.strBeginTime, "%Y-%m-%d %H:%M:%S")
        end = datetime.strptime(self.strEndTime, "%Y-%m-%d %H:%M:%S")
        if end <= begin:
            raise ValueError("strEndTime is not after strBeginTime")
        if self.deviceType not in IVR_DEVICE_TYPES and self.skillParam is None:
            raise ValueError("skillParam is required for this deviceType")
        return self


def envelope(code: str, desc: str = "", result: Any = None, status: int = 200) -> Response:
    body: dict[str, Any] = {
        "resultCode": code,
        "resultDesc": desc,
        "returnCode": code,
        "returnDesc": desc,
    }
    if result is not None:
        body["returnObject"] = result
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json;charset=UTF-8"
    )


class Store:
    """One SQLite connection per worker thread; one write transaction per add."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._local = threading.local()
        with self._connect() as connection:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS reference_campaigns (id INTEGER PRIMARY KEY,"
                " vdn_id INTEGER NOT NULL, name TEXT NOT NULL, family INTEGER NOT NULL,"
                " status INTEGER NOT NULL, config BLOB NOT NULL, UNIQUE (vdn_id, name))"
            )
            self.keys = {
                ak: (vdn, sk)
                for ak, vdn, sk in connection.execute(
                    "SELECT access_key, vdn_id, secret_key FROM app_keys"
                )
            }

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, isolation_level=None, timeout=10)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        return connection

    def add(self, vdn_id: int, campaign: Campaign, config: bytes) -> int | str:
        """The new id, or the legacy code of a refusal."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
        family = 2 if campaign.deviceType in IVR_DEVICE_TYPES else 1
        connection.execute("BEGIN IMMEDIATE")
        try:
            taken = connection.execute(
                "SELECT 1 FROM reference_campaigns WHERE vdn_id = ? AND name = ?",
                (vdn_id, campaign.name),
            ).fetchone()
            if taken:
                connection.execute("ROLLBACK")
                return "0200005"
            (active,) = connection.execute(
                "SELECT count(*) FROM (SELECT 1 FROM reference_campaigns WHERE vdn_id = ?"
                " AND family = ? AND status = 1 LIMIT ?)",
                (vdn_id, family, MAX_ACTIVE),
            ).fetchone()
            if active >= MAX_ACTIVE:
                connection.execute("ROLLBACK")
                return _QUOTA_REFUSALS[family]
            new_id = _insert(connection, vdn_id, campaign, family, config)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return new_id


class LeanStore(Store):
    """One connection, used on the event loop's thread; the quota is a counter row per tenant
    and family, kept in the add's transaction."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self._connection = self._connect()
        self._connection.execute(
            "CREATE TABLE IF NOT EXISTS reference_counts (vdn_id INTEGER NOT NULL,"
            " family INTEGER NOT NULL, live INTEGER NOT NULL, PRIMARY KEY (vdn_id, family))"
        )
        self._connection.executemany(
            "INSERT OR IGNORE INTO reference_counts VALUES (?, ?, 0)",
            [(vdn, family) for vdn, _ in self.keys.values() for family in (1, 2)],
        )

    def add(self, vdn_id: int, campaign: Campaign, config: bytes) -> int | str:
        return self._in_transaction(lambda: self._write(vdn_id, campaign, config))

    def _in_transaction(self, write: Callable[[], int | str]) -> int | str:
        """`write()` in a write transaction, committed unless it answers a refusal's code."""
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            outcome = write()
            connection.execute("ROLLBACK" if isinstance(outcome, str) else "COMMIT")
        except sqlite3.IntegrityError:  # the unique name
            connection.execute("ROLLBACK")
            return "0200005"
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return outcome

    def _write(self, vdn_id: int, campaign: Campaign, config: bytes) -> int | str:
        """The family's count and the campaign: its id, or the code of a quota refusal."""
        family = 2 if campaign.deviceType in IVR_DEVICE_TYPES else 1
        counted = self._connection.execute(
            "UPDATE reference_counts SET live = live + 1"
            " WHERE vdn_id = ? AND family = ? AND live < ?",
            (vdn_id, family, MAX_ACTIVE),
        )
        if counted.rowcount == 0:
            return _QUOTA_REFUSALS[family]
        return _insert(self._connection, vdn_id, campaign, family, config)


class SameWritesStore(LeanStore):
    """`LeanStore`, also keeping the add's idempotency key and a change record (who, when, the
    configuration) in its transaction, as the service does."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self._connection.execute(
            "CREATE TABLE IF NOT EXISTS reference_keys (vdn_id INTEGER NOT NULL,"
            " key TEXT NOT NULL, digest BLOB NOT NULL, campaign_id INTEGER NOT NULL,"
            " created_at TEXT NOT NULL, PRIMARY KEY (vdn_id, key))"
        )
        self._connection.execute(
            "CREATE TABLE IF NOT EXISTS reference_changes (vdn_id INTEGER NOT NULL,"
            " sequence INTEGER NOT NULL, campaign_id INTEGER NOT NULL, change_time TEXT NOT NULL,"
            " actor TEXT NOT NULL, config BLOB NOT NULL, PRIMARY KEY (vdn_id, sequence))"
        )

    def add_keyed(
        self, vdn_id: int, campaign: Campaign, config: bytes, *, key: str, actor: str
    ) -> int | str:
        """As `add`; an add with a key already kept is answered with its campaign."""
        return self._in_transaction(lambda: self._write_keyed(vdn_id, campaign, config, key, actor))

    def _write_keyed(
        self, vdn_id: int, campaign: Campaign, config: bytes, key: str, actor: str
    ) -> int | str:
        connection = self._connection
        digest = hashlib.sha256(config).digest()
        earlier = connection.execute(
            "SELECT digest, campaign_id FROM reference_keys WHERE vdn_id = ? AND key = ?",
            (vdn_id, key),
        ).fetchone()
        if earlier is not None:
            return int(earlier[1]) if earlier[0] == digest else _KEY_REUSED
        new_id = self._write(vdn_id, campaign, config)
        if isinstance(new_id, str):
            return new_id
        now = datetime.now(UTC).isoformat()
        connection.execute(
            "INSERT INTO reference_keys VALUES (?, ?, ?, ?, ?)", (vdn_id, key, digest, new_id, now)
        )
        connection.execute(
            "INSERT INTO reference_changes SELECT ?, coalesce(max(sequence), 0) + 1, ?, ?, ?, ?"
            " FROM reference_changes WHERE vdn_id = ?",
            (vdn_id, new_id, now, actor, config, vdn_id),
        )
        return new_id


#: The refusal of an add whose idempotency key an add of another campaign used (as the service
#: answers it: an invalid combination).
_KEY_REUSED = "02000009"
#: The refusal of an add beyond its family's quota, by family.
_QUOTA_REFUSALS = {1: "0200003", 2: "0200004"}


def _insert(
    connection: sqlite3.Connection, vdn_id: int, campaign: Campaign, family: int, config: bytes
) -> int:
    cursor = connection.execute(
        "INSERT INTO reference_campaigns (vdn_id, name, family, status, config)"
        " VALUES (?, ?, ?, ?, ?)",
        (vdn_id, campaign.name, family, 1 if campaign.initStatus == 0 else 3, config),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


#: The variants by the name `main` takes; the first is the default.
VARIANTS = {"threads": Store, "lean": LeanStore, "same-writes": SameWritesStore}


def create_app(database: str, variant: str = "threads") -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    store = VARIANTS[variant](database)

    @app.post(payloads.REST_PATH)
    async def add(vdn_id: int, request: Request) -> Response:
        body = await request.body()
        header = request.headers.get("authorization", "")
        try:
            parsed = auth_v2.parse_authorization(header)
            moment = auth_v2.parse_timestamp(parsed.timestamp)
        except ValueError:
            return envelope(*UNAUTHENTICATED)
        if abs((datetime.now(UTC) - moment).total_seconds()) > SKEW_SECONDS:
            return envelope(*UNAUTHENTICATED)
        key = store.keys.get(parsed.access_key)
        if key is None or key[0] != vdn_id:
            return envelope(*UNAUTHENTICATED)
        names = parsed.signed_headers.split(";")
        headers = {name: request.headers.get(name, "") for name in names}
        canonical = auth_v2.canonical_request(
            "POST", request.url.path, request.url.query, parsed.signed_headers, headers, body
        )
        expected = auth_v2.signature(auth_v2.signing_key(key[1], parsed.prefix), canonical)
        if not hmac.compare_digest(expected, parsed.signature):
            return envelope(*UNAUTHENTICATED)
        try:
            campaign = Campaign.model_validate_json(body)
        except ValidationError as error:
            return envelope("02000002", str(error.errors()[0]["msg"]))
        if isinstance(store, SameWritesStore):
            # As the gateway keys an add: the client's key, or else the signature.
            idempotency_key = request.headers.get(IDEMPOTENCY_KEY_HEADER) or parsed.signature
            outcome = store.add_keyed(
                vdn_id, campaign, body, key=idempotency_key, actor=parsed.access_key
            )
        elif isinstance(store, LeanStore):
            outcome = store.add(vdn_id, campaign, body)
        else:  # on a worker thread, as FastAPI runs a blocking endpoint
            outcome = await run_in_threadpool(store.add, vdn_id, campaign, body)
        if isinstance(outcome, str):
            return envelope(outcome, "refused")
        return envelope("0200000", "", {"id": outcome})

    return app


def main() -> None:
    port, database = int(sys.argv[1]), sys.argv[2]
    variant = sys.argv[3] if len(sys.argv) > 3 else "threads"
    app = create_app(database, variant)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
