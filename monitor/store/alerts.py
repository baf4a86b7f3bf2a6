"""Alerts (`alerts`): one row per match of a newly claimed article, holding its payload once; the realert
lookups and, on PostgreSQL, the advisory locks that make a realert window's check and insert one step.

A realert lookup is one statement per window on the `alerts_realert` index: whether the window holds an
alert not suppressed (EXISTS: it stops at the first), or for a rule with `realert_on_increase` how many it
holds and their largest count (it reads the window's rows; in a window the alerts sent have rising counts,
so there are few of them, besides the suppressed ones)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from sqlalchemy import bindparam, exists, func, select, text

from monitor.store.engine import Writes
from monitor.store.schema import alerts
from monitor.store.statements import insert_returning

_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_IN_WINDOW = (
    alerts.c.rule == bindparam("rule"),
    alerts.c.realert_key == bindparam("key"),
    alerts.c.suppressed.is_(False),
    alerts.c.created_at >= bindparam("since"),
)
_ALERTED_SINCE = select(exists().where(*_IN_WINDOW))
_LARGEST_SINCE = select(func.count(), func.max(alerts.c.count_value)).where(*_IN_WINDOW)


class NewAlert(NamedTuple):
    """An alert to store: its deterministic id, its payload (JSON), its realert key, whether realert
    suppressed it, and whether it waits for its rule's digest."""

    id: str
    rule: str
    content_hash: str
    payload: str
    realert_key: str
    suppressed: bool
    digest_pending: bool
    created_at: float
    count_value: float | None = None  # the match's largest count (`Match.count.value`): `realert_on_increase`
    story: str | None = None  # the article's story (None: stories are off)


class Window(NamedTuple):
    """A realert window: a rule's alerts with this realert key since a time; `counts`: the lookup also
    wants their largest count (a rule with `realert_on_increase`)."""

    rule: str
    key: str
    since: float
    counts: bool = False


class AlertWrites(Writes):
    """A write transaction's statements on alerts."""

    def lock_realert_windows(self, windows: Iterable[tuple[str, str]]) -> None:
        """On PostgreSQL, lock each (rule, realert key) until the transaction ends, in sorted order: another
        replica's check for a recent alert of the same key then waits for this commit and sees its alert, so
        a window gets one alert however the matches race. (On SQLite the write lock already makes the check
        and the insert one step.)"""
        if self.dialect != "postgresql":
            return
        for key in sorted({_lock_key(rule, key) for rule, key in windows}):
            self._conn.execute(_ADVISORY_LOCK, {"key": key})

    def alerted_since(self, windows: Iterable[Window]) -> dict[tuple[str, str], float | None]:
        """The (rule, realert key) of the windows that hold an alert not suppressed, each with the largest
        count stored among those alerts (None: none of them has one, or the window does not ask for
        `counts`): one lookup each."""
        found: dict[tuple[str, str], float | None] = {}
        for window in dict.fromkeys(windows):
            params = {"rule": window.rule, "key": window.key, "since": window.since}
            if window.counts:
                alerted, largest = self._conn.execute(_LARGEST_SINCE, params).one()
            else:
                alerted, largest = self._conn.execute(_ALERTED_SINCE, params).scalar(), None
            if alerted:
                found[(window.rule, window.key)] = largest
        return found

    def queue_alerts(self, new: Sequence[NewAlert]) -> None:
        """Store alerts in one statement, in key order; an id stored before is skipped."""
        rows = [alert._asdict() for alert in sorted(new, key=lambda alert: alert.id)]
        insert_returning(self._conn, alerts, rows, alerts.c.id)


def _lock_key(rule: str, key: str) -> int:
    """A signed 64-bit advisory lock key for (rule, realert key)."""
    digest = hashlib.blake2b(f"realert\x1f{rule}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
