"""Alembic's environment: migrations run on the connection that monitor.store.migrations hands over.

Run from code only (`news-monitor db upgrade`, or `Store.create()` on an empty database); with a
`sqlalchemy.url` main option instead of a connection it opens one itself (for `alembic` used by hand).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from monitor.store.schema import metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        raise SystemExit("news-monitor migrations run online only: use `news-monitor db upgrade`")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        run(conn)
    engine.dispose()


main()
