"""The state store: the file ledger, article claims, alerts, digests and the delivery outbox. The only
module that speaks SQL: every statement is a method of `Store` (each its own transaction) or of
`Transaction` (the statements of one write transaction: `Store.transaction()`).

    engine     the database: engine, pool, SQLite pragmas, flock and write lock, the schema gate
    ledger     files read (`files`), article claims (`articles`), claims of files being read (`reading`)
    alerts     alerts, realert lookups and their advisory locks
    digests    alerts waiting for a digest, digest claims
    outbox     deliveries: queued, leased, their outcomes
    webhooks   webhook state
    leases     leases on shared work (the prune)
    stories    each claimed article's story and version, in the order assigned
    chat_threads  the Discord thread each story's first alert started, per webhook
    status     the operators' report
    schema     the tables: private (the migrations and tests poking raw rows import it explicitly)

All writes of one batch of articles happen in one transaction. On PostgreSQL several replicas share the
store: articles are claimed by unique key, due deliveries are leased with FOR UPDATE SKIP LOCKED, digest
times are claimed in `digest_claims`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from monitor.store.alerts import AlertWrites, NewAlert, Window
from monitor.store.chat_threads import ChatThreads
from monitor.store.digests import Digests, DigestWrites
from monitor.store.engine import COMMAND_CONNECTIONS, no_state_yet
from monitor.store.leases import Leases
from monitor.store.ledger import ArticleClaim, Claimed, Known, Ledger, LedgerEntry, LedgerWrites, Recorded
from monitor.store.outbox import (
    DIGEST_REFS,
    OPEN_STATES,
    Attempted,
    Delivery,
    DeliveryKind,
    NewDelivery,
    Outbox,
    OutboxWrites,
    State,
)
from monitor.store.status import Status
from monitor.store.stories import Stories, StoryAlert, StoryRow, StoryThread, StoryWrites, ThreadWrites
from monitor.store.webhooks import Webhooks

__all__ = [
    "COMMAND_CONNECTIONS",
    "DIGEST_REFS",
    "OPEN_STATES",
    "ArticleClaim",
    "Attempted",
    "Claimed",
    "Delivery",
    "DeliveryKind",
    "Known",
    "LedgerEntry",
    "NewAlert",
    "NewDelivery",
    "Recorded",
    "State",
    "Store",
    "StoryAlert",
    "StoryRow",
    "StoryThread",
    "Transaction",
    "Window",
    "no_state_yet",
]


class Transaction(LedgerWrites, AlertWrites, DigestWrites, OutboxWrites, StoryWrites, ThreadWrites):
    """The statements of one write transaction (`Store.transaction()`): all of them commit together, or none."""


class Store(Ledger, Outbox, Digests, Webhooks, Leases, Status, Stories, ChatThreads):
    """One database. Methods are blocking; the daemon calls them from worker threads."""

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A write transaction, committed when the block ends (rolled back if it raises)."""
        with self.begin() as conn:
            yield Transaction(conn, self.owner)
