"""The delivery outbox (`deliveries`): deliveries queued, leased when due, their attempts' outcomes stored.

Due deliveries are leased for a time (PostgreSQL: taken with FOR UPDATE SKIP LOCKED), so that several
replicas never attempt one at once; a lease that runs out (its holder died) makes the delivery due again.
An alert's delivery refers to its alert, whose row holds the payload once; a digest part's lists its alerts
by id (DIGEST_REFS). `compose` puts the full payloads together when deliveries are handed out.
"""

from __future__ import annotations

import enum
import functools
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, func, select, update

from monitor.store.engine import Database, Writes
from monitor.store.schema import alerts, deliveries, webhook_state
from monitor.store.statements import cached, insert_ignore, insert_returning
from monitor.store.webhooks import note_webhooks

DIGEST_REFS = "alert_ids"  # a digest part's stored payload lists its alerts by id; `Delivery.payload` has them
_CHUNK = 500  # ids per IN (...) when the alerts' payloads are read


class State(enum.StrEnum):
    """A delivery's state: open (pending, retrying) until delivered or dead."""

    pending = "pending"
    retrying = "retrying"
    delivered = "delivered"
    dead = "dead"


OPEN_STATES = (State.pending.value, State.retrying.value)


class DeliveryKind(enum.StrEnum):
    """What a delivery carries: one alert, or a part of a rule's digest (stored as these strings)."""

    alert = "alert"
    digest = "digest"


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    webhook: str
    kind: DeliveryKind
    rule: str
    payload: dict[str, Any]
    state: State
    attempts: int
    due_at: float
    last_status: int | None
    last_error: str | None
    created_at: float
    delivered_at: float | None


@dataclass(frozen=True, slots=True)
class Attempted:
    """A finished attempt to store: the delivery, its webhook, and the delivery's values after it. `due_at`
    when it is due again (a retry, or a webhook disabled meanwhile), `delivered_at` when delivered."""

    id: str
    webhook: str
    state: State
    last_status: int | None
    last_error: str | None
    due_at: float | None = None
    delivered_at: float | None = None

    def values(self) -> dict[str, Any]:
        """The columns this attempt changes (due_at and delivered_at only when set)."""
        values: dict[str, Any] = {"state": self.state, "last_status": self.last_status, "last_error": self.last_error}
        if self.due_at is not None:
            values["due_at"] = self.due_at
        if self.delivered_at is not None:
            values["delivered_at"] = self.delivered_at
        return values


class NewDelivery(NamedTuple):
    """A delivery to queue, due at once: an alert's refers to its alert (`alert_id`), a digest part's holds
    its compact payload (JSON, its alerts by id)."""

    id: str
    webhook: str
    kind: DeliveryKind
    rule: str
    created_at: float
    alert_id: str | None = None
    payload: str | None = None

    def row(self) -> dict[str, Any]:
        return self._asdict() | {"state": State.pending.value, "attempts": 0, "due_at": self.created_at}


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
_QUEUED = _with_alert_payload(
    select(deliveries)
    .where(deliveries.c.id.in_(bindparam("ids", expanding=True)), deliveries.c.state == State.pending.value)
    .where(deliveries.c.due_at <= bindparam("now"), deliveries.c.lease_until.is_(None))
    .where(deliveries.c.webhook.not_in(_DISABLED))
)
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
_NEXT_DUE = select(func.min(func.coalesce(deliveries.c.lease_until, deliveries.c.due_at))).where(
    deliveries.c.state.in_(OPEN_STATES), deliveries.c.webhook.not_in(_DISABLED)
)


class Outbox(Database):
    """The store's statements on the outbox, each its own transaction."""

    def take_due(self, now: float, limit: int, lease: float) -> list[Delivery]:
        """Lease up to `limit` due deliveries of enabled webhooks, oldest first."""
        return self.record_outcomes_and_lease((), now, limit, lease)

    def record_outcomes_and_lease(
        self, attempted: Sequence[Attempted], now: float, limit: int, lease: float, busy: Sequence[str] = ()
    ) -> list[Delivery]:
        """The deliverer's one transaction per turn: store attempts' outcomes (and each webhook's latest
        delivery and error), then lease up to `limit` due deliveries of enabled webhooks not in `busy` (those
        with enough work in hand) until `now + lease`, oldest first."""
        with self.begin() as conn:
            if attempted:
                _finish(conn, attempted)
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
        """When the next open delivery of an enabled webhook is due (or its lease runs out)."""
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

    def deliveries(self, states: Sequence[str] | None = None, limit: int = 1000) -> list[Delivery]:
        """Deliveries (in these states), oldest first, with their payloads."""
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

    def count_deliveries_by_state(self) -> dict[str, int]:
        """How many deliveries the outbox holds in each state (states with none are absent)."""
        with self.engine.connect() as conn:
            return count_by_state(conn)


def count_by_state(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(deliveries.c.state, func.count()).group_by(deliveries.c.state)).all()
    return {str(state): int(count) for state, count in rows}


class OutboxWrites(Writes):
    """A write transaction's statements on the outbox."""

    def queue_deliveries(self, new: Sequence[NewDelivery]) -> int:
        """Queue deliveries in one statement, in key order; an id queued before is skipped. How many were queued."""
        rows = [delivery.row() for delivery in sorted(new, key=lambda delivery: delivery.id)]
        queued = insert_returning(self._conn, deliveries, rows, deliveries.c.id)
        self.queued.extend(queued)
        return len(queued)

    def lease_queued(self, now: float, limit: int, lease: float) -> list[Delivery]:
        """Lease up to `limit` of the deliveries this transaction queued (`queued`, due at once; those of
        enabled webhooks) until `now + lease`, with their payloads: the deliverer takes them from the batch
        that made them, without looking for them in the outbox. No other replica sees them before the
        commit, and after it they are leased."""
        ids = self.queued[:limit] if limit > 0 else []
        if not ids:
            return []
        rows = self._conn.execute(_QUEUED, {"ids": ids, "now": now}).mappings().all()
        if rows:
            self._conn.execute(_LEASE, {"ids": [row["id"] for row in rows], "until": now + lease})
        return compose(self._conn, rows)

    def queue_digest(self, parts: Sequence[NewDelivery]) -> int:
        """Queue a digest's deliveries one row at a time, in the order given; an id queued before is skipped.
        How many were queued."""
        return insert_ignore(self._conn, deliveries, [part.row() for part in parts])


def _finish(conn: Connection, attempted: Sequence[Attempted]) -> None:
    now = time.time()
    hooks: dict[str, dict[str, Any]] = {}
    for attempt in attempted:
        values = attempt.values()
        statement = cached(("finish", tuple(values)), functools.partial(_finish_statement, tuple(values)))
        conn.execute(statement, {"delivery_id": attempt.id, **values})
        status = hooks.setdefault(attempt.webhook, {"name": attempt.webhook})
        if attempt.state == State.delivered:
            status["last_delivery_at"] = now
        elif attempt.last_error:
            status |= {"last_error": attempt.last_error, "last_error_at": now}
    note_webhooks(conn, hooks.values())  # one row per webhook: its latest delivery and latest error


def _finish_statement(keys: tuple[str, ...]) -> Any:
    return (
        update(deliveries)
        .where(deliveries.c.id == bindparam("delivery_id"))
        .values(attempts=deliveries.c.attempts + 1, lease_until=None, **{k: bindparam(k) for k in keys})
    )


def compose(conn: Connection, rows: Sequence[Any]) -> list[Delivery]:
    """Deliveries of outbox rows, with their payloads as the formats read them: an alert's from its alert
    row (as `alert_payload` when the query joined it), a digest part's with its alerts' payloads in place
    of their ids, an older row's as stored. Each delivery gets payload objects of its own."""
    stored = [json.loads(row["payload"]) if row["payload"] is not None else None for row in rows]
    wanted = {row["alert_id"] for row in rows if row["alert_id"] is not None and not row.get("alert_payload")}
    for payload in stored:
        if payload is not None and DIGEST_REFS in payload:
            wanted.update(payload[DIGEST_REFS])
    found = _alert_payloads(conn, sorted(wanted)) if wanted else {}
    return [_to_delivery(row, _payload(row, payload, found)) for row, payload in zip(rows, stored, strict=True)]


def _alert_payloads(conn: Connection, ids: Sequence[str]) -> dict[str, str]:
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


def _to_delivery(row: Any, payload: dict[str, Any] | None = None) -> Delivery:
    """A delivery of an outbox row; `payload` as `compose` makes it (default: the row's own, parsed)."""
    return Delivery(
        row["id"],
        row["webhook"],
        DeliveryKind(row["kind"]),
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
