"""The state store: the file ledger, article claims, alerts and the delivery outbox, over SQLAlchemy.

SQLite (WAL, synchronous=NORMAL) by default. In WAL mode a committed transaction survives a crash of the
process; a power loss can lose the last transactions committed before it (not a corrupt database).
Times are stored as UNIX seconds (float). All writes of one article happen in one transaction.

PostgreSQL (`postgresql+psycopg://...`) takes the same code path, for several replicas on one database:
articles are claimed by unique key, due deliveries are leased with FOR UPDATE SKIP LOCKED, digest times
are claimed in `digest_claims`. The schema is migrated with Alembic (monitor/migrations): `create()`
upgrades an empty database and refuses one at another revision.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import functools
import json
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    cast,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from monitor.errors import StoreError
from monitor.redaction import redact_url
from monitor.settings import PostgresSettings

SCHEMA_VERSION = "1"
DIGEST_REFS = "alert_ids"  # a digest part's stored payload lists its alerts by id; `Delivery.payload` has them
_CHUNK = 500  # ids per IN (...) when the alerts' payloads are read
COMMAND_CONNECTIONS = 2  # a command (status, backfill, db upgrade ...) uses one at a time: its pool, with a spare
metadata = MetaData()

files = Table(
    "files",
    metadata,
    Column("path", Text, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("content_hash", String(64)),
    Column("outcome", String(16), nullable=False),  # accepted | duplicate | rejected
    Column("code", String(32)),
    Column("reason", Text),
    Column("seen_at", Float, nullable=False),
    Index("files_content_hash", "content_hash"),  # the prune's "no ledger row refers to this claim"
)
articles = Table(
    "articles",
    metadata,
    Column("content_hash", String(64), primary_key=True),
    Column("path", Text, nullable=False),
    Column("article_date", String(40), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("matches", Integer, nullable=False),
    Column("claimed_at", Float, nullable=False),
)
alerts = Table(
    "alerts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("rule", String(80), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # JSON of the match: rule, article, hits, clause (monitor.payload)
    Column("realert_key", Text, nullable=False),
    Column("suppressed", Boolean, nullable=False),
    Column("digest_pending", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("alerts_rule_created", "rule", "created_at"),
    Index("alerts_realert", "rule", "realert_key", "created_at"),  # the realert lookup (`alerts._recent`)
)
# The digest flush's check and query and the start-up catch-up (`alerts._pending`, `oldest_pending`): only
# the few alerts still waiting for a digest are in it. Its condition is the queries' own, so that both
# SQLite and PostgreSQL see that the index covers them.
Index(
    "alerts_digest_pending",
    alerts.c.rule,
    alerts.c.created_at,
    sqlite_where=alerts.c.digest_pending.is_(True),
    postgresql_where=alerts.c.digest_pending.is_(True),
)
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(64), primary_key=True),  # the webhook-id: the same on every attempt
    Column("webhook", String(80), nullable=False),
    Column("kind", String(16), nullable=False),  # alert | digest
    Column("rule", String(80), nullable=False),
    Column("alert_id", String(64)),  # an alert's delivery: the alert whose payload it sends
    Column("payload", Text),  # JSON: a digest part's, with alert ids (DIGEST_REFS); a full payload in older rows
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("due_at", Float, nullable=False),
    Column("lease_until", Float),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("delivered_at", Float),
    Index("deliveries_due", "state", "due_at"),
    Index("deliveries_alert", "alert_id"),  # the prune's "no delivery refers to this alert"
)
webhook_state = Table(
    "webhook_state",
    metadata,
    Column("name", String(80), primary_key=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("disabled_reason", Text),
    Column("last_delivery_at", Float),
    Column("last_error", Text),
    Column("last_error_at", Float),
)
digest_claims = Table(
    "digest_claims",
    metadata,
    Column("rule", String(80), primary_key=True),
    Column("slot", String(40), primary_key=True),  # the schedule time, ISO 8601 in UTC
    Column("flushed_at", Float, nullable=False),
)
# Files being read on PostgreSQL: a replica claims a file version here before it reads it, and deletes the
# row in the transaction that writes the file's ledger row (`Store.claim_reading`, `release_reading`).
reading = Table(
    "reading",
    metadata,
    Column("path", Text, primary_key=True),  # the ledger key (`files.path`)
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("owner", String(80), nullable=False),  # host:pid:token of the replica reading it
    Column("claimed_at", Float, nullable=False),
    Column("lease_until", Float, nullable=False),
)
meta = Table("meta", metadata, Column("key", String(40), primary_key=True), Column("value", Text, nullable=False))


class State(enum.StrEnum):
    pending = "pending"
    retrying = "retrying"
    delivered = "delivered"
    dead = "dead"


OPEN_STATES = (State.pending.value, State.retrying.value)
_SEEN = select(files.c.path, files.c.size, files.c.mtime_ns, files.c.outcome, files.c.seen_at).where(
    files.c.path.in_(bindparam("paths", expanding=True))
)
_DISABLED = select(webhook_state.c.name).where(webhook_state.c.disabled.is_(True))
_DUE_ROWS = (
    select(deliveries)
    .where(deliveries.c.state.in_(OPEN_STATES), deliveries.c.due_at <= bindparam("now"))
    .where((deliveries.c.lease_until.is_(None)) | (deliveries.c.lease_until < bindparam("now")))
    .where(deliveries.c.webhook.not_in(_DISABLED))
    .where(deliveries.c.webhook.not_in(bindparam("busy", expanding=True)))
    .order_by(deliveries.c.due_at)
    .limit(bindparam("limit"))
)


def _with_alert_payload(due: Any) -> Any:
    """The due rows, each alert delivery with its alert's payload: joined after the limit, so that only
    the rows taken are looked up (and the sort does not carry payloads)."""
    rows = due.subquery("due")
    joined = rows.outerjoin(alerts, alerts.c.id == rows.c.alert_id)
    return select(rows, alerts.c.payload.label("alert_payload")).select_from(joined).order_by(rows.c.due_at)


_DUE = _with_alert_payload(_DUE_ROWS)
_DUE_FOR_UPDATE = _with_alert_payload(_DUE_ROWS.with_for_update(skip_locked=True))
_LEASE = (
    update(deliveries)
    .where(deliveries.c.id.in_(bindparam("ids", expanding=True)))
    .values(lease_until=bindparam("until"))
)
_RELEASE = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("key"), deliveries.c.lease_until == bindparam("until"))
    .values(lease_until=None)
)
_RENEW = (
    update(deliveries)
    .where(deliveries.c.id.in_(bindparam("ids", expanding=True)), deliveries.c.lease_until == bindparam("until"))
    .values(lease_until=bindparam("renewed"))
    .returning(deliveries.c.id)
)
_DEFER = update(deliveries).where(deliveries.c.id == bindparam("key")).values(due_at=bindparam("due"), lease_until=None)
_RELEASE_READING = delete(reading).where(reading.c.path == bindparam("key"), reading.c.owner == bindparam("owner"))
_NEXT_DUE = select(func.min(func.coalesce(deliveries.c.lease_until, deliveries.c.due_at))).where(
    deliveries.c.state.in_(OPEN_STATES), deliveries.c.webhook.not_in(_DISABLED)
)


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    webhook: str
    kind: str
    rule: str
    payload: dict[str, Any]
    state: State
    attempts: int
    due_at: float
    last_status: int | None
    last_error: str | None
    created_at: float
    delivered_at: float | None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Store:
    """One database. Methods are blocking; the daemon calls them from worker threads."""

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
        from monitor import migrations  # Alembic: loaded by the commands that open the store, not by imports

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
        from monitor import migrations

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
        from monitor import migrations

        with self._schema() as conn:
            return migrations.revision(conn)

    @contextmanager
    def _schema(self) -> Iterator[Connection]:
        """A transaction that holds the schema lock; database errors become a StoreError."""
        from monitor import migrations

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
        """A write transaction. On SQLite the process's writers take turns on a lock first: SQLite makes a
        second writer sleep and poll (1, 2, 5, 10 ms ...), which turned every collision of the ingest worker
        and the deliverer into a latency spike; a lock wakes the next writer as soon as the first commits."""
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

    # -- the file ledger ------------------------------------------------------------------------------
    def seen_many(self, paths: Sequence[str]) -> dict[str, Known]:
        """What the ledger holds for each of the paths it knows."""
        with self.engine.connect() as conn:
            return {row[0]: _known(*row[1:]) for row in conn.execute(_SEEN, {"paths": list(paths)})}

    def claim_reading(self, versions: Sequence[tuple[str, int, int]], lease: float) -> Claimed:
        """PostgreSQL: claim file versions, each (ledger key, size, mtime_ns), for this process to read, for
        `lease` seconds, in one short transaction, in key order (two replicas claiming the same files lock
        them in one order). A file another process claimed is left to it unless that claim's lease ran out
        (the process died mid-read) or it is this process's own. What the ledger holds for the files claimed
        is looked up after the claims, so that a file another replica recorded (and released) in the
        meantime is known as done and not read again."""
        now = time.time()
        rows = [
            {"path": path, "size": size, "mtime_ns": mtime_ns, "owner": self.owner, "claimed_at": now}
            | {"lease_until": now + lease}
            for path, size, mtime_ns in sorted(set(versions))
        ]
        if not rows:
            return Claimed(frozenset(), {})
        with self.begin() as conn:
            claimed = sorted(set(conn.execute(_statement(("claim",), _claim_statement), rows).scalars()))
            known = {row[0]: _known(*row[1:]) for row in conn.execute(_SEEN, {"paths": claimed})} if claimed else {}
        return Claimed(frozenset(claimed), known)

    def release_reading(self, conn: Connection, paths: Iterable[str]) -> None:
        """Delete this process's claims of these files, within the caller's transaction (the one that writes
        their ledger rows), one row at a time in key order, the order claims lock them in."""
        rows = [{"key": path, "owner": self.owner} for path in sorted(set(paths))]
        if rows:
            conn.execute(_RELEASE_READING, rows)

    def record_file(self, conn: Connection, path: str, size: int, mtime_ns: int, **values: Any) -> None:
        upsert(conn, files, file_row(path, size, mtime_ns, **values), key="path")

    # -- leases on shared work ------------------------------------------------------------------------
    def take_lease(self, name: str, seconds: float) -> bool:
        """Take or renew the lease `name` (a row of `meta`) for `seconds`: True unless another process holds
        it and its time has not run out. The row is locked while it is decided (PostgreSQL: FOR UPDATE)."""
        key, now = f"lease:{name}", time.time()
        with self.begin() as conn:
            insert_ignore(conn, meta, [{"key": key, "value": "- 0"}])
            value = conn.execute(select(meta.c.value).where(meta.c.key == key).with_for_update()).scalar_one()
            holder, _, until = str(value).rpartition(" ")
            if holder != self.owner and float(until) > now:
                return False
            conn.execute(update(meta).where(meta.c.key == key).values(value=f"{self.owner} {now + seconds}"))
            return True

    def end_lease(self, name: str) -> None:
        """Give the lease `name` back, if this process still holds it."""
        key = f"lease:{name}"
        with self.begin() as conn:
            conn.execute(
                update(meta)
                .where(meta.c.key == key, meta.c.value.startswith(f"{self.owner} ", autoescape=True))
                .values(value="- 0")
            )

    # -- the outbox -----------------------------------------------------------------------------------
    def take_due(self, now: float, limit: int, lease: float) -> list[Delivery]:
        """Lease up to `limit` due deliveries of enabled webhooks, oldest first."""
        return self.exchange((), now, limit, lease)

    def exchange(
        self,
        outcomes: Sequence[tuple[str, str, Mapping[str, Any]]],
        now: float,
        limit: int,
        lease: float,
        busy: Sequence[str] = (),
    ) -> list[Delivery]:
        """The deliverer's one transaction per turn: store attempts' outcomes, each (delivery id, webhook,
        values of `state`, `due_at`, `last_status`, `last_error`, `delivered_at`), then lease up to `limit`
        due deliveries of enabled webhooks not in `busy` (those with enough work in hand), oldest first."""
        with self.begin() as conn:
            if outcomes:
                _finish(conn, outcomes)
            if limit <= 0:
                return []
            query = _DUE_FOR_UPDATE if self.dialect == "postgresql" else _DUE
            rows = conn.execute(query, {"now": now, "limit": limit, "busy": list(busy)}).mappings().all()
            if rows:
                conn.execute(_LEASE, {"ids": [row["id"] for row in rows], "until": now + lease})
        if not rows:
            return []
        with self.engine.connect() as conn:  # payloads never change: put together after the write lock is free
            return compose(conn, rows)

    def next_due(self) -> float | None:
        with self.engine.connect() as conn:
            value = conn.execute(_NEXT_DUE).scalar()
        return float(value) if value is not None else None

    def release_all(self) -> int:
        """Give back every lease: at start-up on SQLite, where this process is the only deliverer."""
        with self.begin() as conn:
            result = conn.execute(
                update(deliveries).where(deliveries.c.lease_until.is_not(None)).values(lease_until=None)
            )
            return int(result.rowcount)

    def release(self, leases: Sequence[tuple[str, float]]) -> None:
        """Give back leases of deliveries not attempted, each (id, lease_until) only if that lease still
        holds it: a lease that ran out may have been taken by another replica meanwhile."""
        with self.begin() as conn:
            conn.execute(_RELEASE, [{"key": key, "until": until} for key, until in leases])

    def renew(self, leases: Sequence[tuple[str, float]], until: float) -> set[str]:
        """Extend leases to `until`, each (id, lease_until) only if that lease still holds it (a lease that ran
        out may have been taken by another replica meanwhile); the ids renewed."""
        held: dict[float, list[str]] = {}
        for key, lease_until in leases:
            held.setdefault(lease_until, []).append(key)
        renewed: set[str] = set()
        with self.begin() as conn:
            for lease_until, ids in held.items():  # one statement per lease taken (leases of one turn share it)
                result = conn.execute(_RENEW, {"ids": ids, "until": lease_until, "renewed": until})
                renewed.update(result.scalars())
        return renewed

    def defer(self, deliveries_due: Sequence[tuple[str, float]]) -> None:
        """Give back leased deliveries, each (id, due_at), due again at that time (a webhook's rate)."""
        with self.begin() as conn:
            conn.execute(_DEFER, [{"key": key, "due": due} for key, due in deliveries_due])

    def set_webhook_disabled(self, name: str, disabled: bool, reason: str | None = None) -> None:
        with self.begin() as conn:
            upsert(
                conn,
                webhook_state,
                {"name": name, "disabled": disabled, "disabled_reason": reason},
                key="name",
            )

    def deliveries(self, states: Iterable[str] | None = None, limit: int = 1000) -> list[Delivery]:
        query = select(deliveries).order_by(deliveries.c.created_at).limit(limit)
        if states:
            query = query.where(deliveries.c.state.in_(list(states)))
        with self.engine.connect() as conn:
            return compose(conn, conn.execute(query).mappings().all())

    def requeue(self, ids: Sequence[str] | None) -> int:
        """Queue deliveries again under their original ids; None: every dead one."""
        query = update(deliveries).values(state=State.pending, due_at=time.time(), attempts=0, lease_until=None)
        query = query.where(deliveries.c.state == State.dead) if ids is None else query.where(deliveries.c.id.in_(ids))
        with self.begin() as conn:
            return int(conn.execute(query).rowcount)

    def status(self, recent: int = 10) -> dict[str, Any]:
        """What `news-monitor status` shows: files by outcome, last rejections, outbox, webhooks."""
        with self.engine.connect() as conn:
            outcomes: dict[Any, Any] = dict(
                conn.execute(select(files.c.outcome, func.count()).group_by(files.c.outcome)).all()
            )
            rejected = conn.execute(
                select(files.c.path, files.c.code, files.c.reason, files.c.seen_at)
                .where(files.c.outcome == "rejected")
                .order_by(files.c.seen_at.desc())
                .limit(recent)
            ).mappings()
            outbox: dict[Any, Any] = dict(
                conn.execute(select(deliveries.c.state, func.count()).group_by(deliveries.c.state)).all()
            )
            hooks = conn.execute(select(webhook_state).order_by(webhook_state.c.name)).mappings()
            return {
                "files": {str(k): int(v) for k, v in outcomes.items()},
                "last_rejections": [dict(row) for row in rejected],
                "outbox": {str(k): int(v) for k, v in outbox.items()},
                "webhooks": [dict(row) for row in hooks],
            }


class Claimed(NamedTuple):
    """The outcome of `Store.claim_reading`: the files this process may read, and what the ledger holds for
    them (looked up after the claim)."""

    paths: frozenset[str]
    known: dict[str, Known]


def _claim_statement() -> Any:
    """Insert claims; a row that exists is taken over only if its lease ran out or it is this owner's own."""
    from sqlalchemy.dialects import postgresql

    statement = postgresql.insert(reading)
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=["path"],
        set_={name: new[name] for name in ("size", "mtime_ns", "owner", "claimed_at", "lease_until")},
        where=(reading.c.lease_until < new.claimed_at) | (reading.c.owner == new.owner),
    ).returning(reading.c.path)


def _finish(conn: Connection, outcomes: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
    now = time.time()
    hooks: dict[str, dict[str, Any]] = {}
    for delivery_id, webhook, values in outcomes:
        statement = _statement(("finish", tuple(values)), functools.partial(_finish_statement, tuple(values)))
        conn.execute(statement, {"delivery_id": delivery_id, **values})
        status = hooks.setdefault(webhook, {"name": webhook})
        if values.get("state") == State.delivered:
            status["last_delivery_at"] = now
        elif values.get("last_error"):
            status |= {"last_error": values["last_error"], "last_error_at": now}
    for status in hooks.values():  # one row per webhook: its latest delivery and latest error
        upsert(conn, webhook_state, status, key="name")


def compose(conn: Connection, rows: Sequence[Any]) -> list[Delivery]:
    """Deliveries of outbox rows, with their payloads as the formats read them: an alert's from its alert
    row (as `alert_payload` when the query joined it), a digest part's with its alerts' payloads in place
    of their ids, an older row's as stored. Each delivery gets payload objects of its own."""
    stored = [json.loads(row["payload"]) if row["payload"] is not None else None for row in rows]
    wanted = {row["alert_id"] for row in rows if row["alert_id"] is not None and not row.get("alert_payload")}
    for payload in stored:
        if payload is not None and DIGEST_REFS in payload:
            wanted.update(payload[DIGEST_REFS])
    found = alert_payloads(conn, sorted(wanted)) if wanted else {}
    return [to_delivery(row, _payload(row, payload, found)) for row, payload in zip(rows, stored, strict=True)]


def alert_payloads(conn: Connection, ids: Sequence[str]) -> dict[str, str]:
    """The stored payloads (JSON) of the alerts with these ids; absent ids are left out."""
    found: dict[str, str] = {}
    for at in range(0, len(ids), _CHUNK):
        query = select(alerts.c.id, alerts.c.payload).where(alerts.c.id.in_(ids[at : at + _CHUNK]))
        found.update((alert_id, payload) for alert_id, payload in conn.execute(query))
    return found


def _payload(row: Any, stored: dict[str, Any] | None, found: Mapping[str, str]) -> dict[str, Any]:
    if row["alert_id"] is not None:
        return _alert(row["alert_id"], row.get("alert_payload") or found.get(row["alert_id"]))
    if stored is None:
        return {}
    if DIGEST_REFS not in stored:
        return stored
    part = {key: value for key, value in stored.items() if key != DIGEST_REFS}
    return part | {"alerts": [_alert(alert_id, found.get(alert_id)) for alert_id in stored[DIGEST_REFS]]}


def _alert(alert_id: str, payload: str | None) -> dict[str, Any]:
    """An alert's payload; only its id if the alert row is gone (the prune keeps the alerts of every delivery
    it keeps, so this is for rows of older versions or alerts deleted by hand)."""
    return json.loads(payload) if payload is not None else {"alert_id": alert_id}


def octets(conn: Connection, column: Column[Any]) -> Any:
    """SQL for the length of a text column in bytes (UTF-8)."""
    if conn.dialect.name == "postgresql":
        return func.octet_length(column)
    return func.length(cast(column, LargeBinary))


def to_delivery(row: Any, payload: dict[str, Any] | None = None) -> Delivery:
    """A delivery of an outbox row; `payload` as `compose` makes it (default: the row's own, parsed)."""
    return Delivery(
        row["id"],
        row["webhook"],
        row["kind"],
        row["rule"],
        payload if payload is not None else json.loads(row["payload"] or "{}"),
        State(row["state"]),
        row["attempts"],
        row["due_at"],
        row["last_status"],
        row["last_error"],
        row["created_at"],
        row["delivered_at"],
    )


_STATEMENTS: dict[tuple[Any, ...], Any] = {}


def _statement(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    """Build a statement once and reuse the object: SQLAlchemy then finds its compiled SQL in the cache
    instead of building, keying and (for multi-VALUES inserts, which it never caches) compiling it anew."""
    statement = _STATEMENTS.get(key)
    if statement is None:
        statement = _STATEMENTS[key] = build()
    return statement


def _finish_statement(keys: tuple[str, ...]) -> Any:
    return (
        update(deliveries)
        .where(deliveries.c.id == bindparam("delivery_id"))
        .values(attempts=deliveries.c.attempts + 1, lease_until=None, **{k: bindparam(k) for k in keys})
    )


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
        statement = _statement(
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
    statement = _statement(
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

    conn.execute(_statement(("upsert", dialect.__name__, table.name, key, tuple(rows[0])), build), rows)


class Known(NamedTuple):
    """A file as the ledger last saw it: its size and mtime, and for a rejection when it was rejected."""

    size: int
    mtime_ns: int
    rejected_at: float | None = None

    def unchanged(self, info: os.stat_result) -> bool:
        """Whether a file with this stat needs no new look: the same size and mtime, and for a rejection no
        change of its mode, owner or links since (its ctime): a file that was unreadable (mode 000) and is
        then made readable is looked at again."""
        if (self.size, self.mtime_ns) != (info.st_size, info.st_mtime_ns):
            return False
        # `rejected_at` is read from the clock file times come from (`file_clock`), so a file written just
        # before its rejection is not looked at again, and a change after it is.
        return self.rejected_at is None or info.st_ctime <= self.rejected_at


def _known(size: int, mtime_ns: int, outcome: str, seen_at: float) -> Known:
    return Known(size, mtime_ns, seen_at if outcome == "rejected" else None)


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


def file_clock() -> float:
    """Now, by the clock the kernel stamps file times with (Linux: the coarse real-time clock, a few
    milliseconds behind `time.time`, which would make a file written just before look changed after)."""
    coarse = getattr(time, "CLOCK_REALTIME_COARSE", None)
    return time.clock_gettime(coarse) if coarse is not None else time.time()


def file_row(path: str, size: int, mtime_ns: int, **values: Any) -> dict[str, Any]:
    """A ledger row with every column, so that rows of different outcomes share one statement."""
    return {
        "path": path,
        "size": size,
        "mtime_ns": mtime_ns,
        "seen_at": file_clock(),
        "content_hash": values.get("content_hash"),
        "outcome": values["outcome"],
        "code": values.get("code"),
        "reason": values.get("reason"),
    }


def upsert(conn: Connection, table: Table, row: dict[str, Any], key: str) -> None:
    dialect = _dialect(conn)

    def build() -> Any:
        statement = dialect.insert(table)
        changes = {k: statement.excluded[k] for k in row if k != key}
        return statement.on_conflict_do_update(index_elements=[key], set_=changes)

    conn.execute(_statement(("upsert", dialect.__name__, table.name, key, tuple(row)), build), row)
