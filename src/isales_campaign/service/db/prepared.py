"""The statements of a change, compiled once per dialect and run on the DBAPI cursor.

SQLAlchemy defines the schema, runs the migrations and every read. For the writes under a
tenant's lock, its per-execution machinery (connection and transaction objects, events,
the compiled cache, parameter and result objects) cost more than the statements (on
SQLite, more than half of an add's CPU). So each such statement is compiled by SQLAlchemy
for the engine's dialect (the SQL is what SQLAlchemy would send), values go through
SQLAlchemy's own bind and result processors (SQLite stores times as text), and a DBAPI
error is raised as SQLAlchemy's exception for it, with SQLAlchemy's disconnect detection:
callers see what they saw before.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping
from itertools import repeat
from typing import Any, cast

from sqlalchemy import Dialect, Engine
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


class Prepared:
    """One statement compiled for `dialect`; an INSERT or UPDATE sets `columns`, each from
    the value of the same name. Rows are named tuples: `row`, a NamedTuple class with a
    field for each selected column in order, or one made from the columns' names."""

    def __init__(
        self,
        statement: ClauseElement,
        dialect: Dialect,
        columns: tuple[str, ...] = (),
        *,
        row: Any = None,
    ) -> None:
        compiled = cast(
            SQLCompiler, statement.compile(dialect=dialect, column_keys=list(columns) or None)
        )
        self.sql = str(compiled)
        self._dialect = dialect
        #: Parameter names in placeholder order (qmark and format styles); None for named.
        self._order = compiled.positiontup
        # Values the statement carries itself (literals SQLAlchemy made parameters of).
        self._fixed = {n: b.effective_value for n, b in compiled.binds.items() if not b.required}
        self._bind = {
            name: process
            for name, bind in compiled.binds.items()
            if (process := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        # What a SELECT selects, or what an INSERT, UPDATE or DELETE returns.
        selected: list[Any] = list(getattr(statement, "exported_columns", ()))
        self._row: Any = row
        if row is None and selected:
            self._row = namedtuple("Row", [c.key for c in selected], rename=True)  # type: ignore[misc]
        assert row is None or len(row._fields) == len(selected), "a field for each column"
        # The columns whose values need converting (SQLite stores times as text), by index:
        # the others are taken as they come.
        self._results: list[tuple[int, Callable[[Any], Any]]] = [
            (index, process)
            for index, column in enumerate(selected)
            if (process := column.type.dialect_impl(dialect).result_processor(dialect, None))
        ]

    def execute(self, connection: PoolProxiedConnection, values: Mapping[str, Any]) -> Any:
        """Run the statement; its DBAPI cursor (for `rowcount`; `first` and `all` read rows)."""
        merged = {**self._fixed, **values}
        for name, process in self._bind.items():
            merged[name] = process(merged[name])
        parameters: Any = merged if self._order is None else [merged[n] for n in self._order]
        try:
            cursor = connection.cursor()  # raises too when the server has gone
            cursor.execute(self.sql, parameters)
        except self._dialect.loaded_dbapi.Error as error:
            raise translate_error(error, connection, self._dialect, self.sql) from error
        return cursor

    def first(self, connection: PoolProxiedConnection, values: Mapping[str, Any]) -> Any:
        """The first row of the result, its values converted; None when there is none."""
        raw = self._fetch(connection, values, "fetchone")
        return None if raw is None else self._convert(raw)

    def all(self, connection: PoolProxiedConnection, values: Mapping[str, Any]) -> list[Any]:
        """Every row of the result, its values converted."""
        assert self._row is not None, "the statement returns no rows"
        raws = self._fetch(connection, values, "fetchall")
        if not raws:
            return []
        # By column, in C loops (map and zip): a list page's hundred rows cost less than
        # through `_convert` row by row. SQLAlchemy's processors take None themselves.
        columns: list[Iterable[Any]] = list(zip(*raws, strict=True))
        for index, process in self._results:
            columns[index] = map(process, columns[index])
        return list(map(tuple.__new__, repeat(self._row), zip(*columns, strict=True)))

    def _fetch(self, connection: PoolProxiedConnection, values: Mapping[str, Any], how: str) -> Any:
        """Run the statement and read its rows with the cursor's `how` method."""
        cursor = self.execute(connection, values)
        try:
            return getattr(cursor, how)()
        except self._dialect.loaded_dbapi.Error as error:
            raise translate_error(error, connection, self._dialect, self.sql) from error
        finally:
            cursor.close()

    def _convert(self, raw: Any) -> Any:
        """One row, its values converted: for a single row, `all`'s way by column costs
        more."""
        assert self._row is not None, "the statement returns no rows"
        values = list(raw)
        for index, process in self._results:
            value = values[index]
            if value is not None:
                values[index] = process(value)
        return self._row._make(values)


def checkout(engine: Engine) -> PoolProxiedConnection:
    """A connection of the engine's pool; a failure to connect as SQLAlchemy's exception
    (`Engine.connect` translates it, `Engine.raw_connection` does not)."""
    try:
        return engine.raw_connection()
    except engine.dialect.loaded_dbapi.Error as error:
        raise DBAPIError.instance(
            None, None, error, engine.dialect.loaded_dbapi.Error, dialect=engine.dialect
        ) from error


def translate_error(
    error: Any, connection: PoolProxiedConnection, dialect: Dialect, sql: str
) -> StatementError:
    """SQLAlchemy's exception for a DBAPI error; a connection the error broke is
    invalidated (see `drop_if_broken`)."""
    disconnected = drop_if_broken(error, connection, dialect)
    translated: StatementError = DBAPIError.instance(
        sql,
        None,
        error,
        dialect.loaded_dbapi.Error,
        connection_invalidated=disconnected,
        dialect=dialect,
    )
    return translated


def drop_if_broken(error: Any, connection: PoolProxiedConnection, dialect: Dialect) -> bool:
    """Invalidate the connection when the DBAPI error means it is broken (SQLAlchemy's
    disconnect detection), so the pool does not hand it out again; whether it was."""
    disconnected = dialect.is_disconnect(error, connection.dbapi_connection, None)
    if disconnected:
        connection.invalidate(error)
    return disconnected
