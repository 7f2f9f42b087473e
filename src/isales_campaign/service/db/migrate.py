"""Schema migrations through Alembic: the one way every command (and test) migrates."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from isales_campaign.service.db.engine import check_reachable, create_database_engine
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
        raise MigrationError(
            f"the database is at revision {current}, which this release does not know (its "
            f"newest is {known[-1]}): a newer release migrated it; run that release, or "
            "downgrade the database with it first"
        )
    config = _config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        if current is not None and known.index(target) < known.index(current):
            command.downgrade(config, target)
        else:
            command.upgrade(config, target)
        connection.commit()


def is_current(engine: Engine) -> bool:
    """True when the database is at the newest revision."""
    return current_revision(engine) == revisions()[-1]
