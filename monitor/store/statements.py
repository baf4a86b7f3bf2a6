"""Statement helpers of the store's modules: built once and reused, INSERT .. ON CONFLICT in either dialect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Column, Connection, LargeBinary, Table, cast, func
from sqlalchemy.dialects import sqlite

_STATEMENTS: dict[tuple[Any, ...], Any] = {}


def cached(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    """Build a statement once and reuse the object: SQLAlchemy then finds its compiled SQL in the cache
    instead of building, keying and (for multi-VALUES inserts, which it never caches) compiling it anew."""
    statement = _STATEMENTS.get(key)
    if statement is None:
        statement = _STATEMENTS[key] = build()
    return statement


def _dialect(conn: Connection) -> Any:
    """The module with the dialect's INSERT .. ON CONFLICT (PostgreSQL's imported only when used: 45 ms)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql
    return sqlite


def insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> int:
    """Insert rows, skipping those whose primary key exists; returns how many were inserted."""
    dialect = _dialect(conn)
    inserted = 0
    for row in rows:
        statement = cached(
            ("ignore", dialect.__name__, table.name, tuple(row)),
            lambda: dialect.insert(table).on_conflict_do_nothing().execution_options(preserve_rowcount=True),
        )
        inserted += int(conn.execute(statement, row).rowcount)
    return inserted


def insert_returning(conn: Connection, table: Table, rows: list[dict[str, Any]], column: Column[Any]) -> list[Any]:
    """Insert rows in one statement (SQLAlchemy batches them), skipping those whose primary key exists;
    returns `column` of the rows inserted."""
    if not rows:
        return []
    dialect = _dialect(conn)
    statement = cached(
        ("returning", dialect.__name__, table.name, column.name, tuple(rows[0])),
        lambda: dialect.insert(table).on_conflict_do_nothing().returning(column),
    )
    return list(conn.execute(statement, rows).scalars())


def upsert_many(conn: Connection, table: Table, rows: list[dict[str, Any]], key: str) -> None:
    """`upsert` of several rows with the same keys, in one executemany."""
    if not rows:
        return
    dialect = _dialect(conn)

    def build() -> Any:
        statement = dialect.insert(table)
        changes = {k: statement.excluded[k] for k in rows[0] if k != key}
        return statement.on_conflict_do_update(index_elements=[key], set_=changes)

    conn.execute(cached(("upsert", dialect.__name__, table.name, key, tuple(rows[0])), build), rows)


def upsert(conn: Connection, table: Table, row: dict[str, Any], key: str) -> None:
    """Insert a row, or update the row with its `key` to its values."""
    dialect = _dialect(conn)

    def build() -> Any:
        statement = dialect.insert(table)
        changes = {k: statement.excluded[k] for k in row if k != key}
        return statement.on_conflict_do_update(index_elements=[key], set_=changes)

    conn.execute(cached(("upsert", dialect.__name__, table.name, key, tuple(row)), build), row)


def octets(conn: Connection, column: Column[Any]) -> Any:
    """SQL for the length of a text column in bytes (UTF-8)."""
    if conn.dialect.name == "postgresql":
        return func.octet_length(column)
    return func.length(cast(column, LargeBinary))
