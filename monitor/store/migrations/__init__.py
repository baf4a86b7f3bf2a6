"""Schema migrations with Alembic, run from code: no alembic.ini, the configuration is built here.

    revision(conn) -> str | None   the database's schema revision (None: none of our tables yet)
    upgrade(conn, target)          move the schema forward, inside the caller's transaction
    head() -> str                  the revision this code needs

A database created before there were migrations (our tables and the `meta` table, no `alembic_version`)
has exactly the schema of revision 0001 and counts as that revision. On PostgreSQL `lock(conn)` takes a
transaction-level advisory lock first, so replicas starting together on an empty database take turns:
the first upgrades it, the others then find it at head.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

# Alembic logs its plugin set-up (on import) and its context at INFO: quiet before importing; we log the outcome.
logging.getLogger("alembic").setLevel(logging.WARNING)

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from alembic.runtime.migration import MigrationContext  # noqa: E402
from alembic.script import ScriptDirectory  # noqa: E402
from alembic.util import CommandError  # noqa: E402
from sqlalchemy import Connection, inspect, text  # noqa: E402

from monitor.errors import StoreError  # noqa: E402

log = logging.getLogger(__name__)  # the standard library's: commands that log nothing stay silent
HERE = Path(__file__).resolve().parent
BASELINE = "0001"  # the schema news-monitor created before it had migrations
_LOCK_KEY = 7_370_411_690_617_000_001  # pg_advisory_xact_lock key of news-monitor's schema changes


def config(connection: Connection | None = None) -> Config:
    """An Alembic configuration over this package; env.py runs on `connection` when one is given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = connection
    return cfg


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def head() -> str:
    heads = _scripts().get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"monitor/store/migrations has {len(heads)} heads {heads}: merge them")
    return heads[0]


def known(revision: str) -> bool:
    """True if this code has the migration script of `revision`."""
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def lock(conn: Connection) -> None:
    """Serialise schema checks and upgrades between processes (PostgreSQL; SQLite has one writer anyway)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})


def revision(conn: Connection) -> str | None:
    """The schema revision of the database: None when it has none of our tables yet."""
    found = MigrationContext.configure(conn).get_current_revision()
    if found is None and inspect(conn).has_table("meta"):
        return BASELINE
    return found


def upgrade(conn: Connection, target: str = "head") -> None:
    """Upgrade to `target` within the caller's transaction (a pre-migrations database is stamped first)."""
    before = revision(conn)
    try:
        if before == BASELINE and MigrationContext.configure(conn).get_current_revision() is None:
            command.stamp(config(conn), BASELINE)
        command.upgrade(config(conn), target)
    except CommandError as exc:  # an unknown or backward target
        raise StoreError(f"cannot upgrade the schema to {target!r}: {exc}") from None
    after = revision(conn)
    if after != before:
        log.info("schema_upgraded", extra={"dialect": conn.dialect.name, "before": before, "after": after})
