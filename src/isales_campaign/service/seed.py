"""Tenants, app keys and skill queues from a TOML seed file, applied idempotently.

The file is authoritative for the tenants it lists: their app keys and skill
queues that the file no longer lists are removed, so a key is revoked by
deleting it from the file and seeding again. Tenants the file does not list are
left alone, and no tenant or campaign is ever deleted.

```toml
[[tenants]]
vdn_id = 1
time_zone = "UTC"                # optional, IANA name
[[tenants.app_keys]]
access_key = "..."
secret_key = "..."
[[tenants.skill_queues]]
id = 2
name = "defaultAudioSkill"
```
"""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine

from isales_campaign.ids import MAX_VDN_ID, MIN_VDN_ID, is_vdn_id
from isales_campaign.service.db import tenant_config
from isales_campaign.service.db.tenant_config import AppKey, SeedOutcome, SkillQueue, TenantSeed
from isales_campaign.service.errors import SeedError


def load_seed(path: Path) -> list[TenantSeed]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise SeedError(f"{path}: {error}") from None
    return parse_seed(document)


def parse_seed(document: dict[str, Any]) -> list[TenantSeed]:
    raw_tenants = document.get("tenants", [])
    if not isinstance(raw_tenants, list):
        raise SeedError("'tenants' must be an array of tables ([[tenants]])")
    seeds = [_tenant(raw, f"tenants[{i}]") for i, raw in enumerate(raw_tenants)]
    listed = Counter(seed.vdn_id for seed in seeds)
    for vdn_id, times in sorted(listed.items()):
        if times > 1:
            raise SeedError(f"VDN {vdn_id} is listed twice; list each tenant once")
    owners: dict[str, int] = {}
    for seed in seeds:
        for key in seed.app_keys:
            if owners.setdefault(key.access_key, seed.vdn_id) != seed.vdn_id:
                raise SeedError(f"access key {key.access_key!r} is given to two VDNs")
    return seeds


def apply_seed(engine: Engine, seeds: list[TenantSeed]) -> SeedOutcome:
    """Insert, update and remove everything in one transaction (see `db.tenant_config`)."""
    return tenant_config.apply(engine, seeds)


def _tenant(raw: Any, where: str) -> TenantSeed:
    if not isinstance(raw, dict):
        raise SeedError(f"{where} must be a table")
    vdn_id = raw.get("vdn_id")
    if not isinstance(vdn_id, int) or isinstance(vdn_id, bool) or not is_vdn_id(vdn_id):
        raise SeedError(f"{where}.vdn_id must be an integer from {MIN_VDN_ID} to {MAX_VDN_ID}")
    time_zone = raw.get("time_zone", "UTC")
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise SeedError(f"{where}.time_zone {time_zone!r} is not an IANA time zone") from None
    keys = [
        AppKey(
            _text(item, "access_key", f"{where}.app_keys[{i}]", 128),
            _text(item, "secret_key", f"{where}.app_keys[{i}]", 256),
        )
        for i, item in enumerate(_tables(raw, "app_keys", where))
    ]
    queues = []
    for i, item in enumerate(_tables(raw, "skill_queues", where)):
        queue_id = item.get("id")
        if not isinstance(queue_id, int) or isinstance(queue_id, bool) or not 1 <= queue_id <= 1000:
            raise SeedError(f"{where}.skill_queues[{i}].id must be an integer from 1 to 1000")
        queues.append(SkillQueue(queue_id, _text(item, "name", f"{where}.skill_queues[{i}]", 100)))
    return TenantSeed(vdn_id, time_zone, keys, queues)


def _tables(raw: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    items = raw.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise SeedError(f"{where}.{key} must be an array of tables")
    return items


def _text(raw: dict[str, Any], key: str, where: str, max_len: int) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise SeedError(f"{where}.{key} must be a string of 1 to {max_len} characters")
    return value
