"""The campaign store: every write is one transaction that holds the tenant's lock.

Quotas and name uniqueness must hold across processes and replicas, so the
checks and the insert happen under a lock taken at the start of the
transaction: `BEGIN IMMEDIATE` on SQLite (one writer per file), a row lock on
the tenant on PostgreSQL (one writer per tenant). The unique constraint on
(vdn_id, name) backs the name check up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, exists, func, insert, select
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

    def tenant(self, vdn_id: int) -> Tenant | None:
        with read_only(self._engine) as connection:
            zone = connection.scalar(select(tenants.c.time_zone).where(tenants.c.vdn_id == vdn_id))
        return None if zone is None else Tenant(vdn_id, ZoneInfo(zone))

    def app_key(self, access_key: str) -> tuple[int, str] | None:
        """The VDN and secret key of an access key."""
        with read_only(self._engine) as connection:
            row = connection.execute(
                select(app_keys.c.vdn_id, app_keys.c.secret_key).where(
                    app_keys.c.access_key == access_key
                )
            ).first()
        return None if row is None else (int(row.vdn_id), str(row.secret_key))

    def add(
        self,
        campaign: NewCampaign,
        *,
        max_active: int,
        now: datetime,
        validate_only: bool = False,
    ) -> StoredCampaign:
        """Store the campaign (unless `validate_only`); `now` is naive UTC."""
        try:
            with self._engine.begin() as connection:
                self._lock_tenant(connection, campaign.vdn_id)
                earlier = self._earlier_add(connection, campaign)
                if earlier is not None:
                    return earlier
                self._check_skill_queue(connection, campaign)
                self._check_name(connection, campaign)
                self._check_quota(connection, campaign, max_active, now)
                if validate_only:
                    return StoredCampaign(id=0, status=campaign.status)
                new_id = connection.scalar(
                    insert(campaigns)
                    .values(
                        vdn_id=campaign.vdn_id,
                        name=campaign.name,
                        family=int(campaign.family),
                        device_type=campaign.device_type,
                        status=campaign.status,
                        begin_at=campaign.begin_at,
                        end_at=campaign.end_at,
                        config=campaign.config,
                        version=1,
                        created_at=now,
                        updated_at=now,
                        idempotency_key=campaign.idempotency_key,
                    )
                    .returning(campaigns.c.id)
                )
        except IntegrityError as error:
            if "uq_campaigns_vdn_id_name" in str(error.orig) or "campaigns.name" in str(error.orig):
                raise NameTaken(campaign.vdn_id, campaign.name) from None
            raise
        assert new_id is not None
        return StoredCampaign(id=int(new_id), status=campaign.status)

    @staticmethod
    def _lock_tenant(connection: Connection, vdn_id: int) -> None:
        # FOR UPDATE is a no-op on SQLite, whose BEGIN IMMEDIATE already locks.
        found = connection.scalar(
            select(tenants.c.vdn_id).where(tenants.c.vdn_id == vdn_id).with_for_update()
        )
        if found is None:
            raise TenantNotFound(vdn_id)

    @staticmethod
    def _earlier_add(connection: Connection, campaign: NewCampaign) -> StoredCampaign | None:
        if campaign.idempotency_key is None:
            return None
        row = connection.execute(
            select(campaigns.c.id, campaigns.c.status, campaigns.c.config).where(
                campaigns.c.vdn_id == campaign.vdn_id,
                campaigns.c.idempotency_key == campaign.idempotency_key,
            )
        ).first()
        if row is None:
            return None
        if bytes(row.config) != campaign.config:
            raise IdempotencyKeyReused(campaign.vdn_id)
        return StoredCampaign(id=int(row.id), status=int(row.status), replayed=True)

    @staticmethod
    def _check_skill_queue(connection: Connection, campaign: NewCampaign) -> None:
        if campaign.skill_id is None:
            return
        found = connection.scalar(
            select(
                exists().where(
                    skill_queues.c.vdn_id == campaign.vdn_id,
                    skill_queues.c.skill_id == campaign.skill_id,
                )
            )
        )
        if not found:
            raise SkillQueueNotFound(campaign.vdn_id, campaign.skill_id)

    @staticmethod
    def _check_name(connection: Connection, campaign: NewCampaign) -> None:
        taken = connection.scalar(
            select(
                exists().where(
                    campaigns.c.vdn_id == campaign.vdn_id, campaigns.c.name == campaign.name
                )
            )
        )
        if taken:
            raise NameTaken(campaign.vdn_id, campaign.name)

    @staticmethod
    def _check_quota(
        connection: Connection, campaign: NewCampaign, max_active: int, now: datetime
    ) -> None:
        active = connection.scalar(
            select(func.count())
            .select_from(campaigns)
            .where(
                campaigns.c.vdn_id == campaign.vdn_id,
                campaigns.c.family == int(campaign.family),
                campaigns.c.end_at > now,
            )
        )
        usage = int(active or 0)
        if usage >= max_active:
            family = campaign.family.label
            raise QuotaExceeded(
                _QUOTA_CODES[campaign.family],
                QuotaProblem(
                    subject=f"vdn:{campaign.vdn_id}/family:{family}",
                    description=(
                        f"VDN {campaign.vdn_id} already has {usage} active {family} campaigns; "
                        f"the limit is {max_active}: delete or let one end before adding another"
                    ),
                    limit=max_active,
                    usage=usage,
                ),
            )
