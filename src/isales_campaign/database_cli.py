"""The commands that look after the database beside the servers: `isales migrate --status`,
`isales seed FILE [--dry-run]` and `isales tenants [VDN ...]`. They print JSON lines on
stdout (never a secret key), log JSON lines on stderr, and say what went wrong in one line
on stderr."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import orjson
from sqlalchemy import Engine

from isales_campaign.config import Settings
from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.migrate import MigrationStatus, migration_status, newer_release
from isales_campaign.service.db.tenant_config import Change, ChangeKind, Tenant, read_all
from isales_campaign.service.errors import DatabaseFailed, SeedError
from isales_campaign.service.seed import apply_seed, load_seed, plan

log = logging.getLogger("isales")

T = TypeVar("T")

#: Exit codes (the README's "The isales command" lists them).
OK = 0
#: The database failed, or is at a revision this release does not know; a VDN asked for is
#: not configured.
FAILED = 1
#: A usage error, or a seed file that is not valid (nothing of it was applied).
INVALID = 2
#: `isales migrate --status`: migrations are pending.
PENDING = 3
#: The reader of stdout went away (128 + SIGPIPE, as a shell counts it).
PIPE_CLOSED = 141


def migrate_status(settings: Settings, _args: argparse.Namespace) -> int:
    """Print `{"revision": ..., "head": ..., "pending": [...]}`: OK when the database is at
    the head, PENDING when `isales migrate` has revisions to apply, FAILED when the database
    cannot be read or is at a revision this release does not know."""
    command = "isales migrate --status"
    try:
        status = migration_status(settings.database_url)
    except DatabaseFailed as error:
        return _failed(command, error)
    code = _print([{"revision": status.revision, "head": status.head, "pending": status.pending}])
    if code != OK:
        return code
    if not status.known:
        print(f"{command}: {_newer_release(status)}", file=sys.stderr)
        return FAILED
    return PENDING if status.pending else OK


def seed(settings: Settings, args: argparse.Namespace, migrated: Callable[[], bool]) -> int:
    """Apply a seed file (migrating the database first with `migrated`), logging each change
    it makes; with --dry-run, print the changes it would make and make none."""
    command = "isales seed"
    try:
        seeds = load_seed(args.file)
    except SeedError as error:
        print(f"{command}: {error}", file=sys.stderr)
        return INVALID
    if not args.dry_run and not migrated():
        return FAILED
    try:
        if args.dry_run:
            status = migration_status(settings.database_url)
            if not status.known:
                print(f"{command}: {_newer_release(status)}; nothing was changed", file=sys.stderr)
                return FAILED
            if status.pending:
                log.info(
                    "a seed migrates the database first",
                    extra={"revision": status.revision, "pending": status.pending},
                )
            changes = (
                plan({}, seeds)  # nothing to read: no table yet
                if status.revision is None
                else _apply(settings, lambda engine: apply_seed(engine, seeds, dry_run=True))
            )
        else:
            changes = _apply(settings, lambda engine: apply_seed(engine, seeds))
    except SeedError as error:
        print(f"{command}: {error}; nothing of the file was applied", file=sys.stderr)
        return INVALID
    except DatabaseFailed as error:
        return _failed(command, error, "; nothing of the file was applied")
    summary = {
        "file": str(args.file),
        "tenants": len(seeds),
        "changes": len(changes),
        "revoked_keys": _count(changes, ChangeKind.APP_KEY_REVOKED),
        "removed_skill_queues": _count(changes, ChangeKind.SKILL_QUEUE_REMOVED),
    }
    if args.dry_run:
        code = _print(change.as_dict() for change in changes)
        log.info("seed checked, nothing changed (--dry-run)", extra=summary)
        return code
    for change in changes:
        log.info("seed change", extra=change.as_dict())
    log.info("seed applied", extra=summary)
    return OK


def tenants(settings: Settings, args: argparse.Namespace) -> int:
    """Print each tenant (those of args.vdn, else all): VDN, time zone, access keys (never
    their secrets) and skill queues. FAILED, after the others, when a VDN asked for is not
    configured."""
    command = "isales tenants"
    try:
        status = migration_status(settings.database_url)
        found: dict[int, Tenant] = {} if status.revision is None else _apply(settings, read_all)
    except DatabaseFailed as error:
        return _failed(command, error)
    wanted = args.vdn or list(found)
    code = _print(_tenant_line(found[vdn]) for vdn in wanted if vdn in found)
    missing = [str(vdn) for vdn in wanted if vdn not in found]
    if code == OK and missing:
        print(f"{command}: VDN {', '.join(missing)} is not configured", file=sys.stderr)
        return FAILED
    return code


def _tenant_line(tenant: Tenant) -> dict[str, Any]:
    return {
        "vdn_id": tenant.vdn_id,
        "time_zone": tenant.time_zone,
        "app_keys": sorted(tenant.app_keys),
        "skill_queues": [
            {"id": i, "name": name} for i, name in sorted(tenant.skill_queues.items())
        ],
    }


def _apply(settings: Settings, work: Callable[[Engine], T]) -> T:
    """`work` on an engine of its own, closed afterwards."""
    engine = create_database_engine(settings.database_url, pool_size=1)
    try:
        return work(engine)
    finally:
        engine.dispose()


def _count(changes: list[Change], kind: ChangeKind) -> int:
    return sum(change.kind is kind for change in changes)


def _print(lines: Iterable[dict[str, Any]]) -> int:
    """Each line as JSON on stdout; PIPE_CLOSED when its reader went away."""
    try:
        for line in lines:
            sys.stdout.buffer.write(orjson.dumps(line) + b"\n")
        sys.stdout.buffer.flush()
    except BrokenPipeError:  # `isales tenants | head -1`
        # Python flushes stdout once more on exit; let that go nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return PIPE_CLOSED
    return OK


def _newer_release(status: MigrationStatus) -> str:
    return str(newer_release(status.revision or "", status.head))


def _failed(command: str, error: DatabaseFailed, after: str = "") -> int:
    print(f"{command}: the database failed: {error}{after}", file=sys.stderr)
    return FAILED
