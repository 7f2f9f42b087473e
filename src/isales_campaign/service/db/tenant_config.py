"""Tenants' configuration (time zone, app keys, skill queues) as a seed file sets it: the
statements, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Connection, Engine, delete, select, update

from isales_campaign.service.db.schema import app_keys, skill_queues, tenants
from isales_campaign.service.errors import SeedError


@dataclass(frozen=True, slots=True)
class AppKey:
    access_key: str
    secret_key: str


@dataclass(frozen=True, slots=True)
class SkillQueue:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class TenantSeed:
    vdn_id: int
    time_zone: str = "UTC"
    app_keys: list[AppKey] = field(default_factory=list)
    skill_queues: list[SkillQueue] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SeedOutcome:
    tenants: int
    #: App keys and skill queues removed because the file no longer lists them.
    revoked_keys: int
    removed_queues: int


def apply(engine: Engine, seeds: list[TenantSeed]) -> SeedOutcome:
    """Insert, update and remove everything in one transaction."""
    revoked_keys = removed_queues = 0
    with engine.begin() as connection:
        # Removals first, so a key may move from one listed tenant to another.
        for seed in seeds:
            listed_keys = [key.access_key for key in seed.app_keys]
            listed_queues = [queue.id for queue in seed.skill_queues]
            revoked_keys += _remove_unlisted(
                connection, app_keys.c.access_key, seed.vdn_id, listed_keys
            )
            removed_queues += _remove_unlisted(
                connection, skill_queues.c.skill_id, seed.vdn_id, listed_queues
            )
        for seed in seeds:
            _upsert_tenant(connection, seed)
    return SeedOutcome(len(seeds), revoked_keys, removed_queues)


def _remove_unlisted(
    connection: Connection, key: Column[Any], vdn_id: int, listed: Sequence[object]
) -> int:
    """Delete the tenant's rows (of `key`'s table) whose `key` is not `listed`; count them."""
    table = key.table
    result = connection.execute(delete(table).where(table.c.vdn_id == vdn_id, key.not_in(listed)))
    return result.rowcount


def _upsert_tenant(connection: Connection, seed: TenantSeed) -> None:
    exists = connection.scalar(select(tenants.c.vdn_id).where(tenants.c.vdn_id == seed.vdn_id))
    if exists is None:
        connection.execute(tenants.insert().values(vdn_id=seed.vdn_id, time_zone=seed.time_zone))
    else:
        connection.execute(
            update(tenants).where(tenants.c.vdn_id == seed.vdn_id).values(time_zone=seed.time_zone)
        )
    for key in seed.app_keys:
        owner = connection.scalar(
            select(app_keys.c.vdn_id).where(app_keys.c.access_key == key.access_key)
        )
        if owner is None:
            connection.execute(
                app_keys.insert().values(
                    access_key=key.access_key, vdn_id=seed.vdn_id, secret_key=key.secret_key
                )
            )
        elif owner != seed.vdn_id:
            raise SeedError(f"access key {key.access_key!r} already belongs to VDN {owner}")
        else:
            connection.execute(
                update(app_keys)
                .where(app_keys.c.access_key == key.access_key)
                .values(secret_key=key.secret_key)
            )
    for queue in seed.skill_queues:
        where = (skill_queues.c.vdn_id == seed.vdn_id) & (skill_queues.c.skill_id == queue.id)
        if connection.scalar(select(skill_queues.c.skill_id).where(where)) is None:
            connection.execute(
                skill_queues.insert().values(vdn_id=seed.vdn_id, skill_id=queue.id, name=queue.name)
            )
        else:
            connection.execute(update(skill_queues).where(where).values(name=queue.name))
