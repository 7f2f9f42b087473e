"""Alembic environment: runs on the connection handed over by `migrate.upgrade`."""

from __future__ import annotations

from alembic import context

from isales_campaign.service.db.schema import metadata

#: Any number; replicas starting together take turns on this PostgreSQL lock.
MIGRATION_LOCK_KEY = 7_215_003

connection = context.config.attributes["connection"]
# One transaction for every step on both databases: a failed or refused step leaves the database
# as it was. (Alembic assumes SQLite cannot roll DDL back; it can, and our engine begins its
# transactions itself, so no driver commits in between.)
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    transactional_ddl=True,
)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
    context.run_migrations()
