"""Leases on shared work (a row of `meta` each): one process at a time runs it (the prune)."""

from __future__ import annotations

import time

from sqlalchemy import select, update

from monitor.store.engine import Database
from monitor.store.schema import meta
from monitor.store.statements import insert_ignore


class Leases(Database):
    """Named leases held by this store's owner (`host:pid:token`)."""

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
