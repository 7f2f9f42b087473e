"""Tenants, app keys and skill queues from a TOML seed file: read strictly, and the changes it
makes to what the database holds, decided before any is made.

```toml
[[tenants]]
vdn_id = 1
time_zone = "UTC"                # IANA name; optional (a new tenant: UTC; else kept)
[[tenants.app_keys]]             # optional: a tenant's whole list (`app_keys = []`: none)
access_key = "..."
secret_key = "..."
[[tenants.skill_queues]]         # likewise (`skill_queues = []`: none)
id = 2
name = "defaultAudioSkill"
```

Only what the file says is changed, so that what it leaves out is kept:
- a key the file does not know is refused (naming its line and the key it resembles), the
  whole file with it: a misspelt `app_key` or `timezone` changes nothing;
- `time_zone` sets the tenant's zone; left out, a tenant keeps its zone (a new one gets UTC);
- `app_keys` and `skill_queues`, when given, are the tenant's whole lists: keys and queues
  of the tenant that they do not list are removed (a key is revoked by deleting it from the
  file and seeding again), and only a list written empty (`app_keys = []`) removes the
  last one. Left out, the tenant keeps what it has.
Tenants the file does not list are left alone, and no tenant or campaign is ever deleted.
"""

from __future__ import annotations

import difflib
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine

from isales_campaign.ids import MAX_VDN_ID, MIN_VDN_ID, is_vdn_id
from isales_campaign.service.db import tenant_config
from isales_campaign.service.db.tenant_config import (
    AppKey,
    Change,
    ChangeKind,
    SkillQueue,
    Tenant,
    TenantSeed,
)
from isales_campaign.service.errors import SeedError
from isales_campaign.service.toml_lines import KeyPath, key_lines, line_of

#: The keys of each table of a seed file, in the order the README lists them.
TOP_KEYS = ("tenants",)
TENANT_KEYS = ("vdn_id", "time_zone", "app_keys", "skill_queues")
APP_KEY_KEYS = ("access_key", "secret_key")
SKILL_QUEUE_KEYS = ("id", "name")

#: A new tenant's time zone when the file names none.
DEFAULT_TIME_ZONE = "UTC"


class SeedProblem(SeedError):
    """A problem of the file at `path` (in the parsed document): `load_seed` names its line."""

    def __init__(self, path: KeyPath, message: str) -> None:
        super().__init__(message)
        self.path = path


def load_seed(path: Path) -> list[TenantSeed]:
    """The tenants of the seed file at `path`. SeedError, naming the file and the line, for
    a file that is not valid."""
    try:
        source = path.read_text(encoding="utf-8")
        document = tomllib.loads(source)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise SeedError(f"{path}: {error}") from None
    try:
        return parse_seed(document)
    except SeedProblem as problem:
        line = line_of(key_lines(source), problem.path)
        where = f"{path}:{line}" if line is not None else str(path)
        raise SeedError(f"{where}: {problem}") from None


def parse_seed(document: dict[str, Any]) -> list[TenantSeed]:
    """The tenants of a parsed seed file; SeedProblem for the first problem found."""
    _known_keys(document, TOP_KEYS, ())
    raw_tenants = document.get("tenants", [])
    if not isinstance(raw_tenants, list):
        raise SeedProblem(("tenants",), "'tenants' must be an array of tables ([[tenants]])")
    seeds = [_tenant(raw, ("tenants", i)) for i, raw in enumerate(raw_tenants)]
    listed: Counter[int] = Counter()
    for i, seed in enumerate(seeds):
        listed[seed.vdn_id] += 1
        if listed[seed.vdn_id] > 1:
            raise SeedProblem(
                ("tenants", i, "vdn_id"),
                f"VDN {seed.vdn_id} is listed twice; list each tenant once",
            )
    owners: dict[str, int] = {}
    for i, seed in enumerate(seeds):
        for j, key in enumerate(seed.app_keys or []):
            if owners.setdefault(key.access_key, seed.vdn_id) != seed.vdn_id:
                raise SeedProblem(
                    ("tenants", i, "app_keys", j, "access_key"),
                    f"access key {key.access_key!r} is given to two VDNs",
                )
    return seeds


def apply_seed(engine: Engine, seeds: list[TenantSeed], *, dry_run: bool = False) -> list[Change]:
    """Make the changes the seed makes, in one transaction (`dry_run`: none), and say which
    (see `plan`). SeedError, with nothing changed, when the file gives a key that belongs to
    a tenant it does not take it from."""
    return tenant_config.apply(engine, lambda tenants: plan(tenants, seeds), dry_run=dry_run)


def plan(tenants: dict[int, Tenant], seeds: list[TenantSeed]) -> list[Change]:
    """The changes the seed makes to `tenants` (by VDN, as the database holds them), tenant by
    tenant in the file's order. SeedError when the file gives a tenant a key that another
    keeps."""
    owners = {key: tenant.vdn_id for tenant in tenants.values() for key in tenant.app_keys}
    released = {  # keys the file takes from their tenants, free to go to another
        key
        for seed in seeds
        if seed.app_keys is not None and seed.vdn_id in tenants
        for key in tenants[seed.vdn_id].app_keys.keys() - {k.access_key for k in seed.app_keys}
    }
    changes: list[Change] = []
    for seed in seeds:
        vdn_id = seed.vdn_id
        now = tenants.get(vdn_id)
        if now is None:
            zone = seed.time_zone or DEFAULT_TIME_ZONE
            changes.append(Change(vdn_id, ChangeKind.TENANT_ADDED, after=zone))
            now = Tenant(vdn_id, zone)
        elif seed.time_zone is not None and seed.time_zone != now.time_zone:
            changes.append(
                Change(
                    vdn_id, ChangeKind.TIME_ZONE_CHANGED, before=now.time_zone, after=seed.time_zone
                )
            )
        if seed.app_keys is not None:
            changes += _key_changes(now, seed.app_keys, owners, released)
        if seed.skill_queues is not None:
            changes += _queue_changes(now, seed.skill_queues)
    return changes


def _key_changes(
    now: Tenant, listed: list[AppKey], owners: dict[str, int], released: set[str]
) -> list[Change]:
    vdn_id = now.vdn_id
    secrets = {key.access_key: key.secret_key for key in listed}
    changes = [
        Change(vdn_id, ChangeKind.APP_KEY_REVOKED, access_key=key)
        for key in sorted(now.app_keys.keys() - secrets.keys())
    ]
    for key, secret in secrets.items():
        held = now.app_keys.get(key)
        if held is None:
            owner = owners.get(key)
            if owner is not None and key not in released:
                raise SeedError(
                    f"access key {key!r} (VDN {vdn_id} in the file) belongs to VDN {owner}: "
                    f"to move it, list VDN {owner} with app_keys that leave it out"
                )
            changes.append(
                Change(vdn_id, ChangeKind.APP_KEY_ADDED, access_key=key, secret_key=secret)
            )
        elif held != secret:
            changes.append(
                Change(vdn_id, ChangeKind.SECRET_KEY_CHANGED, access_key=key, secret_key=secret)
            )
    return changes


def _queue_changes(now: Tenant, listed: list[SkillQueue]) -> list[Change]:
    vdn_id = now.vdn_id
    names = {queue.id: queue.name for queue in listed}
    changes = [
        Change(vdn_id, ChangeKind.SKILL_QUEUE_REMOVED, skill_queue=queue, before=name)
        for queue, name in sorted(now.skill_queues.items())
        if queue not in names
    ]
    for queue, name in names.items():
        held = now.skill_queues.get(queue)
        if held is None:
            changes.append(
                Change(vdn_id, ChangeKind.SKILL_QUEUE_ADDED, skill_queue=queue, after=name)
            )
        elif held != name:
            changes.append(
                Change(
                    vdn_id,
                    ChangeKind.SKILL_QUEUE_RENAMED,
                    skill_queue=queue,
                    before=held,
                    after=name,
                )
            )
    return changes


def _tenant(raw: Any, at: KeyPath) -> TenantSeed:
    where = _dotted(at)
    if not isinstance(raw, dict):
        raise SeedProblem(at, f"{where} must be a table")
    _known_keys(raw, TENANT_KEYS, at)
    vdn_id = raw.get("vdn_id")
    if not isinstance(vdn_id, int) or isinstance(vdn_id, bool) or not is_vdn_id(vdn_id):
        raise SeedProblem(
            (*at, "vdn_id"), f"{where}.vdn_id must be an integer from {MIN_VDN_ID} to {MAX_VDN_ID}"
        )
    time_zone = raw.get("time_zone")
    if time_zone is not None:
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise SeedProblem(
                (*at, "time_zone"), f"{where}.time_zone {time_zone!r} is not an IANA time zone"
            ) from None
    keys = None
    if "app_keys" in raw:
        keys = [
            AppKey(
                _text(item, "access_key", (*at, "app_keys", i), 128),
                _text(item, "secret_key", (*at, "app_keys", i), 256),
            )
            for i, item in enumerate(_tables(raw, "app_keys", at, APP_KEY_KEYS))
        ]
        listed: set[str] = set()
        for i, key in enumerate(keys):
            if key.access_key in listed:
                raise SeedProblem(
                    (*at, "app_keys", i, "access_key"),
                    f"{where}.app_keys[{i}]: access key {key.access_key!r} is listed twice",
                )
            listed.add(key.access_key)
    queues: list[SkillQueue] | None = None
    if "skill_queues" in raw:
        queues = []
        for i, item in enumerate(_tables(raw, "skill_queues", at, SKILL_QUEUE_KEYS)):
            queue_id = item.get("id")
            if (
                not isinstance(queue_id, int)
                or isinstance(queue_id, bool)
                or not 1 <= queue_id <= 1000
            ):
                raise SeedProblem(
                    (*at, "skill_queues", i, "id"),
                    f"{where}.skill_queues[{i}].id must be an integer from 1 to 1000",
                )
            if any(queue.id == queue_id for queue in queues):
                raise SeedProblem(
                    (*at, "skill_queues", i, "id"),
                    f"{where}.skill_queues[{i}]: skill queue {queue_id} is listed twice",
                )
            queues.append(SkillQueue(queue_id, _text(item, "name", (*at, "skill_queues", i), 100)))
    return TenantSeed(vdn_id, time_zone, keys, queues)


def _known_keys(raw: dict[str, Any], known: tuple[str, ...], at: KeyPath) -> None:
    """SeedProblem for the first key of `raw` that is not `known`, with the known key it
    resembles, if one does."""
    for key in raw:
        if key in known:
            continue
        table = f" in {_dotted(at)}" if at else ""
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"the keys are {', '.join(known)}"
        raise SeedProblem((*at, key), f"unknown key {key!r}{table}; {hint}")


def _tables(
    raw: dict[str, Any], key: str, at: KeyPath, known: tuple[str, ...]
) -> list[dict[str, Any]]:
    items = raw[key]
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise SeedProblem((*at, key), f"{_dotted(at)}.{key} must be an array of tables")
    for i, item in enumerate(items):
        _known_keys(item, known, (*at, key, i))
    return items


def _text(raw: dict[str, Any], key: str, at: KeyPath, max_len: int) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise SeedProblem(
            (*at, key), f"{_dotted(at)}.{key} must be a string of 1 to {max_len} characters"
        )
    return value


def _dotted(path: KeyPath) -> str:
    """`("tenants", 0, "app_keys")` -> `tenants[0].app_keys`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text
