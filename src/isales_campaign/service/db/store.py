"""The campaign store: every write is one transaction that holds the tenant's lock.

Quotas and name uniqueness must hold across processes and replicas, so the
checks and the insert happen under a lock taken at the start of the
transaction: `BEGIN IMMEDIATE` on SQLite (one writer per file), a row lock on
the tenant on PostgreSQL (one writer per tenant). The unique constraint on
(vdn_id, name) backs the name check up.

Statements are built once with bind parameters: building them per call cost
more than running them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, bindparam, exists, func, insert, select
from sqlalchemy.exc import IntegrityError

from isales_campaign.result_codes import ResultCode
from isales_campaign.service.db.engine import read_only
from isales_campaign.service.db.schema import app_keys, campaigns, skill_queues, tenants
from isales_campaign.service.domain import Family
from isales_campaign.service.errors import (
    IdempotencyKeyReused,
    NameTaken,
    QuotaExceeded,
    QuotaProblem,
    SkillQueueNotFound,
    TenantNotFound,
)

_QUOTA_CODES = {
    Family.SKILL_QUEUE: ResultCode.RESULT_CODE_SKILL_QUEUE_CAMPAIGN_LIMIT,
    Family.IVR: ResultCode.RESULT_CODE_IVR_CAMPAIGN_LIMIT,
}
#: Seconds a tenant's time zone is cached; `isales seed` changes show up after this.
TENANT_CACHE_SECONDS = 10.0

_TENANT_ZONE = select(tenants.c.time_zone).where(tenants.c.vdn_id == bindparam("vdn_id"))
_APP_KEY = select(app_keys.c.vdn_id, app_keys.c.secret_key).where(
    app_keys.c.access_key == bindparam("access_key")
)
# FOR UPDATE is a no-op on SQLite, whose BEGIN IMMEDIATE already locks.
_LOCK_TENANT = (
    select(tenants.c.vdn_id).where(tenants.c.vdn_id == bindparam("vdn_id")).with_for_update()
)
_EARLIER_ADD = select(campaigns.c.id, campaigns.c.status, campaigns.c.config).where(
    campaigns.c.vdn_id == bindparam("vdn_id"),
    campaigns.c.idempotency_key == bindparam("idempotency_key"),
)
#: Every check of an add in one round trip.
_CHECK_COLUMNS = (
    exists()
    .where(
        skill_queues.c.vdn_id == bindparam("vdn_id"),
        skill_queues.c.skill_id == bindparam("skill_id"),
    )
    .label("queue_exists"),
    exists()
    .where(campaigns.c.vdn_id == bindparam("vdn_id"), campaigns.c.name == bindparam("name"))
    .label("name_taken"),
    select(func.count())
    .select_from(campaigns)
    .where(
        campaigns.c.vdn_id == bindparam("vdn_id"),
        campaigns.c.family == bindparam("family"),
        campaigns.c.end_at > bindparam("now"),
    )
    .scalar_subquery()
    .label("active"),
)
_CHECKS = select(*_CHECK_COLUMNS)
#: With the cap on campaigns in all, which counts a family's whole history.
_CHECKS_WITH_TOTAL = select(
    *_CHECK_COLUMNS,
    select(func.count())
    .select_from(campaigns)
    .where(campaigns.c.vdn_id == bindparam("vdn_id"), campaigns.c.family == bindparam("family"))
    .scalar_subquery()
    .label("total"),
)
_INSERT = insert(campaigns).returning(campaigns.c.id)


@dataclass(frozen=True, slots=True)
class CampaignLimits:
    """Per tenant and device family: campaigns not yet ended, and campaigns at all.

    The vendor also caps campaigns at all (20); that cap is off (None) by default
    because campaigns cannot be deleted here yet, so it would lock a tenant out.
    """

    active: int = 20
    total: int | None = None


DEFAULT_LIMITS = CampaignLimits()


@dataclass(frozen=True, slots=True)
class Tenant:
    vdn_id: int
    time_zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class NewCampaign:
    vdn_id: int
    name: str
    family: Family
    device_type: int
    skill_id: int | None
    status: int
    #: Naive UTC.
    begin_at: datetime
    end_at: datetime
    config: bytes
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class StoredCampaign:
    id: int
    status: int
    #: An earlier add with the same idempotency key, answered again.
    replayed: bool = False


class CampaignStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._tenants: dict[int, tuple[float, Tenant]] = {}
        # SQLite has one writer per file. Threads of this process queue here
        # instead of in SQLite's busy handler, which sleeps in steps of up to
        # 100 ms and is not woken when the lock frees.
        self._writer: AbstractContextManager[object] = (
            threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )

    def tenant(self, vdn_id: int) -> Tenant | None:
        cached = self._tenants.get(vdn_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        with read_only(self._engine) as connection:
            zone = connection.scalar(_TENANT_ZONE, {"vdn_id": vdn_id})
        if zone is None:
            return None
        tenant = Tenant(vdn_id, ZoneInfo(zone))
        self._tenants[vdn_id] = (time.monotonic() + TENANT_CACHE_SECONDS, tenant)
        return tenant

    def app_key(self, access_key: str) -> tuple[int, str] | None:
        """The VDN and secret key of an access key."""
        with read_only(self._engine) as connection:
            row = connection.execute(_APP_KEY, {"access_key": access_key}).first()
        return None if row is None else (int(row.vdn_id), str(row.secret_key))

    def add(
        self,
        campaign: NewCampaign,
        *,
        limits: CampaignLimits,
        now: datetime,
        validate_only: bool = False,
    ) -> StoredCampaign:
        """Store the campaign (unless `validate_only`); `now` is naive UTC."""
        try:
            with self._tenant_locked(campaign.vdn_id) as connection:
                if campaign.idempotency_key is not None:
                    earlier = _earlier_add(
                        connection, campaign.vdn_id, campaign.idempotency_key, campaign.config
                    )
                    if earlier is not None:
                        return earlier
                self._check(connection, campaign, limits, now)
                if validate_only:
                    return StoredCampaign(id=0, status=campaign.status)
                new_id = connection.scalar(
                    _INSERT,
                    {
                        "vdn_id": campaign.vdn_id,
                        "name": campaign.name,
                        "family": int(campaign.family),
                        "device_type": campaign.device_type,
                        "status": campaign.status,
                        "begin_at": campaign.begin_at,
                        "end_at": campaign.end_at,
                        "config": campaign.config,
                        "version": 1,
                        "created_at": now,
                        "updated_at": now,
                        "idempotency_key": campaign.idempotency_key,
                    },
                )
        except IntegrityError as error:
            if "uq_campaigns_vdn_id_name" in str(error.orig) or "campaigns.name" in str(error.orig):
                raise NameTaken(campaign.vdn_id, campaign.name) from None
            raise
        assert new_id is not None
        return StoredCampaign(id=int(new_id), status=campaign.status)

    def earlier_add(
        self, vdn_id: int, idempotency_key: str, config: bytes
    ) -> StoredCampaign | None:
        """The campaign an earlier add with this key stored, if any. Under the tenant's
        lock, so an add of the same key still in flight is waited for."""
        with self._tenant_locked(vdn_id) as connection:
            return _earlier_add(connection, vdn_id, idempotency_key, config)

    @contextmanager
    def _tenant_locked(self, vdn_id: int) -> Iterator[Connection]:
        """A transaction holding the tenant's write lock: every write and every check
        that must not race one runs inside it."""
        with self._writer, self._engine.begin() as connection:
            if connection.scalar(_LOCK_TENANT, {"vdn_id": vdn_id}) is None:
                raise TenantNotFound(vdn_id)
            yield connection

    @staticmethod
    def _check(
        connection: Connection, campaign: NewCampaign, limits: CampaignLimits, now: datetime
    ) -> None:
        checks = connection.execute(
            _CHECKS if limits.total is None else _CHECKS_WITH_TOTAL,
            {
                "vdn_id": campaign.vdn_id,
                # IVR campaigns name no queue: -1 matches none, and is not asked about.
                "skill_id": -1 if campaign.skill_id is None else campaign.skill_id,
                "name": campaign.name,
                "family": int(campaign.family),
                "now": now,
            },
        ).one()
        if campaign.skill_id is not None and not checks.queue_exists:
            raise SkillQueueNotFound(campaign.vdn_id, campaign.skill_id)
        if checks.name_taken:
            raise NameTaken(campaign.vdn_id, campaign.name)
        family = campaign.family.label
        if limits.total is not None and checks.total >= limits.total:
            raise _quota_exceeded(
                campaign,
                "campaigns",
                limits.total,
                int(checks.total),
                f"{checks.total} {family} campaigns, ended ones included; the limit is "
                f"{limits.total}: delete one before adding another",
            )
        active = int(checks.active)
        if active >= limits.active:
            raise _quota_exceeded(
                campaign,
                "active_campaigns",
                limits.active,
                active,
                f"{active} active {family} campaigns; the limit is {limits.active}: "
                "delete or let one end before adding another",
            )


def _quota_exceeded(
    campaign: NewCampaign, metric: str, limit: int, usage: int, situation: str
) -> QuotaExceeded:
    return QuotaExceeded(
        _QUOTA_CODES[campaign.family],
        QuotaProblem(
            subject=f"vdn:{campaign.vdn_id}/family:{campaign.family.label}",
            metric=metric,
            description=f"VDN {campaign.vdn_id} already has {situation}",
            limit=limit,
            usage=usage,
        ),
    )


def _earlier_add(
    connection: Connection, vdn_id: int, idempotency_key: str, config: bytes
) -> StoredCampaign | None:
    row = connection.execute(
        _EARLIER_ADD, {"vdn_id": vdn_id, "idempotency_key": idempotency_key}
    ).first()
    if row is None:
        return None
    if bytes(row.config) != config:
        raise IdempotencyKeyReused(vdn_id)
    return StoredCampaign(id=int(row.id), status=int(row.status), replayed=True)
