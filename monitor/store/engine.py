"""The database under the store: the engine and its pool, SQLite's pragmas, flock and write lock, the gate
that checks (and on an empty database creates) the schema revision, and the base of a write transaction.

SQLite (WAL, synchronous=NORMAL) by default. In WAL mode a committed transaction survives a crash of the
process; a power loss can lose the last transactions committed before it (not a corrupt database).
PostgreSQL (`postgresql+psycopg://...`) takes the same code path, for several replicas on one database.
The schema is migrated with Alembic (`monitor.store.migrations`, loaded only by the commands that open the
store): `create()` upgrades an empty database and refuses one at another revision.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, event, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from monitor.config.redaction import redact_url
from monitor.config.settings import PostgresSettings
from monitor.errors import StoreError
from monitor.store.schema import SCHEMA_VERSION, meta

COMMAND_CONNECTIONS = 2  # a command (status, backfill, db upgrade ...) uses one at a time: its pool, with a spare


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Database:
    """One database: its engine, locks and schema gate. Methods are blocking; the daemon calls them from
    worker threads. The store's other parts (`monitor.store`) build on it."""

    def __init__(self, url: str, postgres: PostgresSettings | None = None, connections: int = 5) -> None:
        """`postgres`: the sessions' timeouts and the pool (default: PostgresSettings()); `connections`: how
        many the process may hold at once (its pool, unless `postgres.pool_size` says otherwise)."""
        self.url = url
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        options = postgres or PostgresSettings()
        self.pool_size = options.pool_size or connections
        try:
            pool = _postgres_pool(options, self.pool_size) if url.startswith("postgresql") else {}
            self.engine: Engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"), **pool)
        except ImportError as exc:
            hint = " (pip install 'psycopg[binary]')" if "psycopg" in str(exc) else ""
            raise StoreError(f"cannot open state store {redact_url(url)}: {exc}{hint}") from None
        except (SQLAlchemyError, ValueError) as exc:
            raise StoreError(f"cannot open state store {redact_url(url)}: {exc}") from None
        # This store's name in the claims of files it reads: host:pid, and a token should two containers
        # share a host name and pid 1.
        self.owner = f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"
        self._writes: AbstractContextManager[Any] = contextlib.nullcontext()
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            self._writes = threading.RLock()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def create(self) -> None:
        """Give an empty database the schema of this code; accept one at it; refuse any other revision."""
        from monitor.store import migrations  # Alembic: loaded by the commands that open the store, not by imports

        with self._schema() as conn:
            found, head = migrations.revision(conn), migrations.head()
            if found is None:
                migrations.upgrade(conn)
            elif found != head:
                where = f"state store {redact_url(self.url)}"
                if not migrations.known(found):
                    raise StoreError(
                        f"{where} has schema revision {found}, newer than this news-monitor (which knows up to"
                        f" {head}): run the news-monitor that upgraded it (`news-monitor db upgrade` only goes forward)"
                    )
                raise StoreError(
                    f"{where} has schema revision {found}, this news-monitor needs {head}:"
                    " run `news-monitor db upgrade` (with the same settings) once, then start again"
                )

    def upgrade(self, target: str = "head") -> tuple[str | None, str | None]:
        """Migrate the schema forward to `target`: (revision before, revision after)."""
        from monitor.store import migrations

        with self._schema() as conn:
            before = migrations.revision(conn)
            if before is not None and not migrations.known(before):
                raise StoreError(
                    f"state store {redact_url(self.url)} has schema revision {before}, newer than this news-monitor"
                    f" (which knows up to {migrations.head()}): nothing to upgrade"
                )
            migrations.upgrade(conn, target)
            return before, migrations.revision(conn)

    def revision(self) -> str | None:
        """The schema revision of the database (None: empty)."""
        from monitor.store import migrations

        with self._schema() as conn:
            return migrations.revision(conn)

    @contextmanager
    def _schema(self) -> Iterator[Connection]:
        """A transaction that holds the schema lock; database errors become a StoreError."""
        from monitor.store import migrations

        try:
            with self.engine.begin() as conn:
                migrations.lock(conn)
                yield conn
        except DBAPIError as exc:
            raise StoreError(f"state store {redact_url(self.url)} is not usable: {exc.orig}{_hint(exc)}") from None

    def lock(self) -> None:
        """Make this process the only daemon on a SQLite file (an exclusive flock beside it)."""
        if self.dialect != "sqlite" or not self.url.startswith("sqlite:///") or self.url.endswith(":memory:"):
            return
        path = Path(self.url.removeprefix("sqlite:///") + ".lock")
        handle = path.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StoreError(f"another news-monitor daemon is running on {path.with_suffix('')}") from None
        self._lock = handle

    def close(self) -> None:
        self.engine.dispose()
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.close()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction on the raw connection, for the store's own modules (and tests that must poke
        rows); everyone else uses `Store.transaction()`. On SQLite the process's writers take turns on a lock
        first: SQLite makes a second writer sleep and poll (1, 2, 5, 10 ms ...), which turned every collision
        of the ingest worker and the deliverer into a latency spike; a lock wakes the next writer as soon as
        the first commits."""
        with self._writes, self.engine.begin() as conn:
            yield conn

    def writable(self) -> bool:
        """Whether the store takes a small write (a database that is down, hung or read-only does not; a full
        disk may still take one: the pipeline's failed batches tell that)."""
        try:
            with self.begin() as conn:
                conn.execute(update(meta).where(meta.c.key == "schema").values(value=SCHEMA_VERSION))
        except SQLAlchemyError:
            return False
        return True


class Writes:
    """The base of `monitor.store.Transaction`: one open write transaction, and the store's owner name."""

    def __init__(self, conn: Connection, owner: str) -> None:
        self._conn = conn
        self._owner = owner
        self.queued: list[str] = []  # ids of the deliveries this transaction queued (due at once)

    @property
    def dialect(self) -> str:
        return self._conn.dialect.name


def no_state_yet(url: str) -> bool:
    """Whether the state store is a SQLite file that does not exist yet (before the daemon's first start)."""
    parsed = make_url(url)
    in_a_file = parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")
    return in_a_file and not Path(str(parsed.database)).exists()


def _postgres_pool(options: PostgresSettings, size: int) -> dict[str, Any]:
    """Engine arguments for PostgreSQL: a pool of `size` connections and no overflow, so that a process never
    holds more (docs/scale-out.md has the formula for max_connections); waiting longer than `pool_timeout`
    for one fails the operation (retried) instead of hanging it. Sessions that never hang and say whose
    they are: a server that does not answer fails the connection, a statement, a lock wait and a
    transaction left idle each fail at their timeout (a store failure the caller retries);
    `application_name` names the host and process in pg_stat_activity."""
    timeouts = {
        "statement_timeout": options.statement_timeout,
        "lock_timeout": options.lock_timeout,
        "idle_in_transaction_session_timeout": options.idle_in_transaction_timeout,
    }
    connect = {
        "connect_timeout": max(2, math.ceil(options.connect_timeout.total_seconds())),  # libpq: whole seconds, >= 2
        "application_name": application_name(),
        "options": " ".join(f"-c {name}={_millis(value)}" for name, value in timeouts.items()),
    }
    wait = options.pool_timeout.total_seconds()
    return {"connect_args": connect, "pool_size": size, "max_overflow": 0, "pool_timeout": wait}


def application_name() -> str:
    """This process in pg_stat_activity: `news-monitor <host>:<pid>` (PostgreSQL keeps 63 bytes)."""
    return f"news-monitor {socket.gethostname()}:{os.getpid()}"[:63]


def _millis(duration: timedelta) -> int:
    return max(1, round(duration.total_seconds() * 1000))


def _hint(exc: DBAPIError) -> str:
    """Where to look when PostgreSQL has no connection left for this process."""
    text = str(exc.orig)
    if "too many connections" in text or "remaining connection slots" in text:
        return (
            " (PostgreSQL's max_connections, or the role's or database's CONNECTION LIMIT, is reached:"
            " see docs/scale-out.md, 'Connections', for how many each replica holds)"
        )
    return ""
