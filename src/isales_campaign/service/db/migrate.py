"""Schema migrations through Alembic, callable from code and the CLI."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

SCRIPT_LOCATION = "isales_campaign.service.db:migrations"


class MigrationError(Exception):
    """The database cannot be brought to the revision asked for; nothing was changed."""


class MigrationRefused(MigrationError):
    """A downgrade would lose data that the older revision has no place for."""


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


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply pending migrations; safe to run from several processes at once."""
    migrate_to(engine, revision)


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
