"""The campaign store: reads, and units of work that hold the tenant's lock.

Quotas and name uniqueness must hold across processes and replicas, so every
change runs in one transaction that takes the tenant's lock first:
`BEGIN IMMEDIATE` on SQLite (one writer per file), a row lock on the tenant on
PostgreSQL (one writer per tenant). Checks, counts and writes inside it cannot
race another change of the same tenant. On SQLite the tenant is not read for the lock:
the change's first read tells that it exists (see `TenantTransaction.require_tenant`). A
unique index on the live names backs the name check up; every update also names the
version it read.

Database failures become service errors here, by one table (`_refusal`): a refused value is
INVALID_ARGUMENT, anything else UNAVAILABLE (nothing was changed).

Fixed statements are built once with bind parameters: building them per call
cost more than running them. The statements of a change are also compiled once
per dialect and run on the DBAPI connection (see `prepared`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import (
    DateTime,
    Dialect,
    Engine,
    Select,
    String,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.dml import Insert

from isales_campaign.result_codes import ResultCode
from isales_campaign.service.db.engine import read_only
from isales_campaign.service.db.group_commit import BoundedLock, GroupCommit
from isales_campaign.service.db.kept_connection import KeptConnection
from isales_campaign.service.db.prepared import Prepared, checkout, drop_if_broken
from isales_campaign.service.db.schema import (
    app_keys,
    campaign_changes,
    campaign_counts,
    campaigns,
    idempotency_keys,
    service_secrets,
    skill_queues,
    tenants,
)
from isales_campaign.service.domain.idempotency import KEY_RETENTION
from isales_campaign.service.domain.quotas import Family, FamilyUsage
from isales_campaign.service.errors import (
    DatabaseUnavailable,
    FieldProblem,
    InvalidArgument,
    NameTaken,
    OutcomeUnknown,
    ServiceError,
    TenantNotFound,
)

__all__ = [
    "PAGE_TOKEN_KEY_NAME",
    "CampaignRow",
    "CampaignStore",
    "CampaignValues",
    "ChangeRecord",
    "ChangeRow",
    "Conflicts",
    "HistoryQuery",
    "ListQuery",
    "NewCampaignFacts",
    "Position",
    "StoredKey",
    "Tenant",
    "TenantTransaction",
    "database_errors",
]

log = logging.getLogger(__name__)

#: The name of the key that signs page tokens, in `service_secrets`.
PAGE_TOKEN_KEY_NAME = "page_tokens"  # noqa: S105 (a name, not the secret)
#: A tenant's expired idempotency keys are swept at most this often (by each process).
KEY_SWEEP_INTERVAL = timedelta(minutes=1)
#: Seconds a tenant's time zone is cached; `isales seed` changes show up after this.
TENANT_CACHE_SECONDS = 10.0

_LIVE = campaigns.c.archived_at.is_(None)
_TENANT_ZONE = select(tenants.c.time_zone).where(tenants.c.vdn_id == bindparam("vdn_id"))
_APP_KEY = select(app_keys.c.vdn_id, app_keys.c.secret_key).where(
    app_keys.c.access_key == bindparam("access_key")
)
# FOR UPDATE is a no-op on SQLite, whose BEGIN IMMEDIATE already locks (where this only tells
# that the tenant exists).
_LOCK_TENANT = (
    select(tenants.c.vdn_id).where(tenants.c.vdn_id == bindparam("vdn_id")).with_for_update()
)
_EARLIER_ADD = select(
    idempotency_keys.c.request_digest, idempotency_keys.c.campaign_id, idempotency_keys.c.status
).where(
    idempotency_keys.c.vdn_id == bindparam("vdn_id"),
    idempotency_keys.c.key == bindparam("key"),
    idempotency_keys.c.created_at >= bindparam("cutoff"),
)
_FORGET_OLD_KEYS = delete(idempotency_keys).where(
    idempotency_keys.c.vdn_id == bindparam("vdn_id"),
    idempotency_keys.c.created_at < bindparam("cutoff"),
)


class CampaignRow(NamedTuple):
    """A stored campaign, as the statements of `_CAMPAIGN_ROW` read it (a tuple: a list page
    makes a hundred, and a frozen dataclass cost more than the rest of reading a row)."""

    id: int
    vdn_id: int
    device_type: int
    #: As stored: 2 or 3 (see domain.effective_status).
    status: int
    #: Naive UTC, as every time below.
    end_at: datetime
    config: bytes
    version: int
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


_CAMPAIGN_ROW = tuple(campaigns.c[name] for name in CampaignRow._fields)
_CAMPAIGN = select(*_CAMPAIGN_ROW).where(
    campaigns.c.vdn_id == bindparam("vdn_id"), campaigns.c.id == bindparam("campaign_id")
)
_CHECK_COLUMNS = (
    exists()
    .where(
        skill_queues.c.vdn_id == bindparam("vdn_id"),
        skill_queues.c.skill_id == bindparam("skill_id"),
    )
    .label("queue_exists"),
    exists()
    .where(
        campaigns.c.vdn_id == bindparam("vdn_id"),
        campaigns.c.name == bindparam("name"),
        campaigns.c.id != bindparam("exclude_id"),
        _LIVE,
    )
    .label("name_taken"),
)
#: Every check of a renamed campaign, in one round trip.
_CHECKS = select(*_CHECK_COLUMNS)
_IN_FAMILY = (
    campaigns.c.vdn_id == bindparam("vdn_id"),
    campaigns.c.family == bindparam("family"),
    _LIVE,
)


_FAMILY_COUNTS = (
    campaign_counts.c.vdn_id == bindparam("vdn_id"),
    campaign_counts.c.family == bindparam("family"),
)


def _family_count(column: Any) -> Any:
    """A column of the family's counts (kept by triggers: see migration 0009); NULL when the
    family never had a campaign."""
    return select(column).where(*_FAMILY_COUNTS).scalar_subquery()


def _ending_between(after: Any, through: Any, family: tuple[Any, ...] = _IN_FAMILY) -> Any:
    """How many of the `family`'s live campaigns end after `after` and by `through`: a range
    of the quota index, empty when the two are one."""
    ending = (campaigns.c.end_at > after, campaigns.c.end_at <= through)
    return select(func.count()).where(*family, *ending).scalar_subquery()


_ENDED_THROUGH = _family_count(campaign_counts.c.ended_through)
#: The live campaigns of the family of a row of `campaign_counts`.
_COUNTED_FAMILY = (
    campaigns.c.vdn_id == campaign_counts.c.vdn_id,
    campaigns.c.family == campaign_counts.c.family,
    _LIVE,
)
_NOW = bindparam("now", type_=DateTime)
#: A tenant's live campaigns per family, those not ended by `now` and all of them, from its
#: counts (as an add reads them, see `_ADD_CHECKS`, without moving them on): its count rows
#: and the campaigns that ended since an add last moved them on, not all it holds.
_USAGE = select(
    campaign_counts.c.family,
    (
        campaign_counts.c.live
        - campaign_counts.c.ended
        - _ending_between(campaign_counts.c.ended_through, _NOW, _COUNTED_FAMILY)
        + _ending_between(_NOW, campaign_counts.c.ended_through, _COUNTED_FAMILY)
    ).label("active"),
    campaign_counts.c.live.label("total"),
).where(campaign_counts.c.vdn_id == bindparam("vdn_id"), campaign_counts.c.live > 0)


def _earlier(column: Any) -> Any:
    """A column of the earlier add with the same idempotency key, if there is one."""
    return _EARLIER_ADD.with_only_columns(column).scalar_subquery().label(f"earlier_{column.key}")


#: Every check of a new campaign, its family's counts, and the earlier add with its
#: idempotency key, in one round trip; and whether the tenant exists. The family's campaigns
#: ended by `now` are those counted ended by `ended_through`, plus those that ended since, or
#: less those that end after `now` (should the clock be behind the count's).
_ADD_CHECKS = select(
    exists().where(tenants.c.vdn_id == bindparam("vdn_id")).label("tenant_exists"),
    *_CHECK_COLUMNS,
    func.coalesce(_family_count(campaign_counts.c.live), 0).label("live"),
    func.coalesce(_family_count(campaign_counts.c.ended), 0).label("ended"),
    _ending_between(_ENDED_THROUGH, bindparam("now")).label("ended_since"),
    _ending_between(bindparam("now"), _ENDED_THROUGH).label("ending_after_now"),
    *(_earlier(column) for column in _EARLIER_ADD.selected_columns),
)
#: The family's count of ended campaigns moved on to `now`, which they were counted by.
_MOVE_ENDED = (
    update(campaign_counts)
    .where(*_FAMILY_COUNTS, campaign_counts.c.ended_through < bindparam("now"))
    .values(ended=bindparam("ended"), ended_through=bindparam("now"))
)
_INSERT = insert(campaigns).returning(campaigns.c.id)
#: The columns an insert sets besides the configuration's (`CampaignValues.COLUMNS`).
_INSERT_COLUMNS = ("vdn_id", "status", "version", "created_at", "updated_at")
_KEY_COLUMNS = ("vdn_id", "key", "request_digest", "campaign_id", "status", "created_at")


def _remember_key(dialect: Dialect) -> Insert:
    """The row of a key; it replaces the row of an expired key that no sweep took yet (only
    an expired one: `check_new` found none alive under the same tenant lock)."""
    dialect_insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(idempotency_keys)
    return statement.on_conflict_do_update(
        index_elements=[idempotency_keys.c.vdn_id, idempotency_keys.c.key],
        set_={name: statement.excluded[name] for name in _KEY_COLUMNS[2:]},
    )


_UPDATE = (
    update(campaigns)
    .where(campaigns.c.id == bindparam("campaign_id"), campaigns.c.version == bindparam("seen"))
    .values(version=campaigns.c.version + 1)
)
_DELETE = delete(campaigns).where(campaigns.c.id == bindparam("campaign_id"))
_RECORD_COLUMNS = (
    "vdn_id", "sequence", "campaign_id", "kind", "version", "change_time", "actor", "config",
    "status", "changed_fields",
)  # fmt: skip
#: The tenant's latest sequence: its last record's, or, when pruning left none, the last one
#: pruned. Read under the tenant's lock, the next one is gap-free and in commit order with any
#: number of replicas (a database sequence would be neither).
_LATEST_SEQUENCE = func.coalesce(
    select(func.max(campaign_changes.c.sequence))
    .where(campaign_changes.c.vdn_id == bindparam("tenant"))
    .scalar_subquery(),
    select(tenants.c.pruned_sequence)
    .where(tenants.c.vdn_id == bindparam("tenant"))
    .scalar_subquery(),
)
#: A record under the tenant's next sequence, in one statement (max() reads the last entry of
#: the primary key's index). Nothing is returned: reading a RETURNING row costs another step
#: of the statement, and nobody needs the sequence.
_RECORD = insert(campaign_changes).values(sequence=_LATEST_SEQUENCE + 1)


class ChangeRow(NamedTuple):
    """A recorded change, as stored (times naive UTC)."""

    vdn_id: int
    sequence: int
    campaign_id: int
    kind: int
    version: int
    change_time: datetime
    #: The Actor message, serialized.
    actor: bytes
    #: The Campaign message, serialized.
    config: bytes
    status: int
    #: Comma-separated paths.
    changed_fields: str


_CHANGE_ROW = tuple(campaign_changes.c[name] for name in ChangeRow._fields)
#: The tenant's latest sequence, and its oldest retained one: when none is retained (no change
#: yet, or all pruned), the one after the last pruned, which its next change will take.
_HISTORY_BOUNDS = select(
    _LATEST_SEQUENCE,
    func.coalesce(
        select(func.min(campaign_changes.c.sequence))
        .where(campaign_changes.c.vdn_id == tenants.c.vdn_id)
        .scalar_subquery(),
        tenants.c.pruned_sequence + 1,
    ),
).where(tenants.c.vdn_id == bindparam("vdn_id"))


# -- retention: a tenant's oldest records go, a batch per transaction under its lock ---------

#: The tenants whose oldest record was made before `before` (one entry of the primary key per
#: tenant: a pass with nothing to prune reads no more).
_TENANTS_TO_PRUNE = (
    select(tenants.c.vdn_id)
    .where(
        select(campaign_changes.c.change_time)
        .where(campaign_changes.c.vdn_id == tenants.c.vdn_id)
        .order_by(campaign_changes.c.sequence)
        .limit(1)
        .scalar_subquery()
        < bindparam("before")
    )
    .order_by(tenants.c.vdn_id)
)
_HEAD = (
    select(campaign_changes.c.sequence, campaign_changes.c.change_time)
    .where(campaign_changes.c.vdn_id == bindparam("vdn_id"))
    .order_by(campaign_changes.c.sequence)
    .limit(bindparam("limit"))
    .subquery("head")
)
#: The last sequence of a batch: of the tenant's `limit` oldest records (a range of the
#: primary key), those before the first one made at or after `before`, so that what is kept
#: stays contiguous even where the clock went back; NULL when the tenant has no record.
_LAST_PRUNABLE = select(
    func.coalesce(
        func.min(case((_HEAD.c.change_time >= bindparam("before"), _HEAD.c.sequence))) - 1,
        func.max(_HEAD.c.sequence),
    ).label("last")
)
_PRUNE = delete(campaign_changes).where(
    campaign_changes.c.vdn_id == bindparam("vdn_id"),
    campaign_changes.c.sequence <= bindparam("last"),
)
#: Forward only, so that no sequence is ever given twice (see `_LATEST_SEQUENCE`).
_MOVE_PRUNED = (
    update(tenants)
    .where(tenants.c.vdn_id == bindparam("vdn_id"), tenants.c.pruned_sequence < bindparam("last"))
    .values(pruned_sequence=bindparam("last"))
)


@dataclass(frozen=True, slots=True)
class Tenant:
    vdn_id: int
    time_zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class CampaignValues:
    """What a campaign's configuration sets in its row."""

    name: str
    family: Family
    device_type: int
    #: The skill queue a skill-queue campaign uses; None for IVR campaigns.
    skill_id: int | None
    #: Naive UTC.
    begin_at: datetime
    end_at: datetime
    cc_id: int | None
    #: The whole Campaign message, serialized.
    config: bytes

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "name", "family", "device_type", "begin_at", "end_at", "cc_id", "config",
    )  # fmt: skip

    def columns(self) -> dict[str, Any]:
        """The values of COLUMNS."""
        return {
            "name": self.name,
            "family": int(self.family),
            "device_type": self.device_type,
            "begin_at": self.begin_at,
            "end_at": self.end_at,
            "cc_id": self.cc_id,
            "config": self.config,
        }


class ChangeRecord(NamedTuple):
    """What the record of a change holds, besides its tenant and sequence (a tuple, made for
    every change: half the cost of a frozen dataclass)."""

    campaign_id: int
    kind: int
    version: int
    change_time: datetime
    actor: bytes
    config: bytes
    status: int
    changed_fields: str = ""


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    vdn_id: int
    after: int
    limit: int
    campaign_id: int | None = None


@dataclass(frozen=True, slots=True)
class StoredKey:
    """What an add with an idempotency key asked for (a digest of its campaign) and answered."""

    digest: bytes
    campaign_id: int
    status: int


@dataclass(frozen=True, slots=True)
class Conflicts:
    """What the rules of a campaign's configuration ask of the tenant's stored state."""

    queue_exists: bool
    name_taken: bool


@dataclass(frozen=True, slots=True)
class NewCampaignFacts:
    """What the rules of a new campaign ask of the tenant's stored state."""

    conflicts: Conflicts
    #: Its family's usage before it.
    usage: FamilyUsage
    #: The record of its idempotency key, if it has one that is kept.
    earlier: StoredKey | None


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ends in the list order (newest first, then by id)."""

    created_at: datetime
    id: int


@dataclass(frozen=True, slots=True)
class ListQuery:
    """Filters and paging of a list; times are naive UTC."""

    vdn_id: int
    now: datetime
    limit: int
    skip: int = 0
    after: Position | None = None
    name_contains: str = ""
    #: An effective status (2, 3, 4), or 0 for all.
    status: int = 0
    #: 0 for all.
    device_type: int = 0
    begin_from: datetime | None = None
    end_to: datetime | None = None
    cc_id: int | None = None
    archived: bool = False


class CampaignStore:
    def __init__(self, engine: Engine, *, lock_timeout: float | None = None) -> None:
        """`lock_timeout`: seconds a call waits for this process's turn to read or write on
        SQLite (None: no bound)."""
        self._engine = engine
        sqlite = engine.dialect.name == "sqlite"
        self._statements = _Statements(engine.dialect)
        self._read_begin = Prepared(text("BEGIN"), engine.dialect) if sqlite else None
        self._lists: dict[_ListShape, tuple[Prepared, Prepared | None]] = {}
        self._tenants: dict[int, tuple[float, Tenant]] = {}
        self._key_sweeps: dict[int, datetime] = {}
        # SQLite has one writer per file. Threads of this process queue here
        # instead of in SQLite's busy handler, which sleeps in steps of up to
        # 100 ms and is not woken when the lock frees; and the writes queued behind
        # one another share a commit.
        self._group_commit = (
            GroupCommit(
                engine,
                BoundedLock(lock_timeout, "write"),
                commit=self._commit,
                roll_back=_roll_back,
            )
            if sqlite
            else None
        )
        # And one reader at a time: sqlite3 lets go of the GIL for every row it steps to, so
        # readers in several threads hand the GIL back and forth a hundred times per page
        # (a list page cost several times the CPU with 8 threads as with one). Reads
        # still run beside the writer.
        self._reader: AbstractContextManager[object] = (
            BoundedLock(lock_timeout, "read") if sqlite else nullcontext()
        )
        self._read_connection = KeptConnection(engine) if sqlite else None
        #: PostgreSQL locks the tenant's row first; SQLite's BEGIN IMMEDIATE has locked.
        self._locks_tenant_row = not sqlite
        #: Called with a tenant's VDN after a change of it was committed (the change feed).
        self.on_change: Callable[[int], None] = _nobody_listens

    def close(self) -> None:
        """Give back the connections kept for SQLite's turns, each after the call that has
        it, if any (before the engine is disposed). A turn not had within the lock timeout
        is logged and its connection left to the process's end."""
        if self._group_commit is not None:
            _closing("write", self._group_commit.close)
        if self._read_connection is not None:
            kept = self._read_connection

            def close_reads() -> None:
                with self._reader:
                    kept.close()

            _closing("read", close_reads)

    def tenant(self, vdn_id: int) -> Tenant:
        """The tenant; TenantNotFound when it is not configured."""
        cached = self._tenants.get(vdn_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        with self._reading() as connection:
            row = self._statements.tenant_zone.first(connection, {"vdn_id": vdn_id})
        if row is None:
            raise TenantNotFound(vdn_id)
        tenant = Tenant(vdn_id, ZoneInfo(row.time_zone))
        self._tenants[vdn_id] = (time.monotonic() + TENANT_CACHE_SECONDS, tenant)
        return tenant

    def secret(self, name: str) -> bytes:
        """A secret that the migrations made and every replica shares (`service_secrets`)."""
        with read_only(self._engine) as connection:
            found = connection.scalar(
                select(service_secrets.c.secret).where(service_secrets.c.name == name)
            )
        if found is None:
            raise LookupError(f"the database holds no secret {name!r}: run isales migrate")
        return bytes(found)

    def app_key(self, access_key: str) -> tuple[int, str] | None:
        """The VDN and secret key of an access key."""
        with self._reading() as connection:
            row = self._statements.app_key.first(connection, {"access_key": access_key})
        return None if row is None else (int(row.vdn_id), str(row.secret_key))

    def campaign(self, vdn_id: int, campaign_id: int) -> CampaignRow | None:
        """One campaign of the tenant, archived or not."""
        with self._reading() as connection:
            row: CampaignRow | None = self._statements.campaign.first(
                connection, {"vdn_id": vdn_id, "campaign_id": campaign_id}
            )
        return row

    def campaigns(
        self, query: ListQuery
    ) -> tuple[list[CampaignRow], int, dict[Family, FamilyUsage]]:
        """One page of the tenant's campaigns, how many match the filters in all, and the
        tenant's usage per family, read in one transaction."""
        page, total = self._list_statements(_ListShape.of(query))
        values = _list_values(query)
        with self._reading(snapshot=True) as connection:
            rows: list[CampaignRow] = page.all(connection, values)
            usage = _usage_of(self._statements.usage.all(connection, values))
            if total is None:  # all live campaigns match: the usage has counted them
                return rows, sum(family.total for family in usage.values()), usage
            counted = total.first(connection, values)
        return rows, int(counted.total), usage

    @contextmanager
    def _reading(self, *, snapshot: bool = False) -> Iterator[PoolProxiedConnection]:
        """A connection for reads on the DBAPI path, in this process's turn to read; with
        `snapshot`, its reads see one state of the database (on PostgreSQL each statement
        sees its own, as on SQLAlchemy's path)."""
        with database_errors(), self._reader:
            kept = self._read_connection
            connection = checkout(self._engine) if kept is None else kept.take()
            try:
                if snapshot and self._read_begin is not None:
                    self._read_begin.execute(connection, {}).close()
                yield connection
            finally:
                _roll_back(connection)  # ends the read's transaction
                if kept is None:
                    connection.close()
                else:
                    kept.keep(connection)  # or drops it, when the rollback failed

    def _list_statements(self, shape: _ListShape) -> tuple[Prepared, Prepared | None]:
        """A list's page and count statements, prepared once per shape of its filters; no
        count statement when nothing but the tenant's live campaigns is asked for."""
        prepared = self._lists.get(shape)
        if prepared is None:
            matching = _filtered(shape, self._engine.dialect.name)
            page = (
                matching.order_by(campaigns.c.created_at.desc(), campaigns.c.id.desc())
                .offset(bindparam("skip"))
                .limit(bindparam("limit"))
            )
            if shape.after:
                after = bindparam("after_created_at", type_=DateTime)
                page = page.where(
                    or_(
                        campaigns.c.created_at < after,
                        and_(
                            campaigns.c.created_at == after, campaigns.c.id < bindparam("after_id")
                        ),
                    )
                )
            total = select(func.count().label("total")).select_from(matching.subquery())
            dialect = self._engine.dialect
            prepared = self._lists[shape] = (
                Prepared(page, dialect, row=CampaignRow),
                None if shape.all_live else Prepared(total, dialect),
            )
        return prepared

    @property
    def commits_in_groups(self) -> bool:
        """Whether writes share commits (SQLite: `group_commit`), so that a write made on an
        event loop, in a greenlet, lets the loop run while it waits for its commit."""
        return self._group_commit is not None

    @property
    def writes_waiting(self) -> int:
        """Writes of this process waiting for their turn (SQLite; none on PostgreSQL)."""
        return self._group_commit.waiting if self._group_commit else 0

    def history(self, query: HistoryQuery) -> tuple[list[ChangeRow], int, int]:
        """The tenant's recorded changes after `query.after` (of one campaign, or all), up to
        `query.limit`, ascending; with the tenant's latest sequence and its oldest retained
        one (see `_HISTORY_BOUNDS`), read in one transaction."""
        statements = self._statements
        values = {
            "vdn_id": query.vdn_id,
            "tenant": query.vdn_id,
            "after": query.after,
            "limit": query.limit,
            "campaign_id": query.campaign_id,
        }
        page = statements.history if query.campaign_id is None else statements.campaign_history
        with self._reading(snapshot=True) as connection:
            bounds = statements.history_bounds.first(connection, values)
            rows: list[ChangeRow] = page.all(connection, values)
        if bounds is None:
            raise TenantNotFound(query.vdn_id)
        latest, oldest = bounds
        return rows, int(latest), int(oldest)

    def tenants_to_prune(self, before: datetime) -> list[int]:
        """The tenants whose oldest recorded change was made before `before` (naive UTC)."""
        with self._reading() as connection:
            rows = self._statements.tenants_to_prune.all(connection, {"before": before})
        return [int(row.vdn_id) for row in rows]

    def usage(self, vdn_id: int, now: datetime) -> dict[Family, FamilyUsage]:
        """The tenant's live campaigns per family; `now` is naive UTC."""
        with self._reading() as connection:
            rows = self._statements.usage.all(connection, {"vdn_id": vdn_id, "now": now})
        return _usage_of(rows)

    @contextmanager
    def unit_of_work(self, vdn_id: int) -> Iterator[TenantTransaction]:
        """A transaction holding the tenant's write lock; it commits when the block ends
        without an exception. TenantNotFound when the tenant is not configured: at once on
        PostgreSQL, on SQLite from the block's first read or write (no write is made for
        such a tenant; see `TenantTransaction.require_tenant`), or as the block ends.

        It runs on the pool's DBAPI connection with prepared statements (see `prepared`); on
        SQLite, in a group of writes that share a commit (see `group_commit`)."""
        writing = self._group_commit.write() if self._group_commit else self._writing()
        with database_errors(), writing as connection:
            transaction = TenantTransaction(connection, self._statements, vdn_id, self._key_sweeps)
            if self._locks_tenant_row:
                transaction.require_tenant()
            yield transaction
            transaction.require_tenant()
        if transaction.recorded:
            self.on_change(vdn_id)

    @contextmanager
    def _writing(self) -> Iterator[PoolProxiedConnection]:
        """A transaction of its own (PostgreSQL begins it by itself), committed when the
        block ends without an exception."""
        connection = checkout(self._engine)
        try:
            yield connection
            self._commit(connection)
        except BaseException:
            _roll_back(connection)
            raise
        finally:
            connection.close()

    def _commit(self, connection: PoolProxiedConnection) -> None:
        dialect = self._engine.dialect
        try:
            connection.commit()
        except dialect.loaded_dbapi.Error as error:
            # The COMMIT may have reached the database before the connection broke.
            drop_if_broken(error, connection, dialect)
            log.exception("the database did not confirm a commit")
            raise OutcomeUnknown() from None


def _roll_back(connection: PoolProxiedConnection) -> None:
    """Roll back, if the connection still can; the pool drops it when it cannot."""
    if connection.is_valid:
        try:
            connection.rollback()
        except Exception:
            log.warning("a rollback failed; the connection is dropped", exc_info=True)
            connection.invalidate()


class _Statements:
    """The statements of the reads and changes, prepared for one engine's dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.tenant_zone = Prepared(_TENANT_ZONE, dialect)
        self.app_key = Prepared(_APP_KEY, dialect)
        self.lock_tenant = Prepared(_LOCK_TENANT, dialect)
        self.earlier_add = Prepared(_EARLIER_ADD, dialect)
        self.checks = Prepared(_CHECKS, dialect)
        self.add_checks = Prepared(_ADD_CHECKS, dialect)
        self.move_ended = Prepared(_MOVE_ENDED, dialect)
        self.usage = Prepared(_USAGE, dialect)
        self.insert = Prepared(_INSERT, dialect, (*CampaignValues.COLUMNS, *_INSERT_COLUMNS))
        self.forget_old_keys = Prepared(_FORGET_OLD_KEYS, dialect)
        self.remember_key = Prepared(_remember_key(dialect), dialect, _KEY_COLUMNS)
        self.campaign = Prepared(_CAMPAIGN, dialect, row=CampaignRow)
        self.delete = Prepared(_DELETE, dialect)
        self.record = Prepared(_RECORD, dialect, _RECORD_COLUMNS[:1] + _RECORD_COLUMNS[2:])
        self.history_bounds = Prepared(_HISTORY_BOUNDS, dialect)
        self.history = Prepared(_history(campaign=False), dialect, row=ChangeRow)
        self.campaign_history = Prepared(_history(campaign=True), dialect, row=ChangeRow)
        self.tenants_to_prune = Prepared(_TENANTS_TO_PRUNE, dialect)
        self.last_prunable = Prepared(_LAST_PRUNABLE, dialect)
        self.prune = Prepared(_PRUNE, dialect)
        self.move_pruned = Prepared(_MOVE_PRUNED, dialect)
        self._dialect = dialect
        self._updates: dict[tuple[str, ...], Prepared] = {}

    def update(self, columns: tuple[str, ...]) -> Prepared:
        """The version-checked update of these columns."""
        prepared = self._updates.get(columns)
        if prepared is None:
            prepared = self._updates[columns] = Prepared(_UPDATE, self._dialect, columns)
        return prepared


class TenantTransaction:
    """The reads and writes of one change, under the tenant's lock."""

    def __init__(
        self,
        connection: PoolProxiedConnection,
        statements: _Statements,
        vdn_id: int,
        key_sweeps: dict[int, datetime],
    ) -> None:
        self._connection = connection
        self._statements = statements
        self.vdn_id = vdn_id
        #: When each tenant's expired keys were last swept.
        self._key_sweeps = key_sweeps
        #: Whether a change was recorded.
        self.recorded = False
        #: Whether the tenant is known to exist.
        self._tenant_known = False

    def require_tenant(self) -> None:
        """TenantNotFound unless the tenant is configured; read once per transaction (and
        not at all when a read of a campaign or of a new campaign's facts told it). On
        SQLite, BEGIN IMMEDIATE is the lock: reading the tenant first cost a statement per
        change, 11 % of its CPU at concurrency 32. Every write requires it first."""
        if self._tenant_known:
            return
        if self._statements.lock_tenant.first(self._connection, {"vdn_id": self.vdn_id}) is None:
            raise TenantNotFound(self.vdn_id)
        self._tenant_known = True

    def execute(self, statement: Prepared, values: dict[str, Any] | None = None) -> Any:
        """Run a statement in this transaction; its DBAPI cursor."""
        return statement.execute(self._connection, values or {})

    def stored_key(self, key: str, now: datetime) -> StoredKey | None:
        """The record of an earlier add with the idempotency `key`, if it is still kept."""
        self.require_tenant()
        row = self._statements.earlier_add.first(
            self._connection,
            {"vdn_id": self.vdn_id, "key": key, "cutoff": now - KEY_RETENTION},
        )
        if row is None:
            return None
        return StoredKey(bytes(row.request_digest), int(row.campaign_id), int(row.status))

    def facts_of_change(self, values: CampaignValues, *, exclude_id: int) -> Conflicts:
        """Whether the skill queue exists and the name is taken among the live campaigns
        other than `exclude_id` (a campaign being changed)."""
        checks = self._checked(self._statements.checks, values, exclude_id=exclude_id)
        return Conflicts(bool(checks.queue_exists), bool(checks.name_taken))

    def facts_of_new(
        self, values: CampaignValues, now: datetime, *, key: str = ""
    ) -> NewCampaignFacts:
        """As `facts_of_change` for a new campaign, its family's usage before it (from the
        family's counts, whatever the tenant's size), and the record of the idempotency
        `key`, in one round trip."""
        checks = self._checked(
            self._statements.add_checks,
            values,
            exclude_id=-1,
            now=now,
            key=key,  # no key was ever stored as ""
            cutoff=now - KEY_RETENTION,
        )
        if not checks.tenant_exists:
            raise TenantNotFound(self.vdn_id)
        self._tenant_known = True
        ended = checks.ended + checks.ended_since - checks.ending_after_now
        if checks.ended_since:
            # The count moves on to `now`: the next add counts only what ends after it.
            moved = {
                "vdn_id": self.vdn_id,
                "family": int(values.family),
                "ended": ended,
                "now": now,
            }
            self.execute(self._statements.move_ended, moved).close()
        earlier = (
            None
            if checks.earlier_campaign_id is None
            else StoredKey(
                bytes(checks.earlier_request_digest),
                int(checks.earlier_campaign_id),
                int(checks.earlier_status),
            )
        )
        return NewCampaignFacts(
            Conflicts(bool(checks.queue_exists), bool(checks.name_taken)),
            FamilyUsage(active=int(checks.live - ended), total=int(checks.live)),
            earlier,
        )

    def _checked(self, statement: Prepared, values: CampaignValues, **params: Any) -> Any:
        """The row of a statement of checks about `values`."""
        return statement.first(
            self._connection,
            {
                "vdn_id": self.vdn_id,
                # IVR campaigns name no queue: -1 matches none, and is not asked about.
                "skill_id": -1 if values.skill_id is None else values.skill_id,
                "name": values.name,
                "family": int(values.family),
                **params,
            },
        )

    def insert(self, values: CampaignValues, *, status: int, now: datetime) -> int:
        self.require_tenant()
        row = {
            **values.columns(),
            "vdn_id": self.vdn_id,
            "status": status,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        with self._name_conflicts(values.name):
            inserted = self._statements.insert.first(self._connection, row)
        assert inserted is not None
        return int(inserted.id)

    def remember_key(
        self, key: str, digest: bytes, campaign_id: int, status: int, now: datetime
    ) -> None:
        """Keep the key for KEY_RETENTION. The tenant's expired keys go, at most once a
        KEY_SWEEP_INTERVAL: the table stays bounded without a sweep on every add."""
        self.require_tenant()
        swept = self._key_sweeps.get(self.vdn_id)
        if swept is None or not now - KEY_SWEEP_INTERVAL < swept <= now:
            self.execute(
                self._statements.forget_old_keys,
                {"vdn_id": self.vdn_id, "cutoff": now - KEY_RETENTION},
            ).close()
            self._key_sweeps[self.vdn_id] = now
        self.execute(
            self._statements.remember_key,
            {
                "vdn_id": self.vdn_id,
                "key": key,
                "request_digest": digest,
                "campaign_id": campaign_id,
                "status": status,
                "created_at": now,
            },
        ).close()

    def campaign(self, campaign_id: int) -> CampaignRow | None:
        row: CampaignRow | None = self._statements.campaign.first(
            self._connection, {"vdn_id": self.vdn_id, "campaign_id": campaign_id}
        )
        if row is None:
            self.require_tenant()  # an unknown tenant is told apart from an unknown campaign
        else:
            self._tenant_known = True  # a campaign's row names a configured tenant
        return row

    def update(
        self,
        row: CampaignRow,
        *,
        now: datetime,
        values: CampaignValues | None = None,
        status: int | None = None,
        archived: bool = False,
    ) -> None:
        """Change the campaign as read in `row` (its version must still be current)."""
        self.require_tenant()
        changes: dict[str, Any] = {"updated_at": now}
        if values is not None:
            changes.update(values.columns())
        if status is not None:
            changes["status"] = status
        if archived:
            changes["archived_at"] = now
        statement = self._statements.update(tuple(changes))
        with self._name_conflicts(values.name if values else None):
            cursor = self.execute(
                statement, {**changes, "campaign_id": row.id, "seen": row.version}
            )
        changed = cursor.rowcount
        cursor.close()
        if changed != 1:
            # The tenant's lock rules this out: nothing was changed, and it is our fault.
            raise RuntimeError(f"campaign {row.id} changed under its tenant's lock")

    @contextmanager
    def _name_conflicts(self, name: str | None) -> Iterator[None]:
        """A write of `name` (None: the name is not written)."""
        try:
            yield
        except IntegrityError as error:
            raise _refusal(error, self.vdn_id, name) from None

    def delete(self, row: CampaignRow) -> None:
        self.require_tenant()
        self.execute(self._statements.delete, {"campaign_id": row.id}).close()

    def record(self, change: ChangeRecord) -> None:
        """Record a change made in this transaction, under the tenant's next sequence (see
        `_LATEST_SEQUENCE`)."""
        self.require_tenant()
        self.execute(
            self._statements.record,
            {
                "vdn_id": self.vdn_id,
                "tenant": self.vdn_id,
                "campaign_id": change.campaign_id,
                "kind": change.kind,
                "version": change.version,
                "change_time": change.change_time,
                "actor": change.actor,
                "config": change.config,
                "status": change.status,
                "changed_fields": change.changed_fields,
            },
        ).close()
        self.recorded = True

    def prune_changes(self, before: datetime, limit: int) -> int:
        """Delete the tenant's oldest records made before `before` (naive UTC), up to
        `limit` and none after its first record made since, and move its pruned sequence to
        the last one deleted, for the next change to continue after it; how many went."""
        self.require_tenant()
        found = self._statements.last_prunable.first(
            self._connection, {"vdn_id": self.vdn_id, "before": before, "limit": limit}
        )
        if found is None or found.last is None:
            return 0
        values = {"vdn_id": self.vdn_id, "last": int(found.last)}
        cursor = self.execute(self._statements.prune, values)
        deleted = int(cursor.rowcount)
        cursor.close()
        self.execute(self._statements.move_pruned, values).close()
        return deleted


def _nobody_listens(_vdn_id: int) -> None:
    pass


def _closing(turn: str, close: Callable[[], None]) -> None:
    try:
        close()
    except DatabaseUnavailable:
        log.warning("the %s connection was still in use when the store closed", turn)


@contextmanager
def database_errors() -> Iterator[None]:
    """Database failures as the service answers them (`_refusal`); service errors pass."""
    try:
        yield
    except SQLAlchemyError as error:
        raise _refusal(error) from None


def _refusal(
    error: SQLAlchemyError, vdn_id: int | None = None, name: str | None = None
) -> ServiceError:
    """The one table of database failures and the refusals they are answered with."""
    if isinstance(error, IntegrityError) and name is not None and _is_name_conflict(error):
        # The unique index on live names, when the name check raced a change elsewhere:
        # answered as the name check would have.
        assert vdn_id is not None
        return NameTaken(vdn_id, name)
    if isinstance(error, DataError):
        # A value the contract let through but the database refuses: the request's fault,
        # so retrying would not help.
        log.warning("the database refused a value of a request")
        return InvalidArgument([_UNSTORABLE])
    log.error("database operation failed", exc_info=error)
    return DatabaseUnavailable()


_UNSTORABLE = FieldProblem(
    "campaign", ResultCode.RESULT_CODE_PARAMETER_ERROR, "holds a value the database cannot store"
)


def _is_name_conflict(error: IntegrityError) -> bool:
    text = str(error.orig)
    return "uq_campaigns_live_name" in text or "campaigns.name" in text


def _usage_of(rows: Iterable[Any]) -> dict[Family, FamilyUsage]:
    return {Family(row.family): FamilyUsage(int(row.active), int(row.total)) for row in rows}


class _ListShape(NamedTuple):
    """Which filters a list uses; its statements are prepared once per shape."""

    name: bool
    #: 4 for ended campaigns, -1 for a stored status (not ended), 0 for any.
    status: int
    device_type: bool
    begin_from: bool
    end_to: bool
    cc_id: bool
    archived: bool
    after: bool

    @property
    def all_live(self) -> bool:
        """Whether every live campaign of the tenant matches (a page token only pages)."""
        filters = (self.name, self.status, self.device_type, self.begin_from, self.end_to)
        return not (any(filters) or self.cc_id or self.archived)

    @classmethod
    def of(cls, query: ListQuery) -> _ListShape:
        return cls(
            name=bool(query.name_contains),
            status=query.status if query.status in (0, 4) else -1,
            device_type=bool(query.device_type),
            begin_from=query.begin_from is not None,
            end_to=query.end_to is not None,
            cc_id=query.cc_id is not None,
            archived=query.archived,
            after=query.after is not None,
        )


def _list_values(query: ListQuery) -> dict[str, Any]:
    """The values of every parameter a list's statements may have."""
    after = query.after
    return {
        "vdn_id": query.vdn_id,
        "now": query.now,
        "name_contains": query.name_contains,
        "status": query.status,
        "device_type": query.device_type,
        "begin_from": query.begin_from,
        "end_to": query.end_to,
        "cc_id": query.cc_id,
        "skip": query.skip,
        "limit": query.limit,
        "after_created_at": None if after is None else after.created_at,
        "after_id": None if after is None else after.id,
    }


def _filtered(shape: _ListShape, dialect: str) -> Select[Any]:
    conditions: list[Any] = [
        campaigns.c.vdn_id == bindparam("vdn_id"),
        campaigns.c.archived_at.is_not(None) if shape.archived else _LIVE,
    ]
    if shape.name:
        # A position, not LIKE: no wildcards in the text, case-sensitive on both databases.
        position = func.strpos if dialect == "postgresql" else func.instr
        name = bindparam("name_contains", type_=String)
        conditions.append(position(campaigns.c.name, name) > 0)
    now = bindparam("now", type_=DateTime)
    if shape.status == 4:
        conditions.append(campaigns.c.end_at <= now)
    elif shape.status:
        conditions += [campaigns.c.status == bindparam("status"), campaigns.c.end_at > now]
    if shape.device_type:
        conditions.append(campaigns.c.device_type == bindparam("device_type"))
    if shape.begin_from:
        conditions.append(campaigns.c.begin_at >= bindparam("begin_from"))
    if shape.end_to:
        conditions.append(campaigns.c.end_at <= bindparam("end_to"))
    if shape.cc_id:
        conditions.append(campaigns.c.cc_id == bindparam("cc_id"))
    return select(*_CAMPAIGN_ROW).where(*conditions)


def _history(*, campaign: bool) -> Select[Any]:
    """A page of a tenant's changes after a sequence, ascending; of one campaign, or all."""
    conditions = [
        campaign_changes.c.vdn_id == bindparam("vdn_id"),
        campaign_changes.c.sequence > bindparam("after"),
    ]
    if campaign:
        conditions.append(campaign_changes.c.campaign_id == bindparam("campaign_id"))
    return (
        select(*_CHANGE_ROW)
        .where(*conditions)
        .order_by(campaign_changes.c.sequence)
        .limit(bindparam("limit"))
    )
