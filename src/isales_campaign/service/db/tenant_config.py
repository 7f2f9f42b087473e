"""Tenants' configuration (time zone, app keys, skill queues): what the database holds, and
the statements of the changes a seed file makes, in one transaction. What to change is
decided by `service.seed`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update

from isales_campaign.service.db.engine import read_only
from isales_campaign.service.db.failures import said_in_one_line
from isales_campaign.service.db.schema import app_keys, skill_queues, tenants

#: Any number; seeds run at once take turns on this PostgreSQL lock, so that each decides its
#: changes on what the one before it left.
SEED_LOCK_KEY = 7_215_004


@dataclass(frozen=True, slots=True)
class AppKey:
    access_key: str
    secret_key: str = field(repr=False)  # never in logs or tracebacks


@dataclass(frozen=True, slots=True)
class SkillQueue:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class TenantSeed:
    """A tenant as a seed file lists it. None: the file does not say (a time zone or list
    the tenant has is kept; a new tenant gets UTC and none); a list given, even empty, is the
    whole list."""

    vdn_id: int
    time_zone: str | None = None
    app_keys: list[AppKey] | None = None
    skill_queues: list[SkillQueue] | None = None


@dataclass(frozen=True, slots=True)
class Tenant:
    """A tenant as the database holds it."""

    vdn_id: int
    time_zone: str
    #: Access key -> secret key.
    app_keys: dict[str, str] = field(default_factory=dict, repr=False)
    #: Skill queue id -> name.
    skill_queues: dict[int, str] = field(default_factory=dict)


class ChangeKind(StrEnum):
    TENANT_ADDED = "tenant_added"
    TIME_ZONE_CHANGED = "time_zone_changed"
    APP_KEY_ADDED = "app_key_added"
    SECRET_KEY_CHANGED = "secret_key_changed"  # noqa: S105 (a name, not a secret)
    APP_KEY_REVOKED = "app_key_revoked"
    SKILL_QUEUE_ADDED = "skill_queue_added"
    SKILL_QUEUE_RENAMED = "skill_queue_renamed"
    SKILL_QUEUE_REMOVED = "skill_queue_removed"


#: What goes first: removals (so that a key may move from one tenant to another), then new
#: tenants (before their keys and queues), then the rest.
_PHASE = {
    ChangeKind.APP_KEY_REVOKED: 0,
    ChangeKind.SKILL_QUEUE_REMOVED: 0,
    ChangeKind.TENANT_ADDED: 1,
}


@dataclass(frozen=True, slots=True)
class Change:
    """One change of a tenant's configuration. `before` and `after` are a time zone (of a new
    tenant: after) or a skill queue's name (of a new one: after; of a removed one: before)."""

    vdn_id: int
    kind: ChangeKind
    access_key: str | None = None
    skill_queue: int | None = None
    before: str | None = None
    after: str | None = None
    #: The secret of an app key added or changed: applied, never shown (`as_dict`).
    secret_key: str | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The change as printed and logged: `vdn_id`, `change`, then `access_key` (app keys)
        or `skill_queue` (skill queues), then `before` and `after` (time zones and queue
        names); never a secret."""
        shown: dict[str, Any] = {"vdn_id": self.vdn_id, "change": self.kind.value}
        if self.access_key is not None:
            shown["access_key"] = self.access_key
        if self.skill_queue is not None:
            shown["skill_queue"] = self.skill_queue
        if self.kind not in (
            ChangeKind.APP_KEY_ADDED,
            ChangeKind.APP_KEY_REVOKED,
            ChangeKind.SECRET_KEY_CHANGED,
        ):
            shown["before"] = self.before
            shown["after"] = self.after
        return shown


def read(connection: Connection) -> dict[int, Tenant]:
    """Every tenant, by VDN."""
    found = {
        vdn_id: Tenant(vdn_id, time_zone)
        for vdn_id, time_zone in connection.execute(
            select(tenants.c.vdn_id, tenants.c.time_zone).order_by(tenants.c.vdn_id)
        )
    }
    rows = select(app_keys.c.vdn_id, app_keys.c.access_key, app_keys.c.secret_key)
    for vdn_id, access_key, secret_key in connection.execute(rows.order_by(app_keys.c.access_key)):
        found[vdn_id].app_keys[access_key] = secret_key
    rows = select(skill_queues.c.vdn_id, skill_queues.c.skill_id, skill_queues.c.name)
    for vdn_id, skill_id, name in connection.execute(rows.order_by(skill_queues.c.skill_id)):
        found[vdn_id].skill_queues[skill_id] = name
    return found


def read_all(engine: Engine) -> dict[int, Tenant]:
    """Every tenant, by VDN, read without taking a write lock. DatabaseFailed when the
    database fails."""
    with said_in_one_line(), read_only(engine) as connection, connection.begin():
        return read(connection)


Plan = Callable[[dict[int, Tenant]], list["Change"]]


def apply(engine: Engine, plan: Plan, *, dry_run: bool = False) -> list[Change]:
    """The changes `plan` decides on the tenants as they are, made in one transaction (none
    with `dry_run`). DatabaseFailed, with nothing changed, when the database fails."""
    if dry_run:
        return plan(read_all(engine))
    with said_in_one_line(), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SEED_LOCK_KEY})")
        changes = plan(read(connection))
        for change in sorted(changes, key=lambda change: _PHASE.get(change.kind, 2)):
            _make(connection, change)
    return changes


def _make(connection: Connection, change: Change) -> None:
    vdn_id = change.vdn_id
    key = app_keys.c.access_key == change.access_key
    queue = (skill_queues.c.vdn_id == vdn_id) & (skill_queues.c.skill_id == change.skill_queue)
    match change.kind:
        case ChangeKind.TENANT_ADDED:
            connection.execute(tenants.insert().values(vdn_id=vdn_id, time_zone=change.after))
        case ChangeKind.TIME_ZONE_CHANGED:
            connection.execute(
                update(tenants).where(tenants.c.vdn_id == vdn_id).values(time_zone=change.after)
            )
        case ChangeKind.APP_KEY_ADDED:
            connection.execute(
                app_keys.insert().values(
                    access_key=change.access_key, vdn_id=vdn_id, secret_key=change.secret_key
                )
            )
        case ChangeKind.SECRET_KEY_CHANGED:
            connection.execute(
                update(app_keys)
                .where(key, app_keys.c.vdn_id == vdn_id)
                .values(secret_key=change.secret_key)
            )
        case ChangeKind.APP_KEY_REVOKED:
            connection.execute(delete(app_keys).where(key, app_keys.c.vdn_id == vdn_id))
        case ChangeKind.SKILL_QUEUE_ADDED:
            connection.execute(
                skill_queues.insert().values(
                    vdn_id=vdn_id, skill_id=change.skill_queue, name=change.after
                )
            )
        case ChangeKind.SKILL_QUEUE_RENAMED:
            connection.execute(update(skill_queues).where(queue).values(name=change.after))
        case ChangeKind.SKILL_QUEUE_REMOVED:
            connection.execute(delete(skill_queues).where(queue))
