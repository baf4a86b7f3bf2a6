"""Chat threads (`chat_threads`): the Discord thread a story's first alert started, per webhook.

A Discord webhook with `thread: story` starts a thread with each alert that is not a follow-up, and sends a
follow-up into the thread of the alert it updates (monitor.notify.formats.discord). The first thread stored
for an alert stays: a follow-up that started a thread of its own (its first alert's was not known yet)
stores it under that first alert only when none is there, so that later follow-ups keep to one thread.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select

from monitor.store.engine import Database
from monitor.store.schema import chat_threads
from monitor.store.statements import insert_ignore

_THREAD = select(chat_threads.c.thread_id).where(
    chat_threads.c.webhook == bindparam("webhook"), chat_threads.c.alert_id == bindparam("alert_id")
)


class ChatThreads(Database):
    """The store's statements on chat threads (each its own transaction)."""

    def chat_thread(self, webhook: str, alert_id: str) -> str | None:
        """The thread of an alert's story on a webhook, if one is known."""
        with self.engine.connect() as conn:
            found = conn.execute(_THREAD, {"webhook": webhook, "alert_id": alert_id}).scalar()
        return None if found is None else str(found)

    def save_chat_thread(self, webhook: str, alert_id: str, thread_id: str, now: float) -> bool:
        """Remember the thread started for an alert's story on a webhook, unless one is known already.
        Returns whether it was stored."""
        row = {"webhook": webhook, "alert_id": alert_id, "thread_id": thread_id, "created_at": now}
        with self.begin() as conn:
            return insert_ignore(conn, chat_threads, [row]) > 0
