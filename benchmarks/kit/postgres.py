"""A throwaway database on a PostgreSQL server, for tests and benchmarks (`scripts/postgres.sh` starts one).

The only SQL outside `monitor.store` and `monitor.store.migrations`: it creates and drops whole databases on a
server, it never touches the monitor's state.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@contextmanager
def fresh_database(server: str, label: str) -> Iterator[str]:
    """A new, empty database named after `label` on the server at URL `server`; its URL. Dropped on exit."""
    name = f"nm_{label}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
