"""Digests: the alerts waiting for their rule's digest, and the claims of digest times (`digest_claims`)
that let one flush of all replicas build each digest."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, exists, func, select, update

from monitor.store.engine import Database, Writes
from monitor.store.schema import alerts, digest_claims
from monitor.store.statements import insert_ignore, octets


def _waiting(rule: str, until: float) -> ColumnElement[bool]:
    """A rule's alerts waiting for a digest, created up to `until` (the condition of the partial index)."""
    return and_(alerts.c.rule == rule, alerts.c.digest_pending.is_(True), alerts.c.created_at <= until)


class Digests(Database):
    """The store's reads of digest state."""

    def oldest_pending(self) -> dict[str, float]:
        """Per rule, the creation time of its oldest alert waiting for a digest (rules with none are absent)."""
        with self.engine.connect() as conn:
            query = select(alerts.c.rule, func.min(alerts.c.created_at)).where(alerts.c.digest_pending.is_(True))
            return {rule: float(oldest) for rule, oldest in conn.execute(query.group_by(alerts.c.rule))}


class DigestWrites(Writes):
    """A write transaction's statements of a digest flush."""

    def digest_waiting(self, rule: str, until: float) -> bool:
        """Whether an alert of `rule` created up to `until` waits for a digest."""
        return bool(self._conn.execute(select(exists().where(_waiting(rule, until)))).scalar())

    def claim_digest(self, rule: str, slot: str, now: float) -> bool:
        """Claim the digest of `rule` at schedule time `slot` (ISO 8601, UTC): False if it was claimed before."""
        return insert_ignore(self._conn, digest_claims, [{"rule": rule, "slot": slot, "flushed_at": now}]) > 0

    def take_digest_alerts(self, rule: str, until: float) -> list[tuple[str, int]]:
        """The alerts of `rule` created up to `until` that wait for a digest, each (id, payload size in bytes),
        oldest first. On PostgreSQL their rows stay locked until the transaction ends: a flush of a later
        time waits, then skips what this one sends."""
        query = select(alerts.c.id, octets(self._conn, alerts.c.payload)).where(_waiting(rule, until))
        query = query.order_by(alerts.c.created_at, alerts.c.id)
        if self.dialect == "postgresql":
            query = query.with_for_update()
        return [(alert_id, int(size)) for alert_id, size in self._conn.execute(query)]

    def mark_digested(self, ids: Sequence[str]) -> None:
        """The alerts went into a digest: they wait no longer."""
        if ids:
            self._conn.execute(update(alerts).where(alerts.c.id.in_(list(ids))).values(digest_pending=False))
