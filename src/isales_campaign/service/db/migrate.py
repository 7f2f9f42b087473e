"""Schema migrations through Alembic: the one way every command (and test) migrates."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from isales_campaign.service.db.engine import (
    check_reachable,
    create_database_engine,
    normalize_url,
    read_only,
)
from isales_campaign.service.db.failures import said_in_one_line
from isales_campaign.service.errors import MigrationError

SCRIPT_LOCATION = "isales_campaign.service.db:migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def revisions() -> list[str]:
    """Every revision this release knows, oldest first."""
    script = ScriptDirectory.from_config(_config())
    return [found.revision for found in reversed(list(script.walk_revisions()))]


def current_revision(engine: Engine) -> str | None:
    """The database's revision; None for a database that was never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    #: The database's revision; None for a database that was never migrated.
    revision: str | None
    #: The newest revision this release knows.
    head: str
    #: The revisions `isales migrate` would apply, oldest first.
    pending: list[str]

    @property
    def known(self) -> bool:
        """False for a revision this release does not know (a newer release's)."""
        return self.revision is None or self.revision in revisions()


def migration_status(database_url: str) -> MigrationStatus:
    """Where the database at `database_url` is, changing nothing (not even creating a missing
    SQLite file). DatabaseFailed when it cannot be read."""
    known = revisions()
    current = None
    if not never_created(database_url):
        engine = create_database_engine(database_url, pool_size=1)
        alembic_log = logging.getLogger("alembic.runtime.migration")
        level = alembic_log.level
        alembic_log.setLevel(logging.WARNING)  # it announces its dialect: nothing is migrated
        try:
            with said_in_one_line(), read_only(engine) as connection:  # no write lock on SQLite
                current = MigrationContext.configure(connection).get_current_revision()
        finally:
            alembic_log.setLevel(level)
            engine.dispose()
    if current is None:
        pending = known
    elif current in known:
        pending = known[known.index(current) + 1 :]
    else:
        pending = []
    return MigrationStatus(current, known[-1], pending)


def never_created(database_url: str) -> bool:
    """True for an SQLite file that does not exist (opening it would create it)."""
    url = normalize_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return False
    return not Path(url.database).exists()


def migrate_database(database_url: str, revision: str = "head") -> str | None:
    """Bring the database at `database_url` to `revision` (see `migrate_to`) on a connection
    of its own, without the bounds of calls: a migration may rightly take longer than any
    call. Safe to run from several processes at once. The revision it is at now;
    DatabaseUnreachable when the database cannot be opened."""
    engine = create_database_engine(database_url, pool_size=1)
    try:
        check_reachable(engine)  # one line saying why, rather than a migration's traceback
        migrate_to(engine, revision)
        return current_revision(engine)
    finally:
        engine.dispose()


def migrate_to(engine: Engine, revision: str = "head") -> None:
    """Upgrade or downgrade the database to `revision` ("head": the newest this release knows).
    Raises MigrationError, with nothing changed, for a revision or database this release does
    not know, and MigrationRefused for a downgrade that would lose data."""
    known = revisions()
    target = known[-1] if revision == "head" else revision
    if target not in known:
        raise MigrationError(
            f"unknown revision {revision!r}: this release knows {', '.join(known)}"
        )
    current = current_revision(engine)
    if current is not None and current not in known:
        raise newer_release(current, known[-1])
    config = _config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        if current is not None and known.index(target) < known.index(current):
            command.downgrade(config, target)
        else:
            command.upgrade(config, target)
        connection.commit()


def newer_release(current: str, head: str) -> MigrationError:
    """The error of a database at a revision this release does not know."""
    return MigrationError(
        f"the database is at revision {current}, which this release does not know (its "
        f"newest is {head}): a newer release migrated it; run that release, or downgrade the "
        "database with it first"
    )


def is_current(engine: Engine) -> bool:
    """True when the database is at the newest revision."""
    return current_revision(engine) == revisions()[-1]
