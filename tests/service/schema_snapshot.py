"""What a database's schema is, read from its catalog, so that two databases can be compared:
every table, column, default, constraint, index, trigger, function and sequence under the name
the database gives it (an upgraded database must equal a new one, down to the id sequence's
name)."""

from __future__ import annotations

import re

from sqlalchemy import Connection, text

from isales_campaign.service.db.engine import create_database_engine

Snapshot = dict[str, list[tuple[object, ...]]]

_SQLITE = {
    # The statements that create each table and index, as SQLite keeps them.
    # (Not SQLite's own: `sqlite_sequence` stays once made; AUTOINCREMENT shows in the table.)
    "objects": "SELECT type, name, tbl_name, sql FROM sqlite_master"
    " WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
}

_POSTGRESQL = {
    "columns": "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
    " pg_get_expr(d.adbin, d.adrelid),"
    " rank() OVER (PARTITION BY c.relname ORDER BY a.attnum)"  # the order, not the numbers
    " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
    " WHERE n.nspname = current_schema() AND c.relkind = 'r' AND a.attnum > 0"
    " AND NOT a.attisdropped ORDER BY 1, 2",
    "constraints": "SELECT c.relname, k.conname, pg_get_constraintdef(k.oid)"
    " FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = current_schema() ORDER BY 1, 2",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes"
    " WHERE schemaname = current_schema() ORDER BY 1, 2",
    "triggers": "SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid)"
    " FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = current_schema() AND NOT t.tgisinternal ORDER BY 1, 2",
    "functions": "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p"
    " JOIN pg_namespace n ON n.oid = p.pronamespace"
    " WHERE n.nspname = current_schema() ORDER BY 1",
    "sequences": "SELECT s.sequencename, s.data_type::text, s.start_value, s.increment_by,"
    " s.max_value, s.cycle, t.relname, a.attname"
    " FROM pg_sequences s"
    " JOIN pg_class q ON q.relname = s.sequencename"
    " JOIN pg_namespace n ON n.oid = q.relnamespace AND n.nspname = s.schemaname"
    " LEFT JOIN pg_depend d ON d.objid = q.oid AND d.deptype = 'a'"
    " AND d.classid = 'pg_class'::regclass"
    " LEFT JOIN pg_class t ON t.oid = d.refobjid"
    " LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
    " WHERE s.schemaname = current_schema() ORDER BY 1",
}


def schema_of(url: str) -> Snapshot:
    """The schema of the database at `url`, in terms both databases can be compared in."""
    engine = create_database_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            return _read(connection)
    finally:
        engine.dispose()


def _read(connection: Connection) -> Snapshot:
    queries = _SQLITE if connection.dialect.name == "sqlite" else _POSTGRESQL
    snapshot = {
        part: [tuple(row) for row in connection.execute(text(sql))] for part, sql in queries.items()
    }
    if connection.dialect.name == "sqlite":
        snapshot["objects"] = [(*row[:3], _plain(row[3])) for row in snapshot["objects"]]
    return snapshot


def _plain(statement: object) -> object:
    """A statement as SQLite kept it, with its whitespace made single and its identifiers
    unquoted: a renamed table is kept as `CREATE TABLE "campaigns"`, a new one without quotes."""
    if not isinstance(statement, str):
        return statement
    return re.sub(r"\s+", " ", statement).replace('"', "")


def id_sequence_of(connection: Connection) -> str | None:
    """The sequence that gives campaign ids (PostgreSQL), as PostgreSQL names it."""
    found = connection.scalar(text("SELECT pg_get_serial_sequence('campaigns', 'id')"))
    return None if found is None else str(found)
