"""The status report of `news-monitor status`: files by outcome, the last rejections, outbox, webhooks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from monitor.store.engine import Database
from monitor.store.outbox import count_by_state
from monitor.store.schema import files
from monitor.store.webhooks import webhook_rows


class Status(Database):
    """The store's report for operators."""

    def status(self, recent: int = 10) -> dict[str, Any]:
        """What `news-monitor status` shows: files by outcome, last rejections, outbox, webhooks."""
        with self.engine.connect() as conn:
            outcomes = conn.execute(select(files.c.outcome, func.count()).group_by(files.c.outcome)).all()
            rejected = conn.execute(
                select(files.c.path, files.c.code, files.c.reason, files.c.seen_at)
                .where(files.c.outcome == "rejected")
                .order_by(files.c.seen_at.desc())
                .limit(recent)
            ).mappings()
            return {
                "files": {str(k): int(v) for k, v in outcomes},
                "last_rejections": [dict(row) for row in rejected],
                "outbox": count_by_state(conn),
                "webhooks": webhook_rows(conn),
            }
